import io
import math

import numpy as np
import pytest
import torch
from PIL import Image

import arasfsr
from arasfsr.inference import output_size, render


@pytest.mark.parametrize("shape,scale", [((20, 28), 2.5), ((9, 13), 3.7), ((8, 8), 1.0), ((11, 10), 16.0)])
def test_output_size_is_rounded_input_times_scale(tiny_model, shape, scale):
    image = Image.fromarray(np.zeros((*shape, 3), np.uint8) + 128)
    out = arasfsr.upscale(tiny_model, image, scale=scale)
    assert out.size == (math.floor(shape[1] * scale + 0.5), math.floor(shape[0] * scale + 0.5))


def test_anisotropic_size(tiny_model, face_image):
    out = arasfsr.upscale(tiny_model, face_image, size=(31, 90))
    assert (out.height, out.width) == (31, 90) and out.mode == "RGB"


def test_chunked_equals_unchunked(tiny_model):
    lr = torch.rand(1, 3, 9, 12)
    whole = render(tiny_model, lr, (23, 40), chunk_size=10_000)
    chunked = render(tiny_model, lr, (23, 40), chunk_size=37)  # chunks cut rows mid-way
    assert torch.allclose(whole, chunked, atol=1e-6)


def test_upscale_matches_model_query(tiny_model, face_image):
    """8-bit output = round-to-nearest of the model's clamped prediction at the pixel centres."""
    out = np.asarray(arasfsr.upscale(tiny_model, face_image, size=(40, 56)), dtype=np.float32)
    lr = torch.from_numpy(face_image).permute(2, 0, 1).unsqueeze(0).float() / 255
    coord = arasfsr.make_coord((40, 56)).unsqueeze(0)
    with torch.no_grad():
        pred = tiny_model(lr, coord, arasfsr.make_cell((40, 56)).expand_as(coord)).clamp(0, 1)
    expected = torch.round(pred * 255).view(40, 56, 3).numpy()
    assert np.abs(out - expected).max() <= 1  # 1 at most where a value sits on a .5 boundary
    assert np.mean(out == expected) > 0.999


def test_deterministic_twice_and_sampling_differs(tiny_model, face_image):
    a = np.asarray(arasfsr.upscale(tiny_model, face_image, scale=2))
    b = np.asarray(arasfsr.upscale(tiny_model, face_image, scale=2))
    s1 = np.asarray(arasfsr.upscale(tiny_model, face_image, scale=2, sample=True, seed=1))
    s1b = np.asarray(arasfsr.upscale(tiny_model, face_image, scale=2, sample=True, seed=1))
    assert np.array_equal(a, b) and np.array_equal(s1, s1b)
    assert not np.array_equal(a, s1)


def test_image_modes(tiny_model, face_image):
    rgba = np.concatenate([face_image, np.full((*face_image.shape[:2], 1), 255, np.uint8)], -1)
    rgba[:, :10, 3] = 0  # transparent left part
    out = arasfsr.upscale(tiny_model, Image.fromarray(rgba, "RGBA"), scale=2)
    assert out.mode == "RGBA" and out.size == (56, 40)
    alpha = np.asarray(out)[..., 3]
    assert alpha[:, :16].max() < 10 and alpha[:, 24:].min() > 245  # alpha resized, not dropped
    gray = Image.fromarray(face_image[..., 0], "L")
    assert arasfsr.upscale(tiny_model, gray, scale=1.5).mode == "L"
    deep = Image.fromarray(face_image[..., 0].astype(np.uint16) * 257)
    out16 = arasfsr.upscale(tiny_model, deep, scale=2)
    assert out16.mode == "I;16" and np.asarray(out16).max() > 255
    palette = Image.fromarray(face_image).convert("P")
    assert arasfsr.upscale(tiny_model, palette, scale=2).mode == "RGB"
    cmyk = Image.fromarray(face_image).convert("CMYK")
    assert arasfsr.upscale(tiny_model, cmyk, scale=2).mode == "RGB"


def test_exif_orientation_is_respected(tiny_model, face_image):
    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.fromarray(face_image).save(buf, "JPEG", exif=exif)
    buf.seek(0)
    out = arasfsr.upscale(tiny_model, Image.open(buf), scale=2)
    assert out.size == (40, 56)  # stored 28 wide x 20 high, displayed 20 wide x 28 high


def test_bicubic_baseline_is_pil_bicubic(face_image):
    out = arasfsr.upscale("bicubic", face_image, scale=3)
    expected = Image.fromarray(face_image).resize((84, 60), Image.BICUBIC)
    assert np.array_equal(np.asarray(out), np.asarray(expected))


@pytest.mark.parametrize("kwargs,match", [
    (dict(scale=0), r"scale must be a number in \[1, 32\]"),
    (dict(scale=-2), "scale must be"),
    (dict(scale=float("nan")), "scale must be"),
    (dict(scale=40), "scale must be"),
    (dict(), "exactly one of scale or size"),
    (dict(scale=2, size=(40, 40)), "exactly one"),
    (dict(size=(10, 10)), "smaller than the input"),
    (dict(size=(0, 50)), "smaller than the input"),
    (dict(size=(40.5, 60)), "whole pixels"),
])
def test_bad_requests_raise(tiny_model, face_image, kwargs, match):
    with pytest.raises(ValueError, match=match):
        arasfsr.upscale(tiny_model, face_image, **kwargs)


def test_limits_are_named_not_clamped(tiny_model):
    with pytest.raises(ValueError, match="at least 8x8"):
        arasfsr.upscale(tiny_model, np.zeros((4, 30, 3), np.uint8), scale=2)
    with pytest.raises(ValueError, match="MAX_OUTPUT_PIXELS"):
        output_size((1000, 1000), scale=5)
    assert output_size((256, 256), scale=8) == (2048, 2048)  # the 256 -> 2048 (x8) case is allowed
    with pytest.raises(ValueError, match="chunk_size"):
        arasfsr.upscale(tiny_model, np.zeros((8, 8, 3), np.uint8), scale=2, chunk_size=0)
    with pytest.raises(ValueError, match="'bicubic'"):
        arasfsr.upscale("nearest", np.zeros((8, 8, 3), np.uint8), scale=2)


@pytest.mark.parametrize("model_name", ["model", "bicubic"])
def test_scale_one_returns_the_input_unchanged(tiny_model, face_image, model_name):
    model = tiny_model if model_name == "model" else "bicubic"
    for request in (dict(scale=1), dict(scale=1.0), dict(size=(20, 28)), dict(size=(20, None))):
        out = arasfsr.upscale(model, face_image, **request)
        assert np.array_equal(np.asarray(out), face_image), request
    deep = (face_image[..., 0].astype(np.uint16) * 257 + 3)
    assert np.array_equal(np.asarray(arasfsr.upscale(model, deep, scale=1)), deep)  # 16-bit too


@pytest.mark.parametrize("value", [True, False, "2", None])
def test_scale_must_be_a_real_number(tiny_model, face_image, value):
    kwargs = dict(scale=value) if value is not None else dict(size=(True, 40))
    with pytest.raises(ValueError, match="scale must be a number|whole pixels"):
        arasfsr.upscale(tiny_model, face_image, **kwargs)


def test_float_and_16_bit_arrays_reach_the_model_unrounded(tiny_model, face_image):
    as_float = face_image.astype(np.float64) / 255
    assert np.array_equal(np.asarray(arasfsr.upscale(tiny_model, as_float, scale=2)),
                          np.asarray(arasfsr.upscale(tiny_model, face_image, scale=2)))
    fine = as_float + 0.4 / 255  # a sub-8-bit shift must change the output somewhere (not rounded away)
    assert not np.array_equal(np.asarray(arasfsr.upscale(tiny_model, fine.astype(np.float32), scale=2)),
                              np.asarray(arasfsr.upscale(tiny_model, as_float, scale=2)))
    wide = face_image.astype(np.uint16) * 257  # 16-bit colour: RGB out (Pillow has no 16-bit RGB)
    assert arasfsr.upscale(tiny_model, wide, scale=2).mode == "RGB"
    gray = arasfsr.upscale(tiny_model, as_float[..., 0], scale=2)
    assert gray.mode == "L" and gray.size == (56, 40)
    rgba = np.concatenate([as_float, np.ones((20, 28, 1))], -1)
    assert arasfsr.upscale(tiny_model, rgba, scale=2).mode == "RGBA"
    for bad, match in [(as_float * 2, r"in \[0, 1\]"), (np.full((20, 28), np.nan), r"in \[0, 1\]"),
                       (face_image.astype(np.int32), "uint8, uint16 or float"), (np.zeros((20, 28, 2)), "shape")]:
        with pytest.raises(ValueError, match=match):
            arasfsr.upscale(tiny_model, bad, scale=2)


def test_animation_gives_its_first_frame(tmp_path, face_image):
    frames = [Image.fromarray(face_image), Image.fromarray(255 - face_image)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100)
    first = arasfsr.read_image(tmp_path / "anim.gif")
    reference = Image.open(tmp_path / "anim.gif").convert("RGB")  # frame 0 as Pillow decodes it
    assert np.array_equal(np.asarray(first.convert("RGB")), np.asarray(reference))
    assert arasfsr.upscale("bicubic", tmp_path / "anim.gif", scale=2).size == (56, 40)


def test_exif_orientation_from_a_file(tmp_path, face_image):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(face_image).save(tmp_path / "rotated.jpg", exif=exif)
    from arasfsr.io import image_size
    assert image_size(tmp_path / "rotated.jpg") == (28, 20)  # header probe agrees with the decode
    assert arasfsr.read_image(tmp_path / "rotated.jpg").size == (20, 28)


def test_output_size_limits_are_arguments_and_sides_can_follow_the_aspect():
    assert output_size((100, 200), size=(None, 300)) == (150, 300)
    assert output_size((100, 200), size=(150, None)) == (150, 300)
    assert output_size((3000, 3000), scale=1.5, max_input_pixels=None, max_output_pixels=10 ** 8) == (4500, 4500)
    with pytest.raises(ValueError, match="MAX_SCALE"):
        output_size((10, 10), size=(200, 10), max_scale=16)
    with pytest.raises(ValueError, match=r"\[1, 4\]"):
        output_size((10, 10), scale=5, max_scale=4)
    with pytest.raises(ValueError, match="at least 16x16"):
        output_size((10, 10), scale=2, min_side=16)
    with pytest.raises(ValueError, match="MAX_INPUT_PIXELS"):
        output_size((3000, 3000), scale=1.5)
    with pytest.raises(ValueError, match="MAX_OUTPUT_PIXELS"):
        output_size((100, 100), scale=2, max_output_pixels=100 * 100)


def _numpy_self_ensemble(model, image: np.ndarray, size: tuple[int, int], n: int) -> np.ndarray:
    """The self-ensemble written out with numpy's flips and turns, pass by pass."""
    passes = [(0, False), (0, True), (2, True), (2, False), (1, False), (1, True), (3, False), (3, True)][:n]
    outs = []
    for turns, flip in passes:
        x = np.fliplr(image) if flip else image
        x = np.rot90(x, turns)
        lr = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1).unsqueeze(0).float() / 255
        out_size = size[::-1] if turns % 2 else size
        y = render(model, lr, out_size).numpy()
        y = np.rot90(y, -turns)
        outs.append(np.fliplr(y) if flip else y)
    return np.mean(outs, axis=0)


@pytest.fixture
def skewed_model():
    """A tiny LTE whose weights are pushed off their init, so that its output is far from bicubic
    and depends on which way the image is turned (an almost-bicubic model would hide a wrong turn)."""
    torch.manual_seed(1)
    model = arasfsr.create_model("lte", preset="tiny").eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.2)
    return model


@pytest.mark.parametrize("n", [2, 4, 8])
def test_self_ensemble_averages_the_turned_passes(skewed_model, face_image, n):
    """upscale(self_ensemble=n) = the mean of the n flipped / turned renders, each turned back;
    anisotropic, so a quarter turn that swapped the wrong sides would not even match in shape."""
    size = (40, 56)
    out = np.asarray(arasfsr.upscale(skewed_model, face_image, size=size, self_ensemble=n), np.float32)
    expected = np.round(np.clip(_numpy_self_ensemble(skewed_model, face_image, size, n), 0, 1) * 255)
    assert out.shape == (*size, 3)
    assert np.abs(out - expected).max() <= 1
    single = np.asarray(arasfsr.upscale(skewed_model, face_image, size=size), np.float32)
    assert np.abs(out - single).mean() > 2  # the passes differ: an ensemble that rendered once would fail


def test_self_ensemble_one_is_the_plain_render(tiny_model, face_image):
    plain = np.asarray(arasfsr.upscale(tiny_model, face_image, scale=2.5))
    assert np.array_equal(np.asarray(arasfsr.upscale(tiny_model, face_image, scale=2.5, self_ensemble=1)), plain)


def test_self_ensemble_progress_counts_every_pass(tiny_model, face_image):
    seen = []
    arasfsr.upscale(tiny_model, face_image, size=(30, 40), self_ensemble=8, chunk_size=100,
                    progress=lambda done, total: seen.append((done, total)))
    assert {t for _, t in seen} == {8 * 30 * 40}
    assert [d for d, _ in seen] == sorted(d for d, _ in seen) and seen[-1][0] == 8 * 30 * 40


@pytest.mark.parametrize("bad", [0, 3, 16, 2.0, True, "8"])
def test_self_ensemble_rejects_other_counts(tiny_model, face_image, bad):
    with pytest.raises(ValueError, match="self_ensemble"):
        arasfsr.upscale(tiny_model, face_image, scale=2, self_ensemble=bad)
