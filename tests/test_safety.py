"""Nothing lost, nothing surprising: files never destroyed, one-line errors, checks before memory.

Each test names a case from the users' report (issue 13) so that it cannot come back.
"""
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors import safe_open
from safetensors.torch import load_file, save_file

import arasfsr
from arasfsr.cli import main, unique_targets
from arasfsr.data.folder import FaceFolder
from arasfsr.io import IMAGE_SUFFIXES, ImageError, read_image
from arasfsr.weights import WeightFileError, load_model

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "weights" / "arasfsr_small.safetensors"
ENV = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def write_png(path: Path, height: int, width: int) -> Path:
    """A valid all-black 1-bit PNG written row by row: tiny on disk, huge once decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    row = b"\x00" + bytes((width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # 1-bit grayscale
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def bomb(tmp_path_factory) -> Path:
    path = write_png(tmp_path_factory.mktemp("bomb") / "bomb.png", 13000, 13000)
    assert path.stat().st_size < 60_000  # about 37 KB for 169 million pixels
    return path


@pytest.fixture
def photo(tmp_path, face_image) -> Path:
    path = tmp_path / "face.png"
    Image.fromarray(face_image).save(path)
    return path


# peak resident memory of the child process in MB (VmHWM starts afresh at exec, unlike ru_maxrss)
PEAK_MB = "print(int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) // 1024)"


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


# ----------------------------------------------------------------------------- never destroy a file
def test_output_that_is_the_input_file_is_refused(photo, capsys):
    before = photo.read_bytes()
    assert main(["upscale", str(photo), "-o", str(photo), "--scale", "2", "--model", "bicubic"]) == 2
    assert "is the input file" in one_line_error(capsys)
    # the same file reached through a folder output and a relative path
    assert main(["upscale", str(photo), "-o", str(photo.parent), "--scale", "2", "--model", "bicubic"]) == 2
    assert main(["upscale", str(photo), "-o", str(photo.parent / ".." / photo.parent.name / photo.name),
                 "--scale", "2", "--model", "bicubic"]) == 2
    assert photo.read_bytes() == before
    assert main(["upscale", str(photo), "-o", str(photo), "--scale", "2", "--model", "bicubic", "--overwrite"]) == 0
    assert Image.open(photo).size == (56, 40)  # replaced only when asked


def test_output_folder_that_is_the_input_folder_is_refused(tmp_path, face_image, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    Image.fromarray(face_image).save(folder / "a.png")
    before = (folder / "a.png").read_bytes()
    assert main(["upscale", str(folder), "-o", str(folder) + "/", "--scale", "2", "--model", "bicubic"]) == 2
    assert "is the input folder" in one_line_error(capsys)
    assert (folder / "a.png").read_bytes() == before and sorted(os.listdir(folder)) == ["a.png"]


def test_existing_outputs_are_kept_unless_overwrite(tmp_path, photo, face_image, capsys):
    out = tmp_path / "out.png"
    out.write_bytes(b"precious")
    assert main(["upscale", str(photo), "-o", str(out), "--scale", "2", "--model", "bicubic"]) == 2
    assert "already exists" in one_line_error(capsys) and out.read_bytes() == b"precious"
    folder, dest = tmp_path / "in", tmp_path / "dest"
    folder.mkdir()
    dest.mkdir()
    Image.fromarray(face_image).save(folder / "a.png")
    Image.fromarray(face_image).save(folder / "b.png")
    (dest / "b.png").write_bytes(b"precious")
    assert main(["upscale", str(folder), "-o", str(dest), "--scale", "2", "--model", "bicubic"]) == 2
    assert "1 of 2 outputs already exist" in one_line_error(capsys)
    assert (dest / "b.png").read_bytes() == b"precious" and not (dest / "a.png").exists()  # nothing written
    assert main(["upscale", str(folder), "-o", str(dest), "--scale", "2", "--model", "bicubic", "--overwrite"]) == 0
    assert Image.open(dest / "b.png").size == (56, 40)


def test_shared_stems_get_unique_names_and_the_mapping_is_printed(tmp_path, face_image, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(face_image).save(folder / "face.png")
    Image.fromarray(face_image[::-1].copy()).save(folder / "face.jpg")
    Image.fromarray(face_image).save(folder / "other.webp")
    assert main(["upscale", str(folder), "-o", str(tmp_path / "out"), "--scale", "2", "--model", "bicubic",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "face.jpg -> face_jpg.png" in out and "wrote 3 of 3 images" in out
    assert sorted(os.listdir(tmp_path / "out")) == ["face.png", "face_jpg.png", "other.png"]
    # face.png is the PNG's result, face_jpg.png the (flipped) JPEG's
    png = np.asarray(Image.open(tmp_path / "out" / "face.png"), dtype=float)
    jpg = np.asarray(Image.open(tmp_path / "out" / "face_jpg.png"), dtype=float)
    reference = np.asarray(Image.fromarray(face_image).resize((56, 40), Image.BICUBIC), dtype=float)
    assert np.abs(png - reference).max() == 0 and np.abs(jpg - reference).mean() > 5


def test_unique_targets_never_collide():
    names = ["face.png", "face.jpg", "face_jpg.png", "Face.PNG", "x.jpeg", "x.JPEG"]
    jobs = unique_targets([Path("in") / n for n in sorted(names)], Path("out"))
    targets = [j.target.name.lower() for j in jobs]
    assert len(set(targets)) == len(names)
    assert {j.source.name: j.target.name for j in jobs}["face_jpg.png"] == "face_jpg.png"  # unrenamed first


def test_batch_continues_past_a_bomb_and_counts_what_it_wrote(tmp_path, face_image, bomb, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(bomb, folder / "b_bomb.png")
    Image.fromarray(face_image).save(folder / "a.png")
    Image.fromarray(face_image).save(folder / "c.png")
    (folder / "d.png").write_bytes(b"")
    assert main(["upscale", str(folder), "-o", str(tmp_path / "out"), "--scale", "2", "--random-weights", "tiny",
                 "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "wrote 2 of 4 images" in captured.out
    assert "b_bomb.png" in captured.err and "over the limit" in captured.err and "d.png" in captured.err
    assert "Traceback" not in captured.err
    assert sorted(os.listdir(tmp_path / "out")) == ["a.png", "c.png"]


# ----------------------------------------------------------------------------- one-line errors
def _bad_images(tmp_path: Path, bomb: Path) -> dict[str, tuple[Path, str]]:
    good = tmp_path / "good.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(good)
    data = good.read_bytes()
    cases = {"empty.png": (b"", "empty file"), "notes.png": (b"just some text", "not an image"),
             "truncated.png": (data[: len(data) // 2], "cannot decode")}
    files = {}
    for name, (content, reason) in cases.items():
        (tmp_path / name).write_bytes(content)
        files[name] = (tmp_path / name, reason)
    files["bomb.png"] = (bomb, "over the limit")
    return files


def test_bad_images_give_one_line_naming_the_file(tmp_path, bomb, capsys):
    for name, (path, reason) in _bad_images(tmp_path, bomb).items():
        with pytest.raises(ImageError, match=reason) as caught:       # the Python API
            arasfsr.upscale("bicubic", path, scale=2)
        message = str(caught.value)
        assert name in message and "\n" not in message
        assert main(["upscale", str(path), "-o", str(tmp_path / "o.png"), "--scale", "2", "--model", "bicubic"]) == 2
        err = one_line_error(capsys)                                  # the command line
        assert name in err and reason in err
    with pytest.raises(ImageError, match="over the limit"):          # a bomb even with no caller limit
        read_image(bomb, max_pixels=None)


def test_header_is_checked_before_decoding(bomb):
    """The 37 KB 1-bit 13000x13000 PNG costs no memory: refused from its header (was 3.2 GB)."""
    code = ("import sys; from arasfsr.io import read_image, ImageError\n"
            "try:\n    read_image(sys.argv[1])\nexcept ImageError as err:\n    print('refused', err)\n"
            + PEAK_MB)
    done = subprocess.run([sys.executable, "-c", code, str(bomb)], env=ENV, capture_output=True, text=True,
                          timeout=120, check=True)
    lines = done.stdout.splitlines()
    assert lines[0].startswith("refused") and "bomb.png" in lines[0]
    assert int(lines[-1]) < 150, f"peak RSS {lines[-1]} MB"  # decoding alone would take 169 MB


def _retag(src: Path, dst: Path, change) -> Path:
    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
    change(meta)
    save_file(load_file(str(src)), str(dst), metadata=meta)
    return dst


def test_bad_weight_files_give_one_line_naming_the_file(tmp_path, photo, capsys):
    data = SHIPPED.read_bytes()
    (tmp_path / "truncated.safetensors").write_bytes(data[: len(data) // 2])
    (tmp_path / "random.safetensors").write_bytes(np.random.default_rng(1).bytes(5000))
    (tmp_path / "tiny.safetensors").write_bytes(b"\x01\x02")
    _retag(SHIPPED, tmp_path / "json.safetensors", lambda m: m.update(config="{not json"))
    (tmp_path / "garbage.pth").write_bytes(b"not a pickle at all")
    expected = {"truncated.safetensors": "truncated", "random.safetensors": "not a valid .safetensors",
                "tiny.safetensors": "not a valid .safetensors", "json.safetensors": "'config' is not valid JSON",
                "garbage.pth": "cannot read it as a torch checkpoint"}
    for name, reason in expected.items():
        with pytest.raises(WeightFileError, match=reason) as caught:
            load_model(tmp_path / name)
        assert name in str(caught.value) and "\n" not in str(caught.value)
        assert main(["upscale", str(photo), "-o", str(tmp_path / "o.png"), "--scale", "2",
                     "--weights", str(tmp_path / name)]) == 2
        err = one_line_error(capsys)
        assert name in err and reason in err


@pytest.mark.slow
def test_tampered_config_is_refused_before_allocation(tmp_path):
    """A 1.9 MB file claiming hidden_dim 40000 (12.8 GB of weights) is refused from its header."""
    def tamper(meta):
        config = json.loads(meta["config"])
        config["hidden_dim"] = 40000
        meta["config"] = json.dumps(config)
    path = _retag(SHIPPED, tmp_path / "tampered.safetensors", tamper)
    with pytest.raises(WeightFileError, match=r"tampered.safetensors: its config does not match its tensors"):
        load_model(path)
    code = ("import sys; from arasfsr.weights import load_model, WeightFileError\n"
            "try:\n    load_model(sys.argv[1])\nexcept WeightFileError as err:\n    print('refused')\n"
            + PEAK_MB)
    done = subprocess.run([sys.executable, "-c", code, str(path)], env=ENV, capture_output=True, text=True,
                          timeout=240, check=True)
    assert done.stdout.splitlines()[0] == "refused"
    assert int(done.stdout.splitlines()[-1]) < 1500, f"peak RSS {done.stdout.splitlines()[-1]} MB"


def test_absurd_block_count_is_refused_before_building(tmp_path):
    def tamper(meta):
        config = json.loads(meta["config"])
        config["encoder_blocks"] = 10 ** 9  # would hang building a billion modules, even on `meta`
        meta["config"] = json.dumps(config)
    path = _retag(SHIPPED, tmp_path / "blocks.safetensors", tamper)
    with pytest.raises(WeightFileError, match="encoder_blocks=1000000000 cannot describe this file"):
        load_model(path)


def test_corrupt_training_image_is_named(tmp_path, face_image):
    Image.fromarray(face_image).save(tmp_path / "a.png")
    data = (tmp_path / "a.png").read_bytes()
    (tmp_path / "b.png").write_bytes(data[: len(data) // 2])
    faces = FaceFolder(tmp_path)
    assert faces[0].size == (28, 20)
    with pytest.raises(ValueError, match=r"b\.png: cannot decode"):
        faces[1]


def test_one_suffix_set_for_cli_and_training_folders():
    from arasfsr.data import folder
    assert set(folder.IMAGE_EXTENSIONS) == IMAGE_SUFFIXES


def test_exit_codes_are_documented():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Command line"):]
    for code in ("`0`", "`1`", "`2`", "`3`"):
        assert code in section[:section.index("\n## ", 5)]


# ----------------------------------------------------------------------------- checks before torch
def test_help_and_usage_errors_do_not_import_torch(photo):
    code = ("import sys; from arasfsr.cli import main\n"
            "codes = [main(['--help']), main(['upscale', '--help']),\n"
            "         main(['upscale', sys.argv[1], '-o', sys.argv[1], '--scale', '2']),\n"
            "         main(['upscale', sys.argv[1], '-o', 'x.png', '--scale', '0']),\n"
            "         main(['upscale', sys.argv[1], '-o', 'x.png', '--size', '4x4']),\n"
            "         main(['video', '--help']), main(['video', sys.argv[1], '-o', 'x.avi', '--scale', '2']),\n"
            "         main(['video', sys.argv[1], '-o', 'x.mp4', '--scale', '2'])]\n"
            "print(codes, 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(photo)], env=ENV, capture_output=True, text=True,
                          timeout=60, check=True, cwd=photo.parent)
    assert done.stdout.strip().splitlines()[-1] == "[0, 0, 2, 2, 2, 0, 2, 2] False"
    assert "smaller than the input" in done.stderr
    assert "the output must end in .mp4" in done.stderr and "is a still image" in done.stderr  # video, no torch


def test_model_and_weights_must_agree(photo, tmp_path, capsys):
    lte = REPO / "weights" / "lte_small.safetensors"
    assert main(["upscale", str(photo), "-o", str(tmp_path / "o.png"), "--scale", "2", "--model", "arasfsr",
                 "--weights", str(lte)]) == 2
    assert "disagrees" in one_line_error(capsys)
    assert main(["upscale", str(photo), "-o", str(tmp_path / "o.png"), "--scale", "2", "--model", "lte",
                 "--weights", str(lte)]) == 0


def test_width_and_height_flags(photo, tmp_path):
    """The input is 20 high x 28 wide; a missing side keeps the aspect ratio."""
    for flags, size in [(["--width", "56"], (56, 40)), (["--height", "30"], (42, 30)),
                        (["--width", "50", "--height", "30"], (50, 30)), (["--size", "30x50"], (50, 30))]:
        out = tmp_path / f"o{len(flags)}{flags[0]}.png"
        assert main(["upscale", str(photo), "-o", str(out), "--model", "bicubic", *flags]) == 0
        assert Image.open(out).size == size  # PIL sizes are (width, height)


# ----------------------------------------------------------------------------- packaging
@pytest.mark.slow
def test_wheel_ships_the_weights_and_an_install_finds_them(tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "arasfsr", source / "arasfsr", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(REPO / "weights", source / "weights")
    subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "--no-build-isolation", "-q",
                    "-w", str(tmp_path / "dist")], cwd=source, check=True, capture_output=True, timeout=240)
    wheel = next((tmp_path / "dist").glob("arasfsr-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for weights in (REPO / "weights").glob("*.safetensors"):
        assert f"arasfsr/shipped_weights/{weights.name}" in names
    for module in REPO.glob("arasfsr/**/*.py"):
        assert module.relative_to(REPO).as_posix() in names
    # an "installed" copy, away from the repository, finds its shipped weights
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("import arasfsr, arasfsr.weights as w; m = arasfsr.load_model('lte', device='cpu');"
            "print(w.WEIGHTS_DIR.name, m.config.name)")
    env = {k: v for k, v in ENV.items() if k != "ARASFSR_WEIGHTS_DIR"}
    env["PYTHONPATH"] = str(site)
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.split() == ["shipped_weights", "lte"]


def test_missing_weights_name_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setattr(arasfsr.weights, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(FileNotFoundError, match="ARASFSR_WEIGHTS_DIR"):
        load_model()


@pytest.mark.parametrize("module,missing,extra", [("arasfsr.faces", "cv2", "arasfsr[data]"),
                                                  ("arasfsr.data.offline", "cv2", "arasfsr[data]")])
@pytest.mark.slow
def test_optional_dependency_errors_name_the_extra(module, missing, extra):
    code = (f"import sys; sys.modules[{missing!r}] = None\n"
            f"try:\n    import {module}\nexcept ImportError as e:\n    print(e)")
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=60,
                          check=True)
    assert f"pip install '{extra}'" in done.stdout
