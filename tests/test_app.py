"""The Gradio demo: page construction, handlers (sizes, refusals, odd image modes), whole-photo mode,
the robustness view, the Spaces front matter, and the app end to end through gradio_client.

CPU, no network. Uses the shipped weights when present, else untrained tiny stand-ins.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import time
import urllib.request
import zlib
from pathlib import Path

from _demo_support import REPO, demo_weights, free_port, launched_app, make_standins, one_thread

import gradio as gr  # noqa: E402  (after _demo_support set the offline environment)
import numpy as np
import pytest
from PIL import Image

from demo import handlers, photo, ui
from demo.examples import prepare_examples
from demo.handlers import InputError


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
    for name in ("upscale", "upscale_photo", "robustness"):
        assert endpoints[name].api_visibility == "public"
        assert endpoints[name].concurrency_id == "model" and endpoints[name].concurrency_limit == ui.CONCURRENCY
    assert demo._queue.max_size == ui.QUEUE_SIZE
    images = [b for b in demo.blocks.values() if isinstance(b, (gr.Image, gr.ImageSlider))]
    assert len(images) >= 8 and all(b.format == "png" for b in images)  # never lossy WebP
    assert not list((REPO / "demo").glob("*.pyi"))  # no stub files written at import (component subclasses do)


def test_refusals_become_gr_error_with_the_reason():
    with pytest.raises(gr.Error, match="only enlarges"):
        with ui.refusals():
            handlers.check_scale(0.5)


def test_plan_size_for_scale_and_size_requests():
    assert handlers.plan_size((64, 64), "scale", 2.5) == (160, 160)
    assert handlers.plan_size((28, 20), "scale", 3.7) == (104, 74)  # round(28 x 3.7), round(20 x 3.7)
    assert handlers.plan_size((64, 64), "size", width=200, height=100) == (200, 100)  # anisotropic
    assert handlers.plan_size((64, 64), "scale", "16") == (1024, 1024)


@pytest.mark.parametrize("kwargs,message", [
    (dict(scale=0), "from 1 to 16"), (dict(scale=-2), "from 1 to 16"), (dict(scale=float("nan")), "finite"),
    (dict(scale=float("inf")), "finite"), (dict(scale=16.01), "from 1 to 16"), (dict(scale=None), "Give a scale"),
    (dict(scale="two"), "must be a number"), (dict(scale=True), "Give a scale"),
    (dict(resize_by="size", width=0, height=100), "above 0"),
    (dict(resize_by="size", width=100, height=0), "above 0"),
    (dict(resize_by="size", width=-5, height=100), "above 0"),
    (dict(resize_by="size", width=100.5, height=100), "whole"),
    (dict(resize_by="size", width=None, height=100), "Give a target width"),
    (dict(resize_by="size", width=32, height=100), "smaller than the input"),
    (dict(resize_by="size", width=2000, height=100), "more than 16"),
    (dict(resize_by="zoom", scale=2), "Resize by"),
])
def test_plan_size_refuses(kwargs, message):
    with pytest.raises(InputError, match=message):
        handlers.plan_size((64, 64), **kwargs)


def test_output_megapixel_limit():
    limit = handlers.megapixels(handlers.max_output_pixels())
    with pytest.raises(InputError, match=f"{limit} MP limit.*largest scale"):
        handlers.plan_size((1024, 1024), "scale", 2.5)


# ----------------------------------------------------------------------------- face mode
def test_upscale_face_sizes_and_outputs(tmp_path):
    path = save(smooth(20, 28), tmp_path / "face.png")
    result = handlers.upscale_face(path, 2.5)
    out, bicubic = Image.open(result.result_path), Image.open(result.bicubic_path)
    assert out.size == bicubic.size == (70, 50) and result.result_path.suffix == ".png"
    assert not np.array_equal(np.asarray(out), np.asarray(bicubic))
    sized = handlers.upscale_face(path, model_label="LTE", resize_by="size", width=90, height=31)
    assert Image.open(sized.result_path).size == (90, 31)
    sampled = handlers.upscale_face(path, 2.0, sample=True, seed=3)
    assert "sampled, seed 3" in sampled.info
    progress = []
    handlers.upscale_face(path, 2.0, model_label="LIIF", progress=lambda f, d: progress.append(f))
    assert progress and progress[-1] <= 1


def test_unknown_or_missing_model(tmp_path, monkeypatch):
    path = save(smooth(16, 16), tmp_path / "face.png")
    with pytest.raises(InputError, match="Unknown model"):
        handlers.upscale_face(path, 2.0, model_label="GFPGAN")
    make_standins(tmp_path / "only_arasfsr", names=("arasfsr",))
    monkeypatch.setattr(handlers.weights, "WEIGHTS_DIR", tmp_path / "only_arasfsr")
    assert handlers.available_models() == {"ARASFSR": True, "LIIF": False, "LTE": False, "Bicubic": True}
    with pytest.raises(InputError, match="liif_small.safetensors is missing"):
        handlers.upscale_face(path, 2.0, model_label="LIIF")
    assert "not available" in handlers.model_card()
    assert Image.open(handlers.upscale_face(path, 2.0).result_path).size == (32, 32)  # ARASFSR still works


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
        f.truncate(handlers.MAX_UPLOAD_BYTES + 1)
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
        handlers.upscale_face(path, 2.0)


def test_no_upload_and_bad_seed(tmp_path):
    with pytest.raises(InputError, match="Upload an image"):
        handlers.upscale_face(None, 2.0)
    path = save(smooth(16, 16), tmp_path / "face.png")
    with pytest.raises(InputError, match="seed"):
        handlers.upscale_face(path, 2.0, sample=True, seed=1.5)


def test_large_photo_is_refused_in_face_mode_only(tmp_path):
    path = tmp_path / "photo.png"
    path.write_bytes(png_header_only(2000, 1500))
    with pytest.raises(InputError, match="Whole photo tab"):
        handlers.probe_image(path)
    assert handlers.probe_image(path, handlers.MAX_PHOTO_SIDE).width == 2000


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
    result = handlers.upscale_face(path, 2.0)
    out = Image.open(result.result_path)
    assert out.size == size and out.mode == mode
    if kind == "rgba":  # the alpha ramp survives
        alpha = np.asarray(out.getchannel("A"), np.float64)
        assert alpha[:, 0].mean() < 20 and alpha[:, -1].mean() > 235
    if kind == "animated_gif":
        assert "first frame of 2" in result.info
        colour = np.asarray(Image.open(handlers.upscale_face(path, 2.0, model_label="Bicubic").result_path))
        assert colour[..., 0].mean() > 150 and colour[..., 2].mean() < 100  # the red first frame
    if kind == "exif_rotated":
        assert "EXIF orientation" in result.info


def test_describe_request_shows_the_size_before_running(tmp_path):
    path = save(smooth(64, 48), tmp_path / "face.png")
    assert "Output: 120 x 160 px" in handlers.describe_request(path, "scale", 2.5)
    assert "Output: 300 x 100 px" in handlers.describe_request(path, "size", 2.5, 300, 100)
    assert "Cannot run" in handlers.describe_request(path, "scale", 40)
    assert "Upload" in handlers.describe_request(None)
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(InputError, match="empty"):  # a bad file is refused at upload, before any run
        handlers.describe_request(tmp_path / "empty.png")


def test_zoom_view(tmp_path):
    a = save(smooth(100, 80), tmp_path / "a.png")
    b = save(255 - smooth(100, 80), tmp_path / "b.png")
    view = handlers.zoom_view(a, b, center=(1.0, 0.0))
    assert view.mode == "RGB" and view.width > 2 * view.height - 60  # two square panels side by side
    assert np.asarray(view)[:5, :5].mean() != np.asarray(view)[:5, -5:].mean()


# ----------------------------------------------------------------------------- robustness view
def test_robustness_view(examples, tmp_path):
    result = handlers.robustness(examples["grace_hopper_256"], 128)
    assert result.sheet.size == (5 * (128 + 4) - 4, 20 + 3 * (128 + 4) - 4)  # 4 input sizes + reference
    assert result.table.count("| x") == 4 and "Left out" not in result.table
    assert result.table.count("dB") == 6 and "| x1.00 |" in result.table  # 128 -> 128: bicubic is "identical"
    small = handlers.robustness(save(smooth(64, 64), tmp_path / "small.png"), 96)
    assert small.table.count("| x") == 2 and "64 px (the input is only 64 px high)" in small.table
    assert "No PSNR" in small.table
    with pytest.raises(InputError, match="bicubic is already shown"):
        handlers.robustness(examples["grace_hopper_256"], 128, "Bicubic")
    with pytest.raises(InputError, match="output size"):
        handlers.robustness(examples["grace_hopper_256"], 0)


# ----------------------------------------------------------------------------- whole-photo mode
def test_warp_back_geometry_matches_alignment_at_output_resolution():
    """Output pixel u <-> input pixel (u + 0.5) / s - 0.5: the composed map equals aligning the
    landmarks mapped to output coordinates, for any scale."""
    landmarks = np.array([[100.0, 120.0], [150.0, 118.0], [126.0, 150.0], [105.0, 175.0], [147.0, 174.0]])
    for s in (1.5, 2.0, 3.7):
        expected = photo.faces.crop_transform((landmarks + 0.5) * s - 0.5, 300)
        assert np.allclose(photo._out_to_crop(landmarks, 300, s, s), expected)


def test_blend_face_round_trip_leaves_the_canvas_unchanged():
    """Cut a face-sized crop out of an image and paste it back: the image barely changes."""
    canvas = smooth(200, 240).astype(np.float32) / 255
    landmarks = np.array([[100.0, 90.0], [140.0, 92.0], [120.0, 115.0], [104.0, 135.0], [136.0, 136.0]])
    crop = photo.faces.align_face(canvas, landmarks, 150)
    blended = canvas.copy()
    assert photo.blend_face(blended, crop, photo._out_to_crop(landmarks, 150, 1.0, 1.0))
    assert np.abs(blended - canvas).max() < 0.03
    mask = photo.feather_mask(100)
    assert mask[50, 50] == 1 and mask[0, 50] == 0 and mask[50, 0] == 0


def test_whole_photo_super_resolves_the_face_only(examples):
    result = photo.enhance_photo(examples["astronaut"], 1.5)
    out = np.asarray(Image.open(result.result_path))
    bicubic = np.asarray(Image.open(result.bicubic_path))
    assert out.shape == bicubic.shape == (768, 768, 3)
    assert [f.status for f in result.faces] == ["super-resolved"] and "1 face found, 1 super-resolved" in result.report
    x, y, w, h = (round(v * 1.5) for v in result.faces[0].box)
    assert not np.array_equal(out[y:y + h, x:x + w], bicubic[y:y + h, x:x + w])
    assert np.array_equal(out[-100:, -100:], bicubic[-100:, -100:])  # far from the face: bicubic exactly
    assert result.overview.size[0] <= 640


def test_whole_photo_keeps_transparency(examples, tmp_path):
    rgba = np.dstack([np.asarray(Image.open(examples["astronaut"])), np.full((512, 512), 255, np.uint8)])
    rgba[:64, :64, 3] = 0
    result = photo.enhance_photo(save(Image.fromarray(rgba, "RGBA"), tmp_path / "cutout.png"), 1.25)
    out = Image.open(result.result_path)
    assert out.mode == "RGBA" and out.size == (640, 640) and result.faces[0].status == "super-resolved"
    alpha = np.asarray(out.getchannel("A"))
    assert alpha[:70, :70].max() == 0 and alpha[100:, 100:].min() == 255


def test_whole_photo_reports_faces_it_leaves_alone(examples, monkeypatch, tmp_path):
    too_large = photo.enhance_photo(examples["grace_hopper"], 3.3)  # a 320 px face -> 1056 px > 1024
    assert too_large.faces[0].status == "too large" and "fits up to x3.2" in too_large.report
    monkeypatch.setattr(photo, "MIN_FACE_SIDE", 1000)
    assert photo.enhance_photo(examples["astronaut"], 1.0).faces[0].status == "too small"
    wall = np.full((1700, 2600, 3), 128, np.uint8)  # 4.4 MP: over arasfsr.upscale's input limit, fine here
    flat = photo.enhance_photo(save(wall, tmp_path / "wall.png"), 1.0)
    assert flat.faces == [] and "No face was found" in flat.report
    assert np.array_equal(np.asarray(Image.open(flat.result_path)), wall)
    with pytest.raises(InputError, match="needs a model"):
        photo.enhance_photo(examples["astronaut"], 2.0, "Bicubic")
    with pytest.raises(InputError, match="MP limit"):
        photo.enhance_photo(examples["astronaut"], 8.5)  # 4352 x 4352 px


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
        assert '"/upscale"' in info and '"/upscale_photo"' in info and '"/robustness"' in info
    finally:
        server.terminate()
        server.wait(timeout=30)


# ----------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def client():
    from gradio_client import Client

    with launched_app() as url:
        yield Client(url, verbose=False)


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


def test_client_size_request_and_refusals_keep_the_server_up(client, examples, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError

    face = handle_file(str(examples["grace_hopper_64"]))
    result = client.predict(face, 4.0, "ARASFSR", "size", 200, 100, api_name="/upscale")[0]
    assert Image.open(result).size == (200, 100)
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(AppError, match="not an image"):
        client.predict(handle_file(str(tmp_path / "notes.txt")), 2.0, api_name="/upscale")
    with pytest.raises(AppError, match="from 1 to 16"):
        client.predict(face, 0, api_name="/upscale")
    with pytest.raises(AppError, match="above 0"):
        client.predict(face, 2.0, "ARASFSR", "size", 0, 100, api_name="/upscale")
    assert Image.open(client.predict(face, 1.5, api_name="/upscale")[0]).size == (96, 96)  # still serving
