"""How damaged is an input? JPEG quality from a file's quantisation tables, or from the trace they left in its pixels.

The choice of weights depends on it (`choose_weights`): weights trained on clean inputs sharpen
JPEG blocks, weights trained on damaged inputs smear clean ones. Two measurements:

- a JPEG file carries its quantisation tables; scaled IJG tables (the ones nearly every encoder,
  PIL and libjpeg included, uses) give the quality it was saved at (`jpeg_quality`);
- a PNG or an array that was once a JPEG still carries JPEG's quantisation: on the 8x8 grid it was
  coded on, its luma DCT coefficients sit on multiples of the table's steps (`jpeg_trace` finds the
  grid and the quality; it finds some JPEG faces at 24 px and all from 48 px, where block edges
  cannot be told from a face's own edges: `blockiness`, the 0.5 measure, read 1.22 on clean 32 px
  faces, above its "heavy" line).

`assess` combines the two into one of "clean", "light" (JPEG quality 60 or more) and "heavy"
(quality under 60), with the reason in words.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image
from scipy.fft import dctn  # SciPy comes with scikit-image

# The IJG / JPEG Annex K luminance table that quality 50 stands for (row-major, natural order).
_LUMA_50 = np.array([
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55,
    14, 13, 16, 24, 40, 57, 69, 56, 14, 17, 22, 29, 51, 87, 80, 62,
    18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
    49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=np.float64)
# Thresholds: JPEG at quality >= LIGHT_QUALITY is "light" (release 0.5: 60, where the heavy-JPEG
# weights and the real-photo weights cross on the OOD whole photos: +0.38 / +0.37 dB at q60, +0.30 /
# +0.21 at q50). Block edges (`blockiness`, kept as a figure in `Damage`) no longer decide: BLOCKY_* are the 0.5 lines.
LIGHT_QUALITY = 60
BLOCKY_LIGHT, BLOCKY_HEAVY = 1.08, 1.18   # measured: clean 0.96-1.04, q75 1.04-1.18, q40 1.19-1.44
# jpeg_trace: qualities searched (above 93 the IJG steps are 1-2 and leave no trace worth a choice),
# the largest centre square read (px), and the evidence needed: z >= TRACE_Z and an effect (how much
# closer to the steps than chance, in steps) >= max(TRACE_EFFECT, TRACE_EFFECT_BASE + TRACE_EFFECT_SMALL /
# sqrt(8x8 blocks)). Measured (benchmarks/bench_damage.py) on 47 faces (the OOD set and studio val) at
# 24-128 px and 20 natural-photo tiles, reduced with PIL bicubic, JPEG at q40-q90, decoded and cropped
# by 0-7 px: clean and q95 effects 0.01-0.12 (the most at 24 px, 0.045 from 64 px), JPEG 0.10-0.24 on
# faces (0.03-0.24 on flat photo tiles); a clean input wrongly called a JPEG costs more than a JPEG
# missed (the clean weights on q40 faces lose about 0.3 dB, the JPEG weights on clean ones up to 2).
TRACE_QUALITIES = range(10, 94)
TRACE_MAX_SIDE = 256
TRACE_Z = 4.0
TRACE_EFFECT, TRACE_EFFECT_BASE, TRACE_EFFECT_SMALL = 0.08, 0.06, 0.24


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


@lru_cache(maxsize=None)
def _step_tables() -> np.ndarray:
    """(qualities, 8, 8) IJG luminance steps for TRACE_QUALITIES (row: vertical frequency)."""
    return np.stack([ijg_table(q).reshape(8, 8) for q in TRACE_QUALITIES])


def _comb(coefficients: np.ndarray, tables: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(z, effect) per table. effect: how far the coefficients' mean distance to the nearest
    multiple of each step falls below what unquantised values give (uniform: 1/4 of a step, sd
    0.144), in steps; z: the same in standard errors. Only coefficients over 0.6 steps count
    (smaller ones round to 0 under any table); fewer than 20 of them give 0."""
    x = coefficients[None] / tables[:, None]                         # (tables, blocks, 8, 8)
    used = np.abs(x) > 0.6
    distance = np.where(used, np.abs(x - np.rint(x)), 0.0)
    n = used.sum(axis=(1, 2, 3))
    effect = np.where(n >= 20, 0.25 - distance.sum(axis=(1, 2, 3)) / np.maximum(n, 1), 0.0)
    return effect * np.sqrt(n) / 0.144, effect


def jpeg_trace(image: Image.Image | np.ndarray) -> tuple[int, float, tuple[int, int]] | None:
    """The JPEG quality an image that has lost its tables was once saved at, from its pixels.

    JPEG stores each 8x8 block's luma DCT coefficients as multiples of a table's steps; decoding
    to 8-bit RGB only rounds them by a fraction of a step. Every grid offset (a crop of a JPEG moves
    the grid) and every IJG table from quality 10 to 93 is tried on the centre square (at most
    TRACE_MAX_SIDE px); the best fit counts when its z clears the line above.
    Returns (quality, effect in steps, (row, column) offset of the grid), or None: no trace (never a JPEG, a JPEG
    resized since, or one above quality 93).
    """
    array = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float64)
    if array.ndim == 3:
        array = array[..., :3] @ np.array([0.299, 0.587, 0.114])   # JPEG's Y (BT.601, full range)
    if array.max(initial=0) <= 1.0:
        array = array * 255
    h, w = array.shape
    top, left = max(0, (h - TRACE_MAX_SIDE) // 2), max(0, (w - TRACE_MAX_SIDE) // 2)
    array = array[top:top + TRACE_MAX_SIDE, left:left + TRACE_MAX_SIDE] - 128
    tables = _step_tables()
    coarse = tables[::8]   # a few qualities to find the grid, then all of them on it
    best = None
    for dy in range(8):
        for dx in range(8):
            part = array[dy:, dx:]
            rows, cols = part.shape[0] // 8, part.shape[1] // 8
            if rows * cols < 2:
                continue
            blocks = part[:rows * 8, :cols * 8].reshape(rows, 8, cols, 8).transpose(0, 2, 1, 3).reshape(-1, 8, 8)
            coefficients = dctn(blocks, axes=(1, 2), norm="ortho")
            z = _comb(coefficients, coarse)[0].max()
            if best is None or z > best[0]:
                best = (z, coefficients, ((top + dy) % 8, (left + dx) % 8))
    if best is None:
        return None
    _, coefficients, offset = best
    z, effect = _comb(coefficients, tables)
    k = int(np.argmax(z))
    needed = max(TRACE_EFFECT, TRACE_EFFECT_BASE + TRACE_EFFECT_SMALL / np.sqrt(len(coefficients)))
    if z[k] < TRACE_Z or effect[k] < needed:
        return None
    return TRACE_QUALITIES[k], float(effect[k]), offset


@dataclass(frozen=True)
class Damage:
    level: str                   # "clean", "light" or "heavy"
    reason: str                  # in words, for the page and the command line
    quality: int | None = None   # JPEG quality from the file's tables, if it is a JPEG
    blockiness: float = 1.0


def assess(image: Image.Image | np.ndarray) -> Damage:
    """Judge an input: JPEG files by their tables, anything else by the JPEG trace in its pixels."""
    quality = jpeg_quality(image) if isinstance(image, Image.Image) else None
    blocks = blockiness(image)
    if quality is not None:
        level = "light" if quality >= LIGHT_QUALITY else "heavy"
        return Damage(level, f"a JPEG saved at quality {quality}", quality, blocks)
    trace = jpeg_trace(image)
    if trace is not None:
        quality = trace[0]
        level = "light" if quality >= LIGHT_QUALITY else "heavy"
        return Damage(level, f"no JPEG tables, but its pixels carry JPEG quality {quality}'s quantisation "
                             "(it was once a JPEG)", quality, blocks)
    return Damage("clean", "no JPEG tables and no JPEG trace in its pixels", None, blocks)


# Which shipped weights serve each damage level ("bicubic": no model helps there). Measured on the
# out-of-distribution faces (faces from other sources than the training set; see the model card,
# "Faces from elsewhere", and scripts/evaluate_shipped.sh).
# "upscale": aligned faces (the Face tab, `arasfsr upscale`); "restore": faces found in whole photos
# (the Whole-photo tab, `arasfsr restore`), where the crops are rendered at native pixels.
CHOICES = {"upscale": {"clean": "arasfsr", "light": "arasfsr-real", "heavy": "arasfsr-heavy"},
           "restore": {"clean": "arasfsr", "light": "arasfsr-real", "heavy": "arasfsr-heavy"}}
CHOICE = CHOICES["upscale"]
# The share of the chosen weights' detail over bicubic that the per-input default keeps
# (`upscale(..., detail=)`, `restore(..., detail=)`). On a JPEG input the model's detail is part
# face, part the compression's noise sharpened, so a fraction of it is closer to the truth than all
# of it: on the OOD val faces at x4 (12 faces) 0.7 was best or within 0.03 dB of the best at q75, q60,
# q40 and q25 and raised the worst face at every quality; on clean inputs 0.9-1.0 were best, so 1.
# Chosen on val, then measured on the test faces (MODEL_CARD.md, "Release 0.8").
DETAIL = {"clean": 1.0, "light": 0.7, "heavy": 0.7}
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
    tables and is judged by the trace in its pixels).
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


def choose_detail(damage: Damage) -> float:
    """The share of the model's detail over bicubic the per-input default keeps for this input (`DETAIL`)."""
    return DETAIL[damage.level]


def describe(name: str, damage: Damage, detail: float | None = None) -> str:
    """One line for the page and the command line: what the input is and what was chosen (`detail`:
    the share of the model's detail kept, default `choose_detail(damage)`)."""
    what = "bicubic (no model is measured to help on such inputs)" if name == "bicubic" else f"the {name} weights"
    detail = choose_detail(damage) if detail is None else detail
    if name != "bicubic" and detail < 1 and detail == DETAIL[damage.level]:
        what += (f", {detail:.0%} of their detail over bicubic (the rest would be the compression's "
                 "noise, sharpened)")
    elif name != "bicubic" and detail < 1:
        what += f", {detail:.0%} of their detail over bicubic (as asked)"
    return f"{damage.reason}: {damage.level} input, so {what}"
