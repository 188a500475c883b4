"""The paper's claim on the visitor's face: the same face at 16, 32, 64 and 128 px, each to one size."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass

from PIL import Image

import arasfsr
from arasfsr.metrics import psnr_y

from . import models
from .errors import InputError, quote
from .images import MAX_FACE_SIDE, display_rgb, load_image
from .jobs import Progress, Tracker
from .limits import MAX_SCALE, MIN_SIDE, max_output_pixels
from .sizes import number
from .zoom import label_strip

ROBUSTNESS_SIDES = (16, 32, 64, 128)
def _db(value: float) -> str:
    return "identical" if math.isinf(value) else f"{value:.2f} dB"


@dataclass
class RobustnessResult:
    sheet: Image.Image    # columns: one per input size (+ reference); rows: input, bicubic, model
    table: str            # Markdown


def robustness(path, out_side=256, model_label: str = models.DEFAULT_MODEL,
               progress: Progress | Tracker | None = None) -> RobustnessResult:
    """The paper's claim on the visitor's face: one face at 16, 32, 64 and 128 px, each to one size.

    The face is reduced (Pillow bicubic, antialiased: the training degradation) so its height is
    16, 32, 64 and 128 px, then each is super-resolved to `out_side` px high (aspect kept).
    Sizes at or above the input's height, or above the output height, are reported and left out.
    """
    side = number(out_side, "output size")
    if side != int(side) or not 32 <= side <= 512:
        raise InputError(f"The output size must be a whole number of pixels from 32 to 512, got {quote(out_side)}.")
    out_h = int(side)
    image, info = load_image(path, MAX_FACE_SIDE)
    model_label, _ = models.resolve(model_label, image)
    model = models.get_model(model_label)
    tracker = progress if isinstance(progress, Tracker) else Tracker(progress)
    if model == "bicubic":
        raise InputError("Choose a model: bicubic is already shown in every column.")
    rgb = display_rgb(image)  # the view compares colour images; alpha and 16 bits are not its point
    aspect = info.width / info.height
    out_w = max(1, round(out_h * aspect))
    if out_w * out_h > max_output_pixels():
        raise InputError(f"The output would be {out_w} x {out_h} px; this input is too wide for the view.")
    reference = rgb.resize((out_w, out_h), Image.BICUBIC)
    reference_is_real = info.height >= out_h  # else the "reference" is itself an upscale

    used, skipped = [], []
    for lr_h in ROBUSTNESS_SIDES:
        lr_w = max(1, round(lr_h * aspect))
        if lr_h >= info.height:
            skipped.append(f"{lr_h} px (the input is only {info.height} px high)")
        elif lr_h > out_h:
            skipped.append(f"{lr_h} px (above the {out_h} px output)")
        elif out_h / lr_h > MAX_SCALE:
            skipped.append(f"{lr_h} px (x{out_h / lr_h:g} is above the x{MAX_SCALE:g} limit)")
        elif min(lr_w, lr_h) < MIN_SIDE:
            skipped.append(f"{lr_h} px (narrower than {MIN_SIDE} px)")
        else:
            used.append((lr_h, lr_w))
    if not used:
        raise InputError("No input size fits: " + "; ".join(skipped) + ".")

    columns, rows = [], ["| Input | Scale | Model time | Y-PSNR bicubic | Y-PSNR model |", "|---|---|---|---|---|"]
    for k, (lr_h, lr_w) in enumerate(used):
        lr = rgb.resize((lr_w, lr_h), Image.BICUBIC)
        bicubic = arasfsr.upscale("bicubic", lr, size=(out_h, out_w))
        started = time.perf_counter()
        # every column renders out_h x out_w pixels: equal shares of the time
        result = arasfsr.upscale(model, lr, size=(out_h, out_w), progress=tracker.phase(
            k / len(used), 1 / len(used), f"{model_label}: {lr_h} px -> {out_h} px"))
        seconds = time.perf_counter() - started
        columns.append((f"{lr_h} px -> {out_h}", lr.resize((out_w, out_h), Image.NEAREST), bicubic, result))
        if reference_is_real:
            psnr = " | ".join(_db(psnr_y(image, reference)) for image in (bicubic, result))
        else:
            psnr = "- | -"
        rows.append(f"| {lr_w} x {lr_h} px | x{out_h / lr_h:.2f} | {seconds:.2f} s | {psnr} |")

    # the sheet: rows = what the model saw, bicubic, the model; a label strip under each column
    label_h, gap = 20, 4
    ref_label = "reference" if reference_is_real else "input (upscaled)"
    columns.append((ref_label, reference, None, None))
    sheet = Image.new("RGB", (len(columns) * (out_w + gap) - gap, label_h + 3 * (out_h + gap) - gap), (32, 32, 32))
    for k, (label, top, middle, bottom) in enumerate(columns):
        x = k * (out_w + gap)
        for r, tile in enumerate((top, middle, bottom)):
            if tile is not None:
                sheet.paste(tile, (x, r * (out_h + gap)))
        sheet.paste(label_strip(out_w, label, label_h), (x, 3 * (out_h + gap) - gap))
    table = "\n".join(rows)
    table += (f"\n\nRows: the input the model saw (enlarged without smoothing), bicubic, {model_label}. "
              f"Every input is the same face reduced with Pillow's bicubic (the training degradation).")
    if reference_is_real:
        table += f" PSNR is measured against the input resized to {out_w} x {out_h} px."
    else:
        table += f" No PSNR: the input is smaller than the {out_h} px output, so there is no true reference."
    if skipped:
        table += "  \nLeft out: " + "; ".join(skipped) + "."
    return RobustnessResult(sheet, table)
