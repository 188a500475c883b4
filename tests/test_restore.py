"""Whole-photo restoration (arasfsr.restore) on synthetic photos with known faces pasted in.

The faces are the public-domain example portraits (demo.examples, read from matplotlib's and
scikit-image's installed data), aligned, pasted at known places on a smooth background.
CPU, the shipped small weights (or a tiny untrained stand-in when they are absent).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from _demo_support import REPO, one_thread
from PIL import Image

import arasfsr
from arasfsr import faces, inference, restore
from arasfsr.coords import sample_at
from demo.examples import prepare_examples

SHIPPED = REPO / "weights" / "arasfsr_small.safetensors"


@pytest.fixture(scope="module", autouse=True)
def threads():
    with one_thread():
        yield


@pytest.fixture(scope="module")
def model():
    if SHIPPED.is_file():
        return arasfsr.weights.load_model(SHIPPED).eval()
    torch.manual_seed(0)
    return arasfsr.create_model("arasfsr", preset="tiny").eval()


def background(height: int, width: int) -> np.ndarray:
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([np.sin(x / 9), np.cos(y / 11), np.sin((x + y) / 13)], -1) * 0.25 + 0.5
    return (rgb * 255).round().astype(np.uint8)


def paste(photo: np.ndarray, face: np.ndarray, top: int, left: int) -> None:
    """Paste a square face crop (clipped where it overruns the photo)."""
    n = face.shape[0]
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + n, photo.shape[0]), min(left + n, photo.shape[1])
    photo[y0:y1, x0:x1] = face[y0 - top:y1 - top, x0 - left:x1 - left]


def aligned_face(side: int, name: str = "grace_hopper_256") -> np.ndarray:
    return np.asarray(Image.open(prepare_examples()[name]).convert("RGB").resize((side, side), Image.LANCZOS))


def known_face(top: float, left: float, side: float, score: float = 0.9) -> faces.Face:
    """A detection exactly where a `side` px aligned crop was pasted at (top, left)."""
    landmarks = faces.TEMPLATE * side - 0.5 + np.array([left, top])  # crop fraction f -> pixel f * side - 0.5
    box = (left + 0.25 * side, top + 0.3 * side, 0.5 * side, 0.55 * side)
    return faces.Face(score=score, box=box, landmarks=landmarks)


def fixed(*found: faces.Face):
    return lambda rgb8: list(found)


# ----------------------------------------------------------------------------- with YuNet
@pytest.fixture(scope="module")
def two_faces() -> np.ndarray:
    photo = background(120, 200)
    paste(photo, aligned_face(56), 30, 20)
    paste(photo, aligned_face(48, "astronaut_160"), 50, 120)
    return photo


def test_sizes_are_exactly_the_request(model, two_faces):
    for request in (dict(scale=2.5), dict(scale=3.7), dict(size=(250, 333))):
        out, _ = restore.restore(model, two_faces, **request)
        expected = inference.output_size(two_faces.shape[:2], **request, max_input_pixels=restore.MAX_PHOTO_PIXELS)
        assert (out.height, out.width) == expected and out.mode == "RGB"
    with pytest.raises(ValueError, match=r"scale must be a number in \[1, 32\]"):
        restore.restore(model, two_faces, scale=40)


def test_faces_are_found_enhanced_and_never_softer_than_bicubic(model, two_faces):
    model.train()
    out, reports = restore.restore(model, two_faces, scale=4)
    assert model.training  # the caller's model is left in the mode it was in
    model.eval()
    assert [r.status for r in reports] == [restore.ENHANCED] * 2
    centres = sorted((r.box[0] + r.box[2] / 2, r.box[1] + r.box[3] / 2) for r in reports)
    assert abs(centres[0][0] - 48) < 10 and abs(centres[1][0] - 144) < 10  # the pasted faces' centres (x)
    bicubic = np.asarray(Image.fromarray(two_faces).resize(out.size, Image.BICUBIC), np.float32) / 255
    result = np.asarray(out, np.float32) / 255
    for r in reports:
        x, y, w, h = (round(v * 4) for v in r.box)
        face_out, face_bicubic = result[y:y + h, x:x + w], bicubic[y:y + h, x:x + w]
        assert restore.laplacian_variance(face_out) >= restore.laplacian_variance(face_bicubic)
        assert np.abs(face_out - face_bicubic).mean() > 0.002  # the model did change the face
    assert np.array_equal(result[-8:, 280:320], bicubic[-8:, 280:320])  # far from every face: bicubic exactly


def test_detail_keeps_that_share_of_each_face_over_the_bicubic_background(model, two_faces):
    full, reports = restore.restore(model, two_faces, scale=2, ensemble=False)
    half, _ = restore.restore(model, two_faces, scale=2, ensemble=False, detail=0.5)
    none, _ = restore.restore(model, two_faces, scale=2, ensemble=False, detail=0.0)
    bicubic = np.asarray(Image.fromarray(two_faces).resize(full.size, Image.BICUBIC), np.float32)
    full, half, none = (np.asarray(image, np.float32) for image in (full, half, none))
    assert np.abs(none - bicubic).max() <= 1          # no detail: the bicubic photo (uint8 rounding)
    x, y, w, h = (round(v * 2) for v in reports[0].box)
    face = np.s_[y:y + h, x:x + w]
    assert np.abs(full[face] - bicubic[face]).mean() > 1  # the model does change the face
    np.testing.assert_allclose(half[face], (full[face] + bicubic[face]) / 2, atol=1.01)  # halfway, face by face
    with pytest.raises(ValueError, match="detail must be a number from 0 to 1"):
        restore.restore(model, two_faces, scale=2, detail=1.5)


# ----------------------------------------------------------------------------- with known detections
def test_the_face_is_rendered_on_the_output_grid_at_native_coordinates(monkeypatch):
    """A stand-in model that returns the bilinear sample of its crop at each query: the restored face
    must then equal the bilinear upscale of the whole photo, so every output pixel was mapped to the
    right place in the crop (any shift or scale error in the mapping shows up here)."""
    class Bilinear(torch.nn.Module):
        def encode(self, lr):
            return lr

        def query(self, lr, coord, cell):
            return sample_at(lr, coord, mode="bilinear", padding_mode="border")

    monkeypatch.setattr(restore, "laplacian_variance", lambda rgb: 0.0)  # bilinear is softer: waive the rule
    photo = background(60, 80)
    out, reports = restore.restore(Bilinear(), photo, scale=3.0, detector=fixed(known_face(10, 20, 36)))
    assert reports[0].status == restore.ENHANCED
    lr = torch.from_numpy(photo).permute(2, 0, 1)[None].float() / 255
    expected = torch.nn.functional.interpolate(lr, scale_factor=3.0, mode="bilinear", align_corners=False)
    expected = expected[0].permute(1, 2, 0).numpy()
    # the plateau of the blend mask: crop fractions 0.15-0.85 of the 36 px crop at (10, 20), x3
    y0, y1, x0, x1 = (round((a + f * 36) * 3) for a, f in ((10, 0.2), (10, 0.8), (20, 0.2), (20, 0.8)))
    got = np.asarray(out, np.float32)[y0:y1, x0:x1] / 255
    assert np.abs(got - expected[y0:y1, x0:x1]).max() < 1.5 / 255  # uint8 rounding only


def test_too_small_too_large_and_beyond_max_faces_are_listed(model, monkeypatch):
    photo = background(160, 240)
    paste(photo, aligned_face(64), 10, 10)
    paste(photo, aligned_face(40, "astronaut_160"), 90, 150)
    found = fixed(known_face(10, 10, 64, 0.95), known_face(90, 150, 40, 0.9), known_face(20, 200, 10, 0.8))
    out, reports = restore.restore(model, photo, scale=2, detector=found, max_faces=1)
    assert [r.status for r in reports] == [restore.ENHANCED, restore.KEPT, restore.KEPT]
    assert reports[1].reason.startswith("beyond max faces") and reports[2].reason.startswith("too small")
    monkeypatch.setattr(restore, "MAX_FACE_OUTPUT_SIDE", 100)
    _, reports = restore.restore(model, photo, scale=2, detector=found)
    assert reports[0].reason.startswith("too large") and "fits up to x1.56" in reports[0].reason
    assert reports[1].status == restore.ENHANCED  # 40 px -> 80 px fits
    _, reports = restore.restore("bicubic", photo, scale=2, detector=found)
    assert all(r.status == restore.KEPT for r in reports)


def test_a_face_the_model_would_blur_stays_bicubic():
    class Blurry(torch.nn.Module):  # returns the crop's mean colour everywhere: softer than bicubic
        def encode(self, lr):
            return lr.mean(dim=(2, 3))

        def query(self, mean, coord, cell):
            return mean[:, None, :].expand(coord.shape[0], coord.shape[1], 3).clone()

    photo = background(80, 80)
    paste(photo, aligned_face(48), 16, 16)
    out, reports = restore.restore(Blurry(), photo, scale=2, detector=fixed(known_face(16, 16, 48)))
    assert reports[0].status == restore.KEPT and reports[0].reason.startswith("softer than bicubic")
    assert np.array_equal(np.asarray(out), np.asarray(Image.fromarray(photo).resize((160, 160), Image.BICUBIC)))


def test_faces_at_the_border_and_overlapping_faces(model):
    photo = background(100, 140)
    paste(photo, aligned_face(60), -20, -15)            # a quarter of the crop is outside the photo
    paste(photo, aligned_face(50, "astronaut_160"), 40, 60)
    paste(photo, aligned_face(50), 50, 85)              # overlaps the previous one
    found = [known_face(-20, -15, 60, 0.9), known_face(40, 60, 50, 0.85), known_face(50, 85, 50, 0.8)]
    out, reports = restore.restore(model, photo, scale=2, detector=fixed(*found))
    assert out.size == (280, 200) and all(r.status == restore.ENHANCED for r in reports)
    # the composite does not depend on the order of overlapping faces
    again, _ = restore.restore(model, photo, scale=2, detector=lambda rgb8: found[::-1])
    assert np.abs(np.asarray(out, np.int16) - np.asarray(again, np.int16)).max() <= 1


def test_blend_mask_is_seamless():
    position = np.arange(200, dtype=np.float64)
    weight = restore.blend_weight(position, 200)
    assert weight[0] == 0 and weight[-1] == 0 and weight[100] == 1
    assert np.abs(np.diff(weight)).max() <= 1.5 / (restore.FEATHER * 200) + 1e-6  # smoothstep's steepest: no jump
    assert (weight[30:170] == 1).all()                           # 1 over the face (crop fractions 0.15-0.85)
    layers = [((0, 0, 4, 4), np.full((4, 4, 3), 0.2, np.float32), np.full((4, 4), 0.5, np.float32)),
              ((2, 2, 6, 6), np.full((4, 4, 3), 0.8, np.float32), np.full((4, 4), 0.5, np.float32))]
    canvas = np.zeros((6, 6, 3), np.float32)
    restore._composite(canvas, layers)
    assert np.allclose(canvas[0, 0], 0.1) and np.allclose(canvas[3, 3], 0.5) and np.allclose(canvas[5, 5], 0.4)


def test_modes_and_bad_requests(model, tmp_path):
    rgba = np.dstack([background(60, 60), np.full((60, 60), 200, np.uint8)])
    out, reports = restore.restore(model, Image.fromarray(rgba, "RGBA"), scale=2, detector=fixed())
    assert out.mode == "RGBA" and out.size == (120, 120) and reports == []
    gray16 = Image.fromarray(background(40, 40)[..., 0].astype(np.uint16) * 257)
    assert restore.restore(model, gray16, scale=1.5, detector=fixed())[0].mode == "I;16"
    with pytest.raises(ValueError, match="'bicubic'"):
        restore.restore("nearest", background(40, 40), scale=2)
    with pytest.raises(ValueError, match="at least 8x8"):
        restore.restore(model, background(4, 40), scale=2)


# ----------------------------------------------------------------------------- command line
def test_cli_restore_folder_with_a_broken_file(two_faces, tmp_path, capsys):
    from arasfsr.cli import main
    src, dst = tmp_path / "photos", tmp_path / "out"
    src.mkdir()
    Image.fromarray(two_faces).save(src / "two.png")
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff this is not a JPEG")
    code = main(["restore", str(src), "-o", str(dst), "--scale", "2", "--no-progress", "--model", "arasfsr",
                 "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 1  # one file failed, the batch went on
    assert "broken.jpg" in err and "two.png: 2 face(s) found, 2 enhanced" in err
    assert sorted(p.name for p in dst.iterdir()) == ["two.png"]
    assert Image.open(dst / "two.png").size == (400, 240)
    # the output is never the input, and nothing is overwritten without --overwrite
    assert main(["restore", str(src / "two.png"), "-o", str(dst / "two.png"), "--scale", "2"]) == 2


def test_the_flip_ensemble_averages_the_face_and_its_mirror_at_the_same_points(tiny_model):
    """`render_face(ensemble=True)`: the mirrored pass reads the mirrored crop at n - 1 - col, so a
    mirrored crop asked at mirrored positions gives the same colours; one pass does not."""
    import torch

    from arasfsr.restore import render_face
    rng = np.random.default_rng(3)
    crop = rng.random((24, 24, 3)).astype(np.float32)
    rows, cols = np.arange(0, 24, 0.5) + 0.25, np.arange(0, 24, 0.5) + 0.25  # x2, off the integer grid
    mirrored = np.ascontiguousarray(crop[:, ::-1])
    cpu = torch.device("cpu")
    done = []
    both = render_face(tiny_model, crop, rows, cols, (2.0, 2.0), cpu, progress=done.append, ensemble=True)
    again = render_face(tiny_model, mirrored, rows, 23 - cols, (2.0, 2.0), cpu, ensemble=True)
    np.testing.assert_allclose(both, again, atol=1e-6)
    one = render_face(tiny_model, crop, rows, cols, (2.0, 2.0), cpu)
    other = render_face(tiny_model, mirrored, rows, 23 - cols, (2.0, 2.0), cpu)
    assert np.abs(one - other).max() > 1e-3                    # a random model is not mirror-symmetric
    np.testing.assert_allclose(both, (one + other) / 2, atol=1e-6)
    assert done[-1] == 2 * len(rows) * len(cols)                 # progress counts both passes
