import pytest
from PIL import Image

import arasfsr
from arasfsr.cli import main


def test_upscale_file_and_folder(tmp_path, face_image):
    src = tmp_path / "face.png"
    Image.fromarray(face_image).save(src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "out.png"), "--scale", "3.7",
                 "--random-weights", "tiny"]) == 0
    assert Image.open(tmp_path / "out.png").size == (104, 74)  # round(28 * 3.7), round(20 * 3.7)

    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(face_image).save(folder / "a.jpg")
    Image.fromarray(face_image[:, :, 0]).save(folder / "b.png")
    (folder / "notes.txt").write_text("not an image")
    assert main(["upscale", str(folder), "-o", str(tmp_path / "out"), "--size", "30x50", "--model", "bicubic"]) == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert Image.open(tmp_path / "out" / "a.png").size == (50, 30)


def test_folder_keeps_going_past_a_bad_file(tmp_path, face_image, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(face_image).save(folder / "good.png")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert main(["upscale", str(folder), "-o", str(tmp_path / "out"), "--scale", "2", "--model", "bicubic"]) == 1
    assert (tmp_path / "out" / "good.png").exists()
    assert "broken.png" in capsys.readouterr().err


def test_clear_errors(tmp_path, face_image, capsys):
    src = tmp_path / "face.png"
    Image.fromarray(face_image).save(src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "o.png"), "--scale", "0", "--model", "bicubic"]) == 2
    assert "scale must be" in capsys.readouterr().err
    assert main(["upscale", str(src), "-o", str(tmp_path / "o.png"), "--scale", "2",
                 "--weights", str(tmp_path / "nope.safetensors")]) == 2
    assert "not found" in capsys.readouterr().err


def test_run_batch_is_reusable_by_another_subcommand(tmp_path, face_image, capsys):
    """A second subcommand (e.g. `restore`) gets the whole safe batch with one call."""
    from arasfsr.cli import run_batch
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(face_image).save(folder / "a.png")
    (folder / "b.png").write_bytes(b"broken")
    seen = []

    def restore_like(path):  # stands in for `lambda p: restore(model, p, scale=2)[0]`
        seen.append(path.name)
        return arasfsr.upscale("bicubic", path, scale=2)
    assert run_batch(folder, tmp_path / "out", restore_like, progress=False) == 1
    assert seen == ["a.png", "b.png"] and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png"]
    assert "wrote 1 of 2 images" in capsys.readouterr().out
    with pytest.raises(ValueError, match="already exist"):  # the same safety rules
        run_batch(folder, tmp_path / "out", restore_like, progress=False)


def test_upscale_self_ensemble_flag_averages_the_turned_passes(tmp_path, face_image):
    import numpy as np
    import torch

    from arasfsr.weights import load_model, save_model
    torch.manual_seed(4)
    weights = save_model(arasfsr.create_model("lte", preset="tiny"), tmp_path / "lte_tiny.safetensors")
    src = tmp_path / "photo.png"
    Image.fromarray(face_image).save(src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "x8.png"), "--scale", "2", "--weights", str(weights),
                 "--self-ensemble", "8", "--no-progress"]) == 0
    expected = arasfsr.upscale(load_model(weights), face_image, scale=2, self_ensemble=8)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "x8.png")), np.asarray(expected))
    assert main(["upscale", str(src), "-o", str(tmp_path / "x3.png"), "--scale", "2", "--weights", str(weights),
                 "--self-ensemble", "3"]) == 2  # a usage error, before any model is loaded
    assert not (tmp_path / "x3.png").exists()
