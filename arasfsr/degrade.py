"""Degradations that turn a high-resolution face into a low-resolution input.

The authors make the LR input and the HR target each by PIL bicubic resize straight from the HR
master ("bicubic"); their real-world variant replaces the LR resize by nearest-neighbour resize
followed by JPEG at quality 65 ("nn_jpeg"). Optional blur and noise follow the classic order
y = JPEG((x * k)↓ + n): blur the master, resize, add noise, then compress.

All functions take and return PIL images (RGB or L, 8 bit). Sizes are (height, width), like the
rest of the package; PIL itself wants (width, height), and the flip happens only in `_pil_size`.
Every random step takes an explicit seed or `numpy.random.Generator`: the same seed gives
byte-identical output.
"""
from __future__ import annotations

import io

import numpy as np
from PIL import Image

KINDS = ("bicubic", "nn_jpeg", "realistic", "mixed", "heavy", "jpeg<Q>")


def check_kind(kind: str) -> str:
    """Validate a degradation name: bicubic, nn_jpeg, realistic, or jpegQ (bicubic, then JPEG at
    quality Q in 1..95, e.g. jpeg40)."""
    if kind in KINDS[:5]:
        return kind
    if kind.startswith("jpeg") and kind[4:].isdigit() and 1 <= int(kind[4:]) <= 95:
        return kind
    raise ValueError(f"unknown degradation {kind!r}; choose bicubic, nn_jpeg, realistic, mixed, heavy or jpegQ "
                     f"(Q = JPEG quality 1-95, e.g. jpeg40)")


# The "realistic" training degradation: what ordinary photos suffer, each factor randomised.
REALISTIC = dict(blur_probability=0.5, blur_sigma_lr=(0.3, 1.2),   # Gaussian blur, in LR pixels
                 noise_probability=0.5, noise_sigma=(1.0, 6.0),    # white noise, 0..255 units
                 jpeg_quality=(30, 95))                            # always JPEG, quality uniform


def realistic(img: Image.Image, size: tuple[int, int], rng: int | np.random.Generator) -> Image.Image:
    """A randomised real-world LR: blur the master (p = 0.5, sigma 0.3-1.2 LR px), PIL bicubic
    resize, white noise (p = 0.5, sigma 1-6 levels), JPEG at a quality drawn from 30-95.

    Args:
        img: HR master, PIL RGB.
        size: (height, width) of the LR image.
        rng: int seed or numpy Generator (the same seed gives the same bytes).
    """
    rng = _as_generator(rng)
    p = REALISTIC
    if rng.random() < p["blur_probability"]:
        sigma_lr = rng.uniform(*p["blur_sigma_lr"])
        img = gaussian_blur(img, sigma_lr * img.size[1] / size[0])  # LR px -> master px
    out = bicubic_resize(img, size)
    if rng.random() < p["noise_probability"]:
        out = add_noise(out, rng.uniform(*p["noise_sigma"]), rng)
    return jpeg(out, int(rng.integers(p["jpeg_quality"][0], p["jpeg_quality"][1] + 1)))


# The "mixed" training degradation: clean, lightly and heavily damaged inputs in one stream, so one
# model serves lossless LR as well as ordinary JPEG photos (the realistic mix alone never shows a
# clean input and always applies JPEG 30-95). (name, probability); "light" is bicubic, white noise
# of 0.5-2 levels with probability 0.3, then JPEG at 75-95.
MIXED = (("bicubic", 0.35), ("light", 0.25), ("realistic", 0.40))
LIGHT = dict(noise_probability=0.3, noise_sigma=(0.5, 2.0), jpeg_quality=(75, 95))


def mixed(img: Image.Image, size: tuple[int, int], rng: int | np.random.Generator) -> Image.Image:
    """A draw from `MIXED`: clean bicubic (35%), light damage (25%) or `realistic` (40%)."""
    rng = _as_generator(rng)
    u, kind = rng.random(), MIXED[-1][0]
    for name, probability in MIXED:
        if u < probability:
            kind = name
            break
        u -= probability
    if kind == "bicubic":
        return bicubic_resize(img, size)
    if kind == "realistic":
        return realistic(img, size, rng)
    out = bicubic_resize(img, size)
    if rng.random() < LIGHT["noise_probability"]:
        out = add_noise(out, rng.uniform(*LIGHT["noise_sigma"]), rng)
    return jpeg(out, int(rng.integers(LIGHT["jpeg_quality"][0], LIGHT["jpeg_quality"][1] + 1)))


# The "heavy" training degradation, for the weights chosen when an input is badly compressed
# (JPEG below quality 80, or strong block edges): blur and noise as in `realistic`, JPEG at 25-70,
# and the 8x8 block grid at a random offset from the face, as on a face cut out of a whole photo
# (restore cuts faces at native pixels wherever they lie, so their blocks rarely start at 0, 0).
HEAVY = dict(blur_probability=0.5, blur_sigma_lr=(0.3, 1.0), noise_probability=0.4, noise_sigma=(1.0, 4.0),
             jpeg_quality=(25, 70))


def heavy(img: Image.Image, size: tuple[int, int], rng: int | np.random.Generator) -> Image.Image:
    """A badly compressed LR: blur (p = 0.5), PIL bicubic resize, noise (p = 0.4), then JPEG at a
    quality drawn from 25-70 with the block grid shifted by 0-7 px in each direction (the LR is
    edge-padded before compression and cut back after)."""
    rng = _as_generator(rng)
    p = HEAVY
    if rng.random() < p["blur_probability"]:
        img = gaussian_blur(img, rng.uniform(*p["blur_sigma_lr"]) * img.size[1] / size[0])
    out = bicubic_resize(img, size)
    if rng.random() < p["noise_probability"]:
        out = add_noise(out, rng.uniform(*p["noise_sigma"]), rng)
    dy, dx = (int(v) for v in rng.integers(0, 8, 2))
    array = np.asarray(out)
    padded = np.pad(array, ((dy, 0), (dx, 0)) + ((0, 0),) * (array.ndim - 2), mode="edge")
    quality = int(rng.integers(p["jpeg_quality"][0], p["jpeg_quality"][1] + 1))
    compressed = np.asarray(jpeg(Image.fromarray(padded), quality))
    return Image.fromarray(np.ascontiguousarray(compressed[dy:, dx:]))


def _pil_size(size: tuple[int, int]) -> tuple[int, int]:
    """Check a (height, width) size and return PIL's (width, height)."""
    if len(size) != 2 or any(int(n) != n or n < 1 for n in size):
        raise ValueError(f"size must be (height, width) with positive integers, got {size!r}")
    return int(size[1]), int(size[0])


def _as_generator(rng: int | np.random.Generator) -> np.random.Generator:
    if isinstance(rng, np.random.Generator):
        return rng
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng))
    raise ValueError(f"rng must be an int seed or a numpy.random.Generator, got {type(rng).__name__}")


def bicubic_resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """PIL bicubic resize (antialiased when shrinking), the authors' LR and HR operator.

    Args:
        img: PIL image.
        size: (height, width) of the result.
    """
    return img.resize(_pil_size(size), Image.BICUBIC)


def nearest_resize(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Nearest-neighbour resize to (height, width): no antialiasing, so shrinking aliases."""
    return img.resize(_pil_size(size), Image.NEAREST)


def jpeg(img: Image.Image, quality: int = 65) -> Image.Image:
    """Encode as JPEG in memory (PIL defaults: 4:2:0 chroma subsampling) and decode again."""
    if not 1 <= quality <= 95:
        raise ValueError(f"JPEG quality must be in [1, 95], got {quality}")
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=int(quality))
    buffer.seek(0)
    out = Image.open(buffer)
    out.load()
    return out


def nn_jpeg(img: Image.Image, size: tuple[int, int], quality: int = 65) -> Image.Image:
    """The "real-world" LR: nearest-neighbour resize to (height, width), then JPEG at `quality`."""
    return jpeg(nearest_resize(img, size), quality)


def gaussian_blur(img: Image.Image, sigma: float) -> Image.Image:
    """Isotropic Gaussian blur with standard deviation `sigma` pixels (deterministic).

    A separable kernel truncated at 3 sigma, mirrored borders. sigma = 0 returns a copy.
    """
    if sigma < 0:
        raise ValueError(f"blur sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return img.copy()
    radius = max(1, int(np.ceil(3 * sigma)))
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / sigma) ** 2)
    kernel /= kernel.sum()
    array = np.asarray(img, dtype=np.float64)
    squeeze = array.ndim == 2
    if squeeze:
        array = array[..., None]
    for axis in (0, 1):  # rows, then columns
        pad = [(0, 0)] * 3
        pad[axis] = (radius, radius)
        padded = np.pad(array, pad, mode="symmetric")
        n = array.shape[axis]
        array = sum(w * np.take(padded, np.arange(i, i + n), axis=axis) for i, w in enumerate(kernel))
    out = np.clip(np.rint(array), 0, 255).astype(np.uint8)
    return Image.fromarray(out[..., 0] if squeeze else out)


def add_noise(img: Image.Image, sigma: float, rng: int | np.random.Generator) -> Image.Image:
    """Add white Gaussian noise of standard deviation `sigma` in 0..255 units, rounded and clipped.

    Args:
        rng: an int seed or a numpy Generator; the same seed gives identical bytes.
    """
    if sigma < 0:
        raise ValueError(f"noise sigma must be >= 0, got {sigma}")
    generator = _as_generator(rng)
    array = np.asarray(img, dtype=np.float64)
    noisy = array + generator.normal(0.0, sigma, size=array.shape)
    return Image.fromarray(np.clip(np.rint(noisy), 0, 255).astype(np.uint8))


def degrade(img: Image.Image, size: tuple[int, int], kind: str = "bicubic", blur_sigma: float = 0.0,
            noise_sigma: float = 0.0, rng: int | np.random.Generator | None = None,
            jpeg_quality: int = 65) -> Image.Image:
    """Make an LR image of `size` = (height, width) from an HR master.

    Kinds: "bicubic" (the protocol), "nn_jpeg" (the authors' real-world set), "jpegQ" (bicubic,
    then JPEG at quality Q), "realistic" (randomised blur/noise/JPEG, needs `rng`; see `realistic`),
    "mixed" (clean, light or realistic, needs `rng`; see `mixed`), "heavy" (JPEG 25-70 on a shifted
    block grid, needs `rng`; see `heavy`).
    Order: blur the master (if blur_sigma > 0), resize ("bicubic": PIL bicubic; "nn_jpeg": nearest
    neighbour), add noise (if noise_sigma > 0), then JPEG (only for "nn_jpeg").

    Args:
        img: HR master, PIL RGB (or L).
        size: (height, width) of the LR image.
        kind: "bicubic" or "nn_jpeg".
        blur_sigma: Gaussian blur std in master pixels, 0 = none.
        noise_sigma: Gaussian noise std in 0..255 units, 0 = none.
        rng: int seed or numpy Generator; required when noise_sigma > 0 so the output is reproducible.
        jpeg_quality: JPEG quality of "nn_jpeg".
    Returns:
        PIL image of the requested size.
    """
    kind = check_kind(kind)
    if kind in ("realistic", "mixed", "heavy"):
        if rng is None:
            raise ValueError(f"the {kind} degradation is random: give rng (an int seed or numpy Generator)")
        return {"realistic": realistic, "mixed": mixed, "heavy": heavy}[kind](img, size, rng)
    if kind.startswith("jpeg"):
        jpeg_quality, kind = int(kind[4:]), "bicubic_jpeg"
    if noise_sigma > 0 and rng is None:
        raise ValueError("noise_sigma > 0 needs rng (an int seed or numpy Generator) so the result is reproducible")
    if blur_sigma > 0:
        img = gaussian_blur(img, blur_sigma)
    out = nearest_resize(img, size) if kind == "nn_jpeg" else bicubic_resize(img, size)
    if noise_sigma > 0:
        out = add_noise(out, noise_sigma, rng)
    if kind in ("nn_jpeg", "bicubic_jpeg"):
        out = jpeg(out, jpeg_quality)
    return out
