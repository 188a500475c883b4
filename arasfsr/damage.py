"""How damaged is an input? JPEG quality from a file's quantisation tables, block edges otherwise.

The choice of weights depends on it (`choose_weights`): weights trained on clean inputs sharpen
JPEG blocks, weights trained on damaged inputs smear clean ones. Two measurements:

- a JPEG file carries its quantisation tables; scaled IJG tables (the ones nearly every encoder,
  PIL and libjpeg included, uses) give the quality it was saved at (`jpeg_quality`);
- a PNG or an array that was once a JPEG keeps its 8x8 block edges: `blockiness` is the mean
  luma step across the block boundaries divided by the mean step elsewhere (1.0 for a clean image).

`assess` combines the two into one of "clean", "light" (JPEG quality 60 or more, or faint block
edges) and "heavy" (quality under 60, or strong block edges), with the reason in words.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

# The IJG / JPEG Annex K luminance table that quality 50 stands for (row-major, natural order).
_LUMA_50 = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)
# Thresholds: JPEG at quality >= LIGHT_QUALITY is "light" (release 0.5: 60, where the heavy-JPEG
# weights and the real-photo weights cross on the OOD whole photos: +0.38 / +0.37 dB at q60, +0.30 /
# +0.21 at q50); block edges this much stronger than the rest are "light" / "heavy" damage.
LIGHT_QUALITY = 60
BLOCKY_LIGHT, BLOCKY_HEAVY = 1.08, 1.18   # measured: clean 0.96-1.04, q75 1.04-1.18, q40 1.19-1.44


def ijg_table(quality: int) -> np.ndarray:
    """The luminance table libjpeg writes at `quality` (1-100)."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((_LUMA_50 * scale + 50) / 100), 1, 255)


def jpeg_quality(image: Image.Image) -> int | None:
    """The quality a JPEG image was saved at, from its luminance table (None: not a JPEG).

    The nearest scaled IJG table (sum of absolute differences) wins; the order of the table's
    entries does not matter, so zig-zag or natural order both work.
    """
    tables = getattr(image, "quantization", None)
    if not tables:
        return None
    luma = np.sort(np.asarray(tables[min(tables)], dtype=np.float64))
    errors = [np.abs(np.sort(ijg_table(q)) - luma).sum() for q in range(1, 101)]
    return int(np.argmin(errors)) + 1


def blockiness(image: Image.Image | np.ndarray) -> float:
    """Mean absolute luma step across 8-px block boundaries / mean step at other offsets (1 = none).

    Measured on the grid anchored at the top-left pixel, as JPEG's is. Images under 24 px a side
    give 1.0 (too few boundaries to tell).
    """
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float64)
    if array.ndim == 3:
        array = array[..., :3] @ np.array([0.299, 0.587, 0.114])
    if array.max(initial=0) <= 1.0:
        array = array * 255
    if min(array.shape) < 24:
        return 1.0
    ratios = []
    for axis in (0, 1):
        steps = np.abs(np.diff(array, axis=axis)).mean(axis=1 - axis)  # step between line i and i + 1
        offset = np.arange(len(steps)) % 8
        across, inside = steps[offset == 7].mean(), steps[offset != 7].mean()
        ratios.append((across + 0.5) / (inside + 0.5))
    return float(np.mean(ratios))


@dataclass(frozen=True)
class Damage:
    level: str                   # "clean", "light" or "heavy"
    reason: str                  # in words, for the page and the command line
    quality: int | None = None   # JPEG quality from the file's tables, if it is a JPEG
    blockiness: float = 1.0


def assess(image: Image.Image | np.ndarray) -> Damage:
    """Judge an input: JPEG files by their quality, anything else by its block edges."""
    quality = jpeg_quality(image) if isinstance(image, Image.Image) else None
    blocks = blockiness(image)
    if quality is not None:
        level = "light" if quality >= LIGHT_QUALITY else "heavy"
        return Damage(level, f"a JPEG saved at quality {quality}", quality, blocks)
    if blocks >= BLOCKY_HEAVY:
        return Damage("heavy", f"strong 8x8 block edges (blockiness {blocks:.2f}): it was once a JPEG", None, blocks)
    if blocks >= BLOCKY_LIGHT:
        return Damage("light", f"faint 8x8 block edges (blockiness {blocks:.2f})", None, blocks)
    return Damage("clean", f"no JPEG tables and no block edges (blockiness {blocks:.2f})", None, blocks)


# Which shipped weights serve each damage level ("bicubic": no model helps there). Measured on the
# out-of-distribution faces (faces from other sources than the training set; see the model card,
# "Faces from elsewhere", and scripts/evaluate_shipped.sh).
# "upscale": aligned faces (the Face tab, `arasfsr upscale`); "restore": faces found in whole photos
# (the Whole-photo tab, `arasfsr restore`), where the crops are rendered at native pixels.
CHOICES = {"upscale": {"clean": "arasfsr", "light": "arasfsr-real", "heavy": "arasfsr-heavy"},
           "restore": {"clean": "arasfsr", "light": "arasfsr-real", "heavy": "arasfsr-heavy"}}
CHOICE = CHOICES["upscale"]
# What draws everything but the faces in whole-photo mode, per damage level: the natural-photo model
# (trained on clean photographs) gains on clean photos (+2.49 dB on the OOD whole photos at x4), but
# sharpens the blocks of compressed ones (at q75 it left 1 of those 6 photos below bicubic, at q40 2),
# so JPEG damage below quality 90 keeps a bicubic background.
BACKGROUND = {"clean": "natural", "light": "bicubic", "heavy": "bicubic"}
BACKGROUND_MIN_QUALITY = 90   # a JPEG at this quality or more is clean enough (q90: all 6 photos gain, worst +0.66)


def choose_background(damage: "Damage") -> tuple[str, str]:
    """("natural" or "bicubic", the reason in words) for a photo of this damage."""
    name = BACKGROUND[damage.level]
    if damage.quality is not None and damage.quality >= BACKGROUND_MIN_QUALITY:
        name = "natural"
    if name == "bicubic":
        return name, (f"{damage.reason}: a {damage.level} input, so bicubic (the natural-photo model, "
                      "trained on clean photographs, would sharpen its JPEG damage)")
    return name, f"{damage.reason}: a {damage.level} input, so the natural-photo model"


def choose(image, choice: dict | None = None, mode: str = "upscale",
           found: Damage | None = None) -> tuple[str, Damage]:
    """The weights for one input (a path or a PIL image) and the damage that decided it.

    `mode` picks the table of `CHOICES` ("upscale" or "restore"); `choice` overrides it; `found`
    is the input's `assess` when the caller has it already (then the image is not looked at).

    A path is read with `arasfsr.io.read_image`, which keeps a JPEG's quantisation tables on the
    image; an image from `read_image` / `read_with_info` has them too, so pass the image rather
    than its path when it is read already (an image decoded and converted elsewhere has lost its
    tables and is judged by its block edges).
    """
    if choice is None:
        if mode not in CHOICES:
            raise ValueError(f"mode must be one of {tuple(CHOICES)}, got {mode!r}")
        choice = CHOICES[mode]
    if found is None:
        if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
            from .io import read_image
            image = read_image(image, max_pixels=None)  # raises a clear error for a bad file
        found = assess(image)
    return choice[found.level], found


def describe(name: str, damage: Damage) -> str:
    """One line for the page and the command line: what the input is and what was chosen."""
    what = "bicubic (no model is measured to help on such inputs)" if name == "bicubic" else f"the {name} weights"
    return f"{damage.reason}: {damage.level} input, so {what}"
