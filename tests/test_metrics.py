import numpy as np
import pytest
from PIL import Image
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from arasfsr.evaluate import evaluate_grid, markdown_table, model_label, write_results
from arasfsr.metrics import psnr_y, rgb_to_y, ssim_y


def test_y_channel_formula():
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0]]], np.uint8)
    assert rgb_to_y(rgb).tolist() == [[16, 235, 81]]  # 16 + 65.481 = 81.48 -> 81


def test_psnr_matches_scikit_image_on_the_same_y():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + rng.integers(-20, 21, a.shape), 0, 255).astype(np.uint8)
    ya, yb = rgb_to_y(a), rgb_to_y(b)
    assert psnr_y(a, b) == pytest.approx(peak_signal_noise_ratio(yb, ya, data_range=255), abs=1e-9)
    assert ssim_y(Image.fromarray(a), Image.fromarray(b)) == pytest.approx(structural_similarity(ya, yb, data_range=255))
    assert psnr_y(a, a) == float("inf")
    with pytest.raises(ValueError, match="differ in size"):
        psnr_y(a, b[:-1])


def test_evaluate_grid_and_outputs(tmp_path, tiny_model):
    rng = np.random.default_rng(1)
    masters = [Image.fromarray(rng.integers(0, 256, (s, s, 3), dtype=np.uint8)) for s in (64, 64, 32)]
    rows = evaluate_grid({"tiny": tiny_model, "bicubic": "bicubic"}, masters, [16], [1.5, 4], progress=False)
    by = {(r["model"], r["scale"]): r for r in rows}
    assert by["bicubic", 1.5]["n"] == 3 and by["bicubic", 4]["n"] == 2  # the 32 px master has no 64 px GT
    # each number is the mean over the faces that fit, computed independently here
    from arasfsr.data import make_eval_pair
    pairs = [make_eval_pair(m, 16, 4) for m in masters[:2]]
    expected = np.mean([psnr_y(lr.resize(hr.size, Image.BICUBIC), hr) for lr, hr in pairs])
    assert by["bicubic", 4]["psnr"] == pytest.approx(expected, abs=1e-9)
    paths = write_results(rows, tmp_path)
    assert "16->64 (x4)" in paths["markdown"].read_text() and paths["plot"].stat().st_size > 1000
    assert len(paths["csv"].read_text().splitlines()) == 1 + 4
    assert "| tiny |" in markdown_table(rows)


def test_evaluate_grid_scores_each_detail_share_as_its_own_row(tiny_model):
    from arasfsr.data import make_eval_pair
    from arasfsr.inference import upscale
    rng = np.random.default_rng(2)
    masters = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(2)]
    rows = evaluate_grid({"tiny": tiny_model, "bicubic": "bicubic"}, masters, [16], [4], progress=False,
                         details=(1.0, 0.5, 0.0))
    by = {r["model"]: r["psnr"] for r in rows}
    assert set(by) == {"tiny", "tiny detail 0.5", "tiny detail 0", "bicubic"}  # bicubic has no detail to share
    assert by["tiny detail 0"] == pytest.approx(by["bicubic"], abs=0.05)     # no detail left: bicubic
    pairs = [make_eval_pair(m, 16, 4) for m in masters]
    half = np.mean([psnr_y(upscale(tiny_model, lr, size=hr.size, detail=0.5), hr) for lr, hr in pairs])
    assert by["tiny detail 0.5"] == pytest.approx(half, abs=1e-9) and by["tiny detail 0.5"] != by["tiny"]


def test_evaluate_grid_self_ensemble_renders_each_model_n_times(tiny_model):
    from arasfsr.data import make_eval_pair
    from arasfsr.inference import upscale
    rng = np.random.default_rng(3)
    masters = [Image.fromarray(rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)) for _ in range(2)]
    rows = evaluate_grid({"tiny": tiny_model, "bicubic": "bicubic"}, masters, [16], [4], progress=False,
                         self_ensemble=4)
    by = {r["model"]: r["psnr"] for r in rows}
    assert set(by) == {"tiny x4", "bicubic"}
    pairs = [make_eval_pair(m, 16, 4) for m in masters]
    four = np.mean([psnr_y(upscale(tiny_model, lr, size=hr.size, self_ensemble=4), hr) for lr, hr in pairs])
    bicubic = np.mean([psnr_y(upscale("bicubic", lr, size=hr.size), hr) for lr, hr in pairs])
    assert by["tiny x4"] == pytest.approx(four, abs=1e-9) and by["bicubic"] == pytest.approx(bicubic, abs=1e-9)
    with pytest.raises(ValueError, match="self_ensemble"):
        evaluate_grid({"tiny": tiny_model}, masters, [16], [4], progress=False, self_ensemble=3)


def test_results_name_each_weight_file_so_two_files_of_one_family_stay_apart():
    taken = {}
    for path, expected in (("natural", "natural"), ("weights/lte_small.safetensors", "lte"),
                           ("runs/natural-more_small/lte_small.safetensors", "natural-more_small/lte"),
                           ("runs/x/natural_small.safetensors", "x/natural")):
        taken[model_label(path, taken)] = path
        assert expected in taken
    with pytest.raises(ValueError, match="twice"):
        model_label("runs/natural-more_small/lte_small.safetensors", taken)
