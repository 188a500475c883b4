"""What a real photo does to a face before any resize: colour, light, pose and framing, and its own JPEG.

The training faces come from one studio (one camera, one light, one framing), and a model trained
on them alone learns that studio (see the model card). Two uses here:

- **augmentation** of the HR masters during training (`photometric`, `geometric`): the LR and the
  HR target are both made from the augmented master, so the model sees other colour casts,
  exposures and alignments without any change to the protocol;
- **the real-photo transform** of an evaluation face (`real_photo`): a fixed, seeded colour cast,
  gamma, white balance, rotation up to 10 degrees, framing and scale jitter like YuNet alignment
  gives on real photos, then JPEG of the *source* at quality 70-95, as a camera or a website does
  before anyone reduces the photo. The transformed master is the ground truth.

All functions take and return 8-bit RGB PIL images of the same size; every random step draws from
an explicit seed or numpy Generator, so the same seed gives the same bytes.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image

from .degrade import _as_generator, jpeg

# Training augmentation, each factor drawn independently (ranges chosen to cover what YuNet-aligned
# faces of ordinary photos show; see the real-photo check in the model card).
PHOTOMETRIC = dict(white_balance=0.12,     # per-channel gain in [1 - w, 1 + w], grey kept (a colour cast)
                   gamma=(0.7, 1.4),       # exposure / tone curve
                   contrast=(0.8, 1.2),    # around the mean luma
                   brightness=0.06,        # offset, fraction of full scale
                   saturation=(0.6, 1.3))  # 0 = grey
GEOMETRIC = dict(rotation=10.0,            # degrees, either way
                 scale=(0.92, 1.1),        # >1 zooms in (the face fills more of the crop)
                 shift=0.04)               # fraction of the side, each axis
# The real-photo evaluation transform: the same families, milder on average, plus the source JPEG.
REAL_PHOTO = dict(white_balance=0.1, gamma=(0.8, 1.25), contrast=(0.85, 1.15), brightness=0.04,
                  saturation=(0.7, 1.2), rotation=10.0, scale=(0.94, 1.08), shift=0.03, jpeg_quality=(70, 95))


def photometric(img: Image.Image, rng: int | np.random.Generator, ranges: dict | None = None) -> Image.Image:
    """A random colour cast, gamma, contrast, brightness and saturation change of an RGB image."""
    rng, p = _as_generator(rng), ranges or PHOTOMETRIC
    x = np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0
    gains = 1.0 + rng.uniform(-p["white_balance"], p["white_balance"], 3)
    x = x * (gains / gains.mean())                                   # cast, same mean level
    x = np.clip(x, 0, 1) ** rng.uniform(*p["gamma"])
    luma = x @ np.array([0.299, 0.587, 0.114], np.float32)
    x = (x - luma.mean()) * rng.uniform(*p["contrast"]) + luma.mean() + rng.uniform(-p["brightness"], p["brightness"])
    luma = (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    x = luma + (x - luma) * rng.uniform(*p["saturation"])
    return Image.fromarray(np.clip(np.rint(x * 255), 0, 255).astype(np.uint8))


def geometric(img: Image.Image, rng: int | np.random.Generator, ranges: dict | None = None) -> Image.Image:
    """A random rotation, zoom and shift about the centre, same size, mirrored borders, bicubic."""
    rng, p = _as_generator(rng), ranges or GEOMETRIC
    angle = rng.uniform(-p["rotation"], p["rotation"])
    zoom = rng.uniform(*p["scale"])
    shift = rng.uniform(-p["shift"], p["shift"], 2) * img.size[0]
    return affine(img, angle, zoom, (float(shift[0]), float(shift[1])))


def affine(img: Image.Image, angle: float, zoom: float, shift: tuple[float, float]) -> Image.Image:
    """Rotate by `angle` degrees, zoom by `zoom` and shift by (dx, dy) px about the centre; the
    borders the move uncovers are filled by mirroring the image, so no black corners appear."""
    w, h = img.size
    pad = int(math.ceil(0.35 * max(w, h)))
    padded = Image.fromarray(np.pad(np.asarray(img.convert("RGB")), ((pad, pad), (pad, pad), (0, 0)), mode="symmetric"))
    # output pixel (u, v) -> padded input pixel; PIL wants the inverse map as (a, b, c, d, e, f)
    theta = math.radians(angle)
    cos, sin = math.cos(theta) / zoom, math.sin(theta) / zoom
    cx, cy = w / 2, h / 2
    a, b = cos, sin
    d, e = -sin, cos
    ox, oy = cx + shift[0], cy + shift[1]            # where the centre lands in the output
    c = pad + cx - a * ox - b * oy
    f = pad + cy - d * ox - e * oy
    return padded.transform((w, h), Image.Transform.AFFINE, (a, b, c, d, e, f), resample=Image.BICUBIC)


def augment(img: Image.Image, rng: np.random.Generator, photometric_p: float = 0.0,
            geometric_p: float = 0.0) -> Image.Image:
    """Training augmentation of one HR master: each family applied with its own probability."""
    if geometric_p > 0 and rng.random() < geometric_p:
        img = geometric(img, rng)
    if photometric_p > 0 and rng.random() < photometric_p:
        img = photometric(img, rng)
    return img


def real_photo(img: Image.Image, seed: int) -> Image.Image:
    """The real-photo evaluation transform of one master (fixed by `seed`): colour, light, roll up
    to 10 degrees, framing and scale jitter, then JPEG of the source at quality 70-95."""
    rng = np.random.default_rng([20261203, int(seed)])
    p = REAL_PHOTO
    out = geometric(img, rng, p)
    out = photometric(out, rng, p)
    return jpeg(out, int(rng.integers(p["jpeg_quality"][0], p["jpeg_quality"][1] + 1)))
