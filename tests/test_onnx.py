"""ONNX export (`python -m arasfsr export-onnx`) and rendering with onnxruntime alone (`arasfsr.onnx`).

The exports are made once per test session from the shipped weights (about 10 s each, one thread).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

import arasfsr  # noqa: E402
import arasfsr.onnx as aonnx  # noqa: E402
from arasfsr.cli import main  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def exported(tmp_path_factory):
    """name -> folder of its export, made on first use."""
    folders = {}

    def get(name: str) -> Path:
        if name not in folders:
            folder = tmp_path_factory.mktemp(f"onnx-{name}")
            aonnx.export(name, folder)
            folders[name] = folder
        return folders[name]
    return get


def _face(side: int, seed: int = 0) -> Image.Image:
    """A smooth, face-sized test picture (no face set needed): blurred noise."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray((rng.random((max(2, side // 6), max(2, side // 6), 3)) * 255).astype(np.uint8))
    return small.resize((side, side + 3), Image.BICUBIC)


@pytest.mark.parametrize("name", ["arasfsr", "arasfsr-fast", "lte", "liif"])
def test_onnx_renders_what_torch_renders(exported, name):
    import torch
    torch.set_num_threads(1)
    folder = exported(name)
    model = arasfsr.load_model(name)
    for image, request in ((_face(24), {"scale": 2.5}), (_face(40, 1), {"size": (97, 61)}),
                           (_face(17, 2), {"scale": 7.3})):
        mine = np.asarray(aonnx.upscale(folder, image, chunk_size=1000, **request), dtype=np.int16)
        reference = np.asarray(arasfsr.upscale(model, image, **request), dtype=np.int16)
        assert mine.shape == reference.shape
        assert np.abs(mine - reference).max() <= 1, f"{name} {request}: more than one 8-bit level from torch"
    # before rounding: a thousandth of a level (the same computation, another runtime)
    from arasfsr.inference import render
    lr = _face(24)
    rgb = np.asarray(lr, dtype=np.float32) / 255
    with torch.no_grad():
        torch_float = render(model, torch.from_numpy(rgb).permute(2, 0, 1)[None], (60, 45)).numpy()
    onnx_float = aonnx.OnnxModel(folder).render(rgb, (60, 45), chunk_size=777)
    assert np.abs(onnx_float - torch_float).max() * 255 < 1e-2


def test_the_export_describes_itself_and_the_cli_refuses_to_overwrite(exported, tmp_path, capsys):
    info = json.loads((exported("arasfsr") / "model.json").read_text())
    assert info["format"] == aonnx.FORMAT and info["model"] == "arasfsr"
    assert info["training"]["steps"] == arasfsr.load_model("arasfsr").training_info["steps"]
    out = tmp_path / "export"
    assert main(["export-onnx", "lte", "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(aonnx.FILES)  # weights inside the graphs
    before = (out / "encoder.onnx").stat().st_mtime_ns
    capsys.readouterr()
    assert main(["export-onnx", "lte", "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert (out / "encoder.onnx").stat().st_mtime_ns == before                # nothing replaced
    assert main(["export-onnx", "no-such-model", "-o", str(tmp_path / "other")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and len(err.strip().splitlines()) == 1


def test_rendering_imports_no_torch(exported, tmp_path):
    folder = exported("lte")
    _face(20).save(tmp_path / "face.png")
    code = ("import sys, arasfsr.onnx as o; "
            f"img = o.upscale({str(folder)!r}, {str(tmp_path / 'face.png')!r}, scale=3); "
            "assert img.size == (60, 69), img.size; "
            "assert 'torch' not in sys.modules, 'torch was imported'; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_bad_requests_get_one_line(exported, tmp_path):
    folder = exported("lte")
    with pytest.raises(ValueError, match="scale"):
        aonnx.upscale(folder, _face(20), scale=64)
    with pytest.raises(ValueError, match="not tiled"):
        aonnx.upscale(folder, Image.new("RGB", (600, 600)), scale=1.5)
    with pytest.raises(FileNotFoundError, match="not an exported model"):
        aonnx.upscale(tmp_path, _face(20), scale=2)
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in aonnx.FILES:
        (broken / name).write_bytes((folder / name).read_bytes())
    (broken / "model.json").write_text("{not json")
    with pytest.raises(ValueError, match="JSON"):
        aonnx.upscale(broken, _face(20), scale=2)
    (broken / "model.json").write_text(json.dumps({"format": aonnx.FORMAT, "format_version": 1}))
    (broken / "decoder.onnx").write_bytes(b"\x00" * 100)
    with pytest.raises(ValueError, match="cannot open"):
        aonnx.upscale(broken, _face(20), scale=2)
    with pytest.raises(ValueError, match="chunk_size"):
        aonnx.upscale(folder, _face(20), scale=2, chunk_size=0)


def test_modes_and_scale_one_follow_the_torch_path(exported):
    folder = exported("lte")
    grey = _face(20).convert("L")
    assert aonnx.upscale(folder, grey, scale=2).mode == "L"
    rgba = _face(20).convert("RGBA")
    out = aonnx.upscale(folder, rgba, scale=2)
    assert out.mode == "RGBA" and out.size == (40, 46)
    same = aonnx.upscale(folder, _face(20), scale=1)
    assert np.array_equal(np.asarray(same), np.asarray(_face(20)))


def test_a_failed_export_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")

    def fail(*args, **kwargs):
        (args[2]["encoder.onnx"]).write_bytes(b"half a graph")   # the exporter got this far
        raise RuntimeError("unsupported operator\nmore detail")

    monkeypatch.setattr(aonnx, "_export_graphs", fail)
    with pytest.raises(ValueError, match="exporter failed \\(unsupported operator\\)"):
        aonnx.export("lte", out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]    # no half export, no staging folder
