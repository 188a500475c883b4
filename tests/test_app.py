"""The Gradio demo: page construction, handlers (sizes, refusals, odd image modes), whole-photo mode,
the robustness view, the Spaces front matter, and the app end to end through gradio_client.

CPU, no network. Uses the shipped weights when present, else untrained tiny stand-ins.
"""
from __future__ import annotations

import csv
import os
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

import gradio as gr  # noqa: E402  (after _demo_support set the offline environment)
import numpy as np
import pytest
from _demo_support import REPO, demo_weights, free_port, launched_app, make_standins, one_thread
from PIL import Image

from arasfsr import damage, restore
from demo import face, images, jobs, limits, models, photo, robustness, sizes, ui, zoom
from demo.errors import InputError, Stopped
from demo.examples import prepare_examples


@pytest.fixture(scope="module", autouse=True)
def weights(tmp_path_factory):
    with demo_weights(tmp_path_factory.mktemp("weights")) as folder, one_thread():
        yield folder


@pytest.fixture(scope="module")
def examples():
    return prepare_examples()


def save(array_or_image, path: Path, **kwargs) -> Path:
    image = array_or_image if isinstance(array_or_image, Image.Image) else Image.fromarray(array_or_image)
    image.save(path, **kwargs)
    return path


def smooth(height: int, width: int) -> np.ndarray:
    """A smooth (height, width, 3) uint8 test image."""
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([np.sin(x / 5), np.cos(y / 6), np.sin((x + y) / 7)], -1) * 0.4 + 0.5
    return (rgb * 255).round().astype(np.uint8)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height but holds (almost) no pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")


# ----------------------------------------------------------------------------- the page
def test_build_demo_constructs_without_launching():
    demo = ui.build_demo()
    assert isinstance(demo, gr.Blocks) and not demo.is_running
    endpoints = {fn.api_name: fn for fn in demo.fns.values()}
    for name in ("upscale", "restore", "robustness"):
        assert endpoints[name].api_visibility == "public"
        assert endpoints[name].concurrency_id == "model" and endpoints[name].concurrency_limit == ui.CONCURRENCY
    assert demo._queue.max_size == ui.QUEUE_SIZE
    images_ = [b for b in demo.blocks.values() if isinstance(b, (gr.Image, gr.ImageSlider))]
    assert len(images_) >= 8 and all(b.format == "png" for b in images_)  # never lossy WebP
    assert not list((REPO / "demo").glob("*.pyi"))  # no stub files written at import (component subclasses do)
    # every run has a Stop button that cancels it
    runs = {endpoints[name]._id for name in ("upscale", "restore", "robustness")}
    cancelled = {i for fn in demo.fns.values() if fn.is_cancel_function for i in fn.cancels}
    assert runs <= cancelled
    assert sum(getattr(fn.fn, "__name__", "") == "stop" for fn in demo.fns.values()) == 4  # and sets the Stop flag
    # examples come with their results, computed when the page is launched
    examples = [b for b in demo.blocks.values() if isinstance(b, gr.Dataset)]
    assert len(examples) == 3
    # the model card's limits, on the page (not in a closed accordion)
    texts = [b.value for b in demo.blocks.values() if isinstance(b, gr.Markdown) and b.elem_id == "intro"]
    assert models.LIMITS in texts[0] and "identify" in models.LIMITS and "aligned" in models.LIMITS
    # no typed scale is clamped by the page: plain number boxes, no min/max
    for elem_id in ("scale", "photo-scale"):
        box = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id)
        assert isinstance(box, gr.Number) and box.minimum is None and box.maximum is None


def test_refusals_become_gr_error_with_the_reason():
    with pytest.raises(gr.Error, match="only enlarges"):
        with ui.refusals():
            sizes.check_scale(0.5)
    with pytest.raises(gr.Error, match="Stopped"):
        with ui.refusals():
            raise Stopped("Stopped: the run was cancelled before it finished.")


def test_plan_size_for_scale_and_size_requests():
    """(height, width) in and out, planned by arasfsr.inference.output_size."""
    assert sizes.plan_size((64, 64), "scale", 2.5) == (160, 160)
    assert sizes.plan_size((20, 28), "scale", 3.7) == (74, 104)  # round(20 x 3.7), round(28 x 3.7)
    assert sizes.plan_size((64, 64), "size", width=200, height=100) == (100, 200)  # anisotropic
    assert sizes.plan_size((64, 64), "scale", "16") == (1024, 1024)


@pytest.mark.parametrize("kwargs,message", [
    (dict(scale=0), "from 1 to 32"), (dict(scale=-2), "from 1 to 32"), (dict(scale=float("nan")), "finite"),
    (dict(scale=float("inf")), "finite"), (dict(scale=32.01), "from 1 to 32"), (dict(scale=None), "Give a scale"),
    (dict(scale=100), "from 1 to 32.*got 100"), (dict(scale=0.5), "from 1 to 32.*got 0.5"),
    (dict(scale="two"), "must be a number"), (dict(scale=True), "Give a scale"),
    (dict(resize_by="size", width=0, height=100), "above 0"),
    (dict(resize_by="size", width=100, height=0), "above 0"),
    (dict(resize_by="size", width=-5, height=100), "above 0"),
    (dict(resize_by="size", width=100.5, height=100), "whole"),
    (dict(resize_by="size", width=None, height=100), "Give a target width"),
    (dict(resize_by="size", width=32, height=100), "smaller than the input"),
    (dict(resize_by="size", width=2100, height=100), "scale above 32 \\(MAX_SCALE\\)"),
    (dict(resize_by="zoom", scale=2), "Resize by"),
])
def test_plan_size_refuses(kwargs, message):
    with pytest.raises(InputError, match=message):
        sizes.plan_size((64, 64), **kwargs)


def test_output_megapixel_limit():
    limit = limits.megapixels(limits.max_output_pixels())
    with pytest.raises(InputError, match=f"{limit} MP limit.*largest scale"):
        sizes.plan_size((1024, 1024), "scale", 2.5)


# ----------------------------------------------------------------------------- face mode
def test_upscale_face_sizes_and_outputs(tmp_path):
    path = save(smooth(20, 28), tmp_path / "face.png")
    result = face.upscale_face(path, 2.5)
    out, bicubic = Image.open(result.result_path), Image.open(result.bicubic_path)
    assert out.size == bicubic.size == (70, 50) and result.result_path.suffix == ".png"
    assert not np.array_equal(np.asarray(out), np.asarray(bicubic))
    sized = face.upscale_face(path, model_label="LTE", resize_by="size", width=90, height=31)
    assert Image.open(sized.result_path).size == (90, 31)
    sampled = face.upscale_face(path, 2.0, sample=True, seed=3)
    assert "sampled, seed 3" in sampled.info
    progress = []
    face.upscale_face(path, 2.0, model_label="LIIF", progress=lambda f, d: progress.append(f))
    # progress fractions rise through the run (the last phases are saving the files), never past 1
    assert len(progress) >= 2 and progress == sorted(progress) and 0.9 <= progress[-1] <= 1


def test_unknown_or_missing_model(tmp_path, monkeypatch):
    path = save(smooth(16, 16), tmp_path / "face.png")
    with pytest.raises(InputError, match="Unknown model"):
        face.upscale_face(path, 2.0, model_label="GFPGAN")
    make_standins(tmp_path / "only_arasfsr", names=("arasfsr",))
    monkeypatch.setattr(models.weights, "WEIGHTS_DIR", tmp_path / "only_arasfsr")
    assert models.available_models() == {models.AUTO: True, "ARASFSR": True, models.FAST: False, "LIIF": False,
                                         "LTE": False, models.REAL_PHOTO: False, models.HEAVY: False,
                                         models.PHOTO: False, "Bicubic": True}
    with pytest.raises(InputError, match="liif_small.safetensors is missing"):
        face.upscale_face(path, 2.0, model_label="LIIF")
    assert "not available" in models.model_card() and models.REAL_PHOTO not in models.model_card()
    assert models.PHOTO not in models.face_choices() and models.background()[0] == "bicubic"
    assert "not installed" in models.background()[1]
    assert Image.open(face.upscale_face(path, 2.0).result_path).size == (32, 32)  # ARASFSR still works


def _bad_files(folder: Path) -> dict[str, tuple[Path, str]]:
    files = {}
    (folder / "notes.txt").write_text("not an image at all")
    files["text"] = (folder / "notes.txt", "not an image")
    (folder / "fake.png").write_bytes(b"this is not a png")
    files["fake_png"] = (folder / "fake.png", "not an image")
    (folder / "empty.png").write_bytes(b"")
    files["zero_bytes"] = (folder / "empty.png", "empty file")
    good = save(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8), folder / "whole.png")
    (folder / "truncated.png").write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    files["truncated_png"] = (folder / "truncated.png", "truncated or corrupt")
    jpeg = save(smooth(64, 64), folder / "whole.jpg", quality=90)
    (folder / "truncated.jpg").write_bytes(jpeg.read_bytes()[: jpeg.stat().st_size // 2])
    files["truncated_jpeg"] = (folder / "truncated.jpg", "truncated or corrupt")
    (folder / "bomb.png").write_bytes(png_header_only(60000, 60000))
    files["decompression_bomb"] = (folder / "bomb.png", "decompression bomb")
    (folder / "huge.png").write_bytes(png_header_only(5000, 4000))
    files["over_side_limit"] = (folder / "huge.png", "up to 1024 px")
    files["too_small"] = (save(smooth(4, 4), folder / "tiny.png"), "at least 8 x 8")
    with open(folder / "big.png", "wb") as f:
        f.truncate(limits.MAX_UPLOAD_BYTES + 1)
    files["over_upload_limit"] = (folder / "big.png", "the limit is 10 MB")
    (folder / "vector.eps").write_text("%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    files["eps_never_run"] = (folder / "vector.eps", "not an image")
    return files


@pytest.mark.parametrize("kind", ["text", "fake_png", "zero_bytes", "truncated_png", "truncated_jpeg",
                                  "decompression_bomb", "over_side_limit", "too_small", "over_upload_limit",
                                  "eps_never_run"])
def test_bad_files_are_refused_with_the_reason(tmp_path, kind):
    path, message = _bad_files(tmp_path)[kind]
    with pytest.raises(InputError, match=message):
        face.upscale_face(path, 2.0)


def test_no_upload_and_bad_seed(tmp_path):
    with pytest.raises(InputError, match="Upload an image"):
        face.upscale_face(None, 2.0)
    path = save(smooth(16, 16), tmp_path / "face.png")
    with pytest.raises(InputError, match="seed"):
        face.upscale_face(path, 2.0, sample=True, seed=1.5)


def test_large_photo_is_refused_in_face_mode_only(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(png_header_only(2000, 1500))
    with pytest.raises(InputError, match="Whole photo tab"):
        images.probe_image(path)
    assert images.probe_image(path, limits.MAX_PHOTO_SIDE).width == 2000


def _odd_images(folder: Path) -> dict[str, Path]:
    rgb = smooth(20, 28)
    rgba = np.dstack([rgb, np.tile(np.linspace(0, 255, 28).astype(np.uint8), (20, 1))])
    paths = {"rgba": save(Image.fromarray(rgba, "RGBA"), folder / "rgba.png"),
             "gray": save(rgb[..., 0], folder / "gray.png"),
             "palette": save(Image.fromarray(rgb).quantize(16), folder / "palette.png"),
             "gray16": save(Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)), folder / "gray16.png"),
             "cmyk": save(Image.fromarray(rgb).convert("CMYK"), folder / "cmyk.jpg", quality=95)}
    transparent = Image.fromarray(rgb).quantize(16)
    transparent.info["transparency"] = 0
    paths["palette_transparent"] = save(transparent, folder / "palette_t.png", transparency=0)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 28 wide x 20 high, shown turned 90 degrees: 20 wide x 28 high
    paths["exif_rotated"] = save(Image.fromarray(rgb), folder / "rotated.jpg", exif=exif, quality=95)
    import cv2  # Pillow cannot write 48-bit PNGs; it reads them as 8-bit RGB
    cv2.imwrite(str(folder / "rgb16.png"), rgb[..., ::-1].astype(np.uint16) * 257)
    paths["rgb16"] = folder / "rgb16.png"
    red, blue = Image.new("RGB", (28, 20), (220, 20, 20)), Image.new("RGB", (28, 20), (20, 20, 220))
    red.save(folder / "animated.gif", save_all=True, append_images=[blue], duration=100, loop=0)
    paths["animated_gif"] = folder / "animated.gif"
    return paths


@pytest.mark.parametrize("kind,size,mode", [
    ("rgba", (56, 40), "RGBA"), ("gray", (56, 40), "L"), ("palette", (56, 40), "RGB"),
    ("palette_transparent", (56, 40), "RGBA"), ("gray16", (56, 40), "I;16"), ("cmyk", (56, 40), "RGB"),
    ("exif_rotated", (40, 56), "RGB"), ("animated_gif", (56, 40), "RGB"), ("rgb16", (56, 40), "RGB"),
])
def test_odd_images_are_accepted(tmp_path, kind, size, mode):
    path = _odd_images(tmp_path)[kind]
    result = face.upscale_face(path, 2.0)
    out = Image.open(result.result_path)
    assert out.size == size and out.mode == mode
    if kind == "rgba":  # the alpha ramp survives
        alpha = np.asarray(out.getchannel("A"), np.float64)
        assert alpha[:, 0].mean() < 20 and alpha[:, -1].mean() > 235
    if kind == "animated_gif":
        assert "first frame of 2" in result.info
        colour = np.asarray(Image.open(face.upscale_face(path, 2.0, model_label="Bicubic").result_path))
        assert colour[..., 0].mean() > 150 and colour[..., 2].mean() < 100  # the red first frame
    if kind == "exif_rotated":
        assert "EXIF orientation" in result.info
    if kind == "rgb16":  # never silent: the visitor is told the 16-bit colours were read as 8-bit
        assert "16-bit colour: the file was read as 8 bits per channel" in result.info
    else:
        assert "16-bit colour" not in result.info


def test_describe_request_shows_the_size_before_running(tmp_path):
    path = save(smooth(64, 48), tmp_path / "face.png")
    assert "Output: 120 x 160 px" in sizes.describe_request(path, "scale", 2.5)
    assert "Output: 300 x 100 px" in sizes.describe_request(path, "size", 2.5, 300, 100)
    assert "Cannot run" in sizes.describe_request(path, "scale", 40)
    assert "Upload" in sizes.describe_request(None)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):  # a bad file is refused at upload, before any run
        sizes.describe_request(tmp_path / "empty.png")


def test_zoom_view(tmp_path):
    a = save(smooth(100, 80), tmp_path / "a.png")
    b = save(255 - smooth(100, 80), tmp_path / "b.png")
    view = zoom.zoom_view(a, b, center=(1.0, 0.0))
    assert view.mode == "RGB" and view.width > 2 * view.height - 60  # two square panels side by side
    assert np.asarray(view)[:5, :5].mean() != np.asarray(view)[:5, -5:].mean()


# ----------------------------------------------------------------------------- robustness view
@pytest.mark.slow
def test_robustness_view(examples, tmp_path):
    result = robustness.robustness(examples["grace_hopper_256"], 128)
    assert result.sheet.size == (5 * (128 + 4) - 4, 20 + 3 * (128 + 4) - 4)  # 4 input sizes + reference
    assert result.table.count("| x") == 4 and "Left out" not in result.table
    assert result.table.count("dB") == 6 and "| x1.00 |" in result.table  # 128 -> 128: bicubic is "identical"
    small = robustness.robustness(save(smooth(64, 64), tmp_path / "small.png"), 96)
    assert small.table.count("| x") == 2 and "64 px (the input is only 64 px high)" in small.table
    assert "No PSNR" in small.table
    with pytest.raises(InputError, match="bicubic is already shown"):
        robustness.robustness(examples["grace_hopper_256"], 128, "Bicubic")
    with pytest.raises(InputError, match="output size"):
        robustness.robustness(examples["grace_hopper_256"], 0)


# ----------------------------------------------------------------------------- whole-photo mode
@pytest.mark.slow
def test_whole_photo_super_resolves_the_face_only(examples, monkeypatch):
    monkeypatch.setitem(models.CHOICES, models.PHOTO, "missing_natural.safetensors")  # a 0.4 install: no natural model
    result = photo.enhance_photo(examples["astronaut"], 1.5)
    out = np.asarray(Image.open(result.result_path))
    bicubic = np.asarray(Image.open(result.bicubic_path))
    assert out.shape == bicubic.shape == (768, 768, 3)
    assert [f.status for f in result.faces] == [restore.ENHANCED] and "1 face found, 1 super-resolved" in result.report
    x, y, w, h = (round(v * 1.5) for v in result.faces[0].box)
    assert not np.array_equal(out[y:y + h, x:x + w], bicubic[y:y + h, x:x + w])
    assert np.array_equal(out[-100:, -100:], bicubic[-100:, -100:])  # far from the face: bicubic exactly
    assert "drawn by bicubic interpolation" in result.report
    assert result.overview.size[0] <= 640


@pytest.mark.slow
def test_whole_photo_draws_the_background_with_the_natural_model(examples):
    if not models.available_models()[models.PHOTO]:
        pytest.skip("natural weights not installed")
    result = photo.enhance_photo(examples["astronaut"], 1.5)
    out = np.asarray(Image.open(result.result_path), np.int16)
    bicubic = np.asarray(Image.open(result.bicubic_path), np.int16)
    assert "drawn by the natural-photo model" in result.report
    assert np.abs(out[-100:, -100:] - bicubic[-100:, -100:]).max() > 2  # far from the face: not bicubic


@pytest.mark.slow
def test_whole_photo_keeps_transparency(examples, tmp_path):
    rgba = np.dstack([np.asarray(Image.open(examples["astronaut"])), np.full((512, 512), 255, np.uint8)])
    rgba[:64, :64, 3] = 0
    result = photo.enhance_photo(save(Image.fromarray(rgba, "RGBA"), tmp_path / "cutout.png"), 1.25)
    out = Image.open(result.result_path)
    assert out.mode == "RGBA" and out.size == (640, 640) and result.faces[0].status == restore.ENHANCED
    alpha = np.asarray(out.getchannel("A"))
    assert alpha[:70, :70].max() == 0 and alpha[100:, 100:].min() == 255


@pytest.mark.slow
def test_whole_photo_reports_faces_it_leaves_alone(examples, monkeypatch, tmp_path):
    too_large = photo.enhance_photo(examples["grace_hopper"], 3.3)  # a 320 px face -> 1056 px > 1024
    assert too_large.faces[0].status == restore.KEPT and "too large" in too_large.report
    assert "fits up to x3.2" in too_large.report
    monkeypatch.setattr(restore, "MIN_FACE_SIDE", 1000)
    small = photo.enhance_photo(examples["astronaut"], 1.0)
    assert small.faces[0].reason.startswith("too small") and "too small" in small.report
    wall = np.full((1700, 2600, 3), 128, np.uint8)  # 4.4 MP: over arasfsr.upscale's input limit, fine here
    flat = photo.enhance_photo(save(wall, tmp_path / "wall.png"), 1.0)
    assert flat.faces == [] and "No face was found" in flat.report
    assert np.array_equal(np.asarray(Image.open(flat.result_path)), wall)
    with pytest.raises(InputError, match="needs a model"):
        photo.enhance_photo(examples["astronaut"], 2.0, "Bicubic")
    with pytest.raises(InputError, match="MP limit"):
        photo.enhance_photo(examples["astronaut"], 8.5)  # 4352 x 4352 px
    with pytest.raises(InputError, match="from 1 to 32.*got 100"):
        photo.enhance_photo(examples["astronaut"], 100)


def test_real_photo_model_is_offered_only_when_its_file_exists(tmp_path, monkeypatch, examples):
    folder = make_standins(tmp_path / "w")
    monkeypatch.setattr(models.weights, "WEIGHTS_DIR", folder)
    assert models.REAL_PHOTO not in models.face_choices() and models.photo_default() == models.AUTO
    (folder / models.REAL_PHOTO_FILE).write_bytes((folder / "arasfsr_small.safetensors").read_bytes())
    assert models.REAL_PHOTO in models.face_choices() and models.REAL_PHOTO in models.photo_choices()
    assert models.photo_default() == models.AUTO
    result = photo.enhance_photo(examples["astronaut"], 1.25, models.REAL_PHOTO)
    assert f"with {models.REAL_PHOTO}" in result.report and "arasfsr-real" in Path(result.result_path).name
    assert models.REAL_PHOTO in models.model_card()


def test_auto_chooses_by_the_inputs_damage_and_says_why(tmp_path, examples):
    clean = photo.enhance_photo(examples["astronaut"], 1.25)  # no model named: Auto
    assert clean.report.startswith("Auto chose ARASFSR: ") and "no JPEG tables" in clean.report
    Image.open(examples["astronaut"]).convert("RGB").resize((64, 64)).save(tmp_path / "q30.jpg", quality=30)
    label, note = models.resolve(models.AUTO, tmp_path / "q30.jpg")
    name = models.SHORT[label]
    assert name == damage.CHOICE["heavy"] and "quality 30" in note
    result = face.upscale_face(tmp_path / "q30.jpg", 1.5)
    assert any("quality 30" in n for n in result.notes) and f"_{name}_" in Path(result.result_path).name
    # and on a JPEG it keeps a share of the model's detail, says so, and draws exactly that
    share = damage.DETAIL["heavy"]
    assert share < 1 and any(f"{share:.0%} of their detail over bicubic" in n for n in result.notes)
    assert "detail" not in clean.report
    import arasfsr
    from arasfsr.weights import load_model
    expected = arasfsr.upscale(load_model(name), tmp_path / "q30.jpg", scale=1.5, detail=share)
    drawn = np.asarray(Image.open(result.result_path).convert("RGB"), np.int16)
    assert np.abs(drawn - np.asarray(expected, np.int16)).max() <= 1


def test_the_demo_opens_no_image_itself():
    """Every image the demo reads goes through the package's reader (`arasfsr.io`)."""
    for path in sorted((REPO / "demo").glob("*.py")):
        text = path.read_text()
        assert "Image.open(" not in text and "ImageOps" not in text and "exif_transpose" not in text, path.name


def test_a_whole_photo_is_read_once_and_its_bicubic_made_once(tmp_path, monkeypatch):
    """The JPEG's tables come with the one read (Auto still sees quality 85), and the bicubic
    baseline shown on the page is the canvas restore blends the faces into."""
    from arasfsr import io as arasfsr_io
    source = save(Image.fromarray(smooth(96, 128)), tmp_path / "q85.jpg", quality=85)
    opened, resized = [], []
    monkeypatch.setattr(arasfsr_io, "open_file", lambda p, _f=arasfsr_io.open_file: opened.append(p) or _f(p))
    monkeypatch.setattr(restore, "bicubic_background",
                        lambda *a, _f=restore.bicubic_background: resized.append(1) or _f(*a))
    result = photo.enhance_photo(source, 1.5)
    assert len(opened) == 1 and len(resized) == 1
    assert "quality 85" in result.report
    baseline = np.asarray(Image.open(result.bicubic_path), np.int16)
    expected = np.asarray(Image.open(source).resize((192, 144), Image.BICUBIC), np.int16)
    assert np.abs(baseline - expected).max() <= 1


# ----------------------------------------------------------------------------- long runs
def _estimates(tracker: jobs.Tracker, total: float) -> list[float]:
    """Total time predicted at each progress report from 20% on (elapsed / fraction), over the real total."""
    return [elapsed / fraction / total for elapsed, fraction in tracker.reports if 0.2 <= fraction < 0.97]


@pytest.mark.slow
def test_progress_estimates_are_within_2x_of_the_real_time(examples):
    tracker = jobs.Tracker(None)
    started = time.perf_counter()
    face.upscale_face(examples["grace_hopper_64"], 8.0, progress=tracker)  # 512 x 512: several chunks
    ratios = _estimates(tracker, time.perf_counter() - started)
    assert len(ratios) >= 2 and all(0.5 <= r <= 2 for r in ratios), ratios
    tracker = jobs.Tracker(None)
    started = time.perf_counter()
    photo.enhance_photo(examples["astronaut"], 2.0, progress=tracker)
    ratios = _estimates(tracker, time.perf_counter() - started)
    assert ratios and all(0.5 <= r <= 2 for r in ratios), ratios
    shown = []
    face.upscale_face(examples["grace_hopper_64"], 6.0, progress=lambda f, d: shown.append(d))
    assert any(d.endswith("s left)") for d in shown)  # the visitor sees the estimate


@pytest.mark.slow
def test_stop_ends_a_run_at_the_next_chunk(examples):
    calls = []

    def press_stop_at_first_report(fraction, what):
        calls.append(fraction)
        jobs.request_stop("session-1")

    with pytest.raises(Stopped):
        face.upscale_face(examples["grace_hopper_64"], 8.0, progress=jobs.Tracker(press_stop_at_first_report,
                                                                                   "session-1"))
    assert len(calls) == 1 and calls[0] < 0.5  # stopped after one chunk of four
    assert not jobs.stop_requested("session-1")  # the flag is used up: the next run goes through
    face.upscale_face(examples["grace_hopper_64"], 1.5, progress=jobs.Tracker(None, "session-1"))


# ----------------------------------------------------------------------------- hosting
def test_spaces_front_matter():
    from huggingface_hub import SpaceCard
    from packaging.specifiers import SpecifierSet

    card = SpaceCard.load(REPO / "README.md").data
    assert card.sdk == "gradio" and card.app_file == "app.py" and card.title and card.emoji and card.license
    assert card.short_description and len(card.short_description) <= 60
    requirement = next(line.split(";")[0].strip() for line in (REPO / "requirements.txt").read_text().splitlines()
                       if line.startswith("gradio"))
    pinned = SpecifierSet(requirement[len("gradio"):])
    assert card.sdk_version in pinned and gr.__version__ in pinned
    assert card.sdk_version.split(".")[0] == gr.__version__.split(".")[0]


@pytest.mark.slow
def test_python_app_py_serves_the_demo(weights):
    """The host's command: python app.py, on $PORT, with the offline defaults set before gradio loads."""
    port = free_port()
    env = {**os.environ, "PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1", "OMP_NUM_THREADS": "1",
           "ARASFSR_WEIGHTS_DIR": str(weights)}
    env.pop("GRADIO_ANALYTICS_ENABLED", None)
    server = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/gradio_api/info", timeout=2) as response:
                    info = response.read().decode()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    pytest.fail(f"app.py did not serve: {server.stderr.read().decode()[-2000:]}")
                time.sleep(0.5)
        assert all(f'"/{name}"' in info for name in ("upscale", "restore", "video", "robustness"))
    finally:
        server.terminate()
        server.wait(timeout=30)


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def client():
    from gradio_client import Client

    with launched_app() as url:
        yield Client(url, verbose=False)


@pytest.mark.slow
def test_client_upscales_at_a_non_integer_scale(client, examples):
    from gradio_client import handle_file

    source = examples["astronaut_96"]
    result, bicubic, pair, download, info, zoom = client.predict(handle_file(str(source)), 2.5, api_name="/upscale")
    out, ref = Image.open(result), Image.open(bicubic)
    assert out.size == ref.size == (240, 240) and Image.open(download).size == (240, 240)
    assert not np.array_equal(np.asarray(out), np.asarray(ref))  # the model is not bicubic
    expected = Image.open(source).convert("RGB").resize((240, 240), Image.BICUBIC)
    assert np.array_equal(np.asarray(ref), np.asarray(expected))  # lossless PNG all the way to the client
    assert len(pair) == 2 and "240 x 240" in info and Image.open(zoom).width > 0


@pytest.mark.slow
def test_client_size_request_and_refusals_keep_the_server_up(client, examples, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    face = handle_file(str(examples["grace_hopper_64"]))
    result = client.predict(face, 4.0, "ARASFSR", "size", 200, 100, api_name="/upscale")[0]
    assert Image.open(result).size == (200, 100)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(tmp_path / "notes.txt")), 2.0, api_name="/upscale")
    with pytest.raises(AppError, match="from 1 to 32"):
        client.predict(face, 0, api_name="/upscale")
    with pytest.raises(AppError, match="above 0"):
        client.predict(face, 2.0, "ARASFSR", "size", 0, 100, api_name="/upscale")
    assert Image.open(client.predict(face, 1.5, api_name="/upscale")[0]).size == (96, 96)  # still serving


@pytest.mark.slow
def test_client_bad_values_get_one_line_and_no_traceback_in_the_log(client, examples, capfd):
    """Whatever an API client sends, it gets our one-line reason, and the server log stays free of tracebacks."""
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    face_file = handle_file(str(examples["grace_hopper_64"]))
    capfd.readouterr()
    bad = [((face_file, 100), "from 1 to 32.*got 100"), ((face_file, 0.5), "from 1 to 32.*got 0.5"),
           ((face_file, "abc"), "must be a number"), ((face_file, 2.0, "GFPGAN"), "Unknown model"),
           ((face_file, 2.0, "ARASFSR", "zoom"), "Resize by"),
           ((face_file, 2.0, "ARASFSR", "size", None, 100), "Give a target width"),
           ((face_file, 2.0, "ARASFSR", "scale", 256, 256, True, "x"), "seed")]
    for args, message in bad:
        with pytest.raises(AppError, match=message) as error:
            client.predict(*args, api_name="/upscale")
        assert "\n" not in str(error.value).strip()
    with pytest.raises(AppError, match="from 1 to 32.*got 100"):
        client.predict(handle_file(str(examples["astronaut"])), 100, api_name="/restore")
    with pytest.raises(AppError, match="output size"):
        client.predict(face_file, "big", api_name="/robustness")
    log = capfd.readouterr()
    assert "Traceback" not in log.err + log.out


@pytest.mark.slow
def test_examples_have_results_before_anyone_runs_them(client):
    """Launching the page cached every example's output (before/after slider and text)."""
    folders = [p for p in Path(os.environ["GRADIO_EXAMPLES_CACHE"]).iterdir() if (p / "log.csv").is_file()]
    assert len(folders) == 3  # face, whole photo, robustness
    for folder in folders:
        with open(folder / "log.csv", newline="") as f:
            rows = list(csv.reader(f))
        assert len(rows) == 1 + 2  # header + both examples
    images_ = [p for p in Path(os.environ["GRADIO_EXAMPLES_CACHE"]).rglob("*") if p.suffix in (".png", ".webp")]
    assert len(images_) >= 2 * 2 * 2 + 2  # two slider images per face and photo example, a sheet per robustness one


@pytest.mark.slow
def test_client_video_before_after_and_refusals_keep_the_server_up(client, tmp_path, capfd):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    from test_video import moving_face, read_back, write_clip

    clip = write_clip(tmp_path / "clip.mp4", frames=3, size=(96, 128), frame_fn=moving_face)
    before, after, report, download = client.predict(handle_file(str(clip)), 1.5, api_name="/video")
    before, after = (v["video"] if isinstance(v, dict) else v for v in (before, after))
    assert read_back(before)["size"] == read_back(after)["size"] == (144, 192) and len(read_back(after)["pts"]) == 3
    assert "3 frames" in report and Path(download).suffix == ".mp4"
    capfd.readouterr()
    (tmp_path / "notes.mp4").write_text("not a video\n" * 20)
    audio_only = tmp_path / "sound.wav"
    import wave
    with wave.open(str(audio_only), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(8000), w.writeframes(b"\0\0" * 8000)
    long = write_clip(tmp_path / "hours.mp4", frames=2, pts=[0, 25 * 36000])
    for path, message in ((tmp_path / "notes.mp4", "not a video"), (audio_only, "no video stream"),
                          (long, "10:00:00")):
        with pytest.raises(AppError, match=message) as error:
            client.predict(handle_file(str(path)), 2.0, api_name="/video")
        assert "\n" not in str(error.value).strip()
    assert "Traceback" not in "".join(capfd.readouterr())
    again = client.predict(handle_file(str(clip)), 1.0, api_name="/video")[1]   # still serving
    assert len(read_back(again["video"] if isinstance(again, dict) else again)["pts"]) == 3
