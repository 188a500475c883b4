"""Typed numbers in, an output (height, width) out: one planner, `arasfsr.inference.output_size`.

The demo only checks that a typed value is a number (the visitor may type anything), then lets
the package plan the size with the demo's limits. Nothing is clamped: an out-of-range scale or size
is an `InputError` naming the range, whatever the widget allowed.
"""
from __future__ import annotations

import math

from arasfsr import inference

from . import limits
from .errors import InputError, quote, sentence
from .images import MAX_FACE_SIDE, MAX_PHOTO_SIDE, probe_image


def number(value, what: str) -> float:
    """A finite float from whatever the page or an API client sent, or InputError."""
    if value is None or isinstance(value, bool):
        raise InputError(f"Give a {what}.")
    try:
        result = float(value)
    except (TypeError, ValueError):
        raise InputError(f"The {what} must be a number, got {quote(value)}.") from None
    if not math.isfinite(result):
        raise InputError(f"The {what} must be a finite number, got {quote(value)}.")
    return result


def check_scale(scale) -> float:
    """The scale as a float in [MIN_SCALE, MAX_SCALE], or InputError naming the range."""
    value = number(scale, "scale")
    if not limits.MIN_SCALE <= value <= limits.MAX_SCALE:
        raise InputError(f"The scale must be from {limits.MIN_SCALE:g} to {limits.MAX_SCALE:g} (this demo only "
                         f"enlarges), got {value:g}.")
    return value


def check_seed(seed) -> int:
    value = number(seed, "seed")
    if value != int(value) or not 0 <= value < 2 ** 63:
        raise InputError(f"The seed must be a whole number from 0, got {quote(seed)}.")
    return int(value)


def _side(value, what: str) -> int:
    side = number(value, what)
    if side != int(side) or side <= 0:
        raise InputError(f"The {what} must be a whole number of pixels above 0, got {quote(value)}.")
    return int(side)


def plan_size(input_shape: tuple[int, int], resize_by: str = "scale", scale=None, width=None, height=None,
              photo: bool = False) -> tuple[int, int]:
    """The output (height, width) of a request, or InputError saying why it is refused.

    Args:
        input_shape: (height, width) of the input.
        resize_by: "scale" (output = round(input x scale) per axis) or "size" (width x height typed).
        photo: whole-photo limits instead of face-mode ones.
    """
    max_pixels = limits.max_output_pixels(photo)
    kwargs = dict(max_scale=limits.MAX_SCALE, max_output_pixels=max_pixels, min_side=limits.MIN_SIDE,
                  max_input_pixels=limits.MAX_PHOTO_INPUT_PIXELS)
    if resize_by == "scale":
        request = dict(scale=check_scale(scale))
    elif resize_by == "size":
        request = dict(size=(_side(height, "target height"), _side(width, "target width")))
    else:
        raise InputError(f"Resize by 'scale' or 'size', got {quote(resize_by)}.")
    try:
        return inference.output_size(input_shape, **request, **kwargs)
    except ValueError as error:
        message = sentence(error)
        if "MAX_OUTPUT_PIXELS" in message:  # say it in the visitor's terms, with the largest scale that fits
            h, w = input_shape
            largest = math.floor(math.sqrt(max_pixels / (h * w)) * 100) / 100
            message = (f"The output would be over this server's {limits.megapixels(max_pixels)} MP limit."
                       + (f" The largest scale for this {w} x {h} px input is {largest:g}."
                          if largest >= limits.MIN_SCALE else ""))
        if "size" in request and message.startswith("Size "):
            message += " (sizes here are height x width)"
        raise InputError(message) from None


def describe_request(path, resize_by: str = "scale", scale=None, width=None, height=None,
                     photo: bool = False) -> str:
    """The output size a request will have, shown before running (Markdown).

    A bad file raises InputError (the upload is refused at once); a bad scale or size is
    described in the text (the Run button would refuse it with the same words).
    """
    if not path:
        return "Upload an image to see the output size."
    info = probe_image(path, MAX_PHOTO_SIDE if photo else MAX_FACE_SIDE)
    text = f"Input: {info.size_text} ({info.format}, {info.mode})."
    try:
        out_h, out_w = plan_size(info.shape, resize_by, scale, width, height, photo)
    except InputError as error:
        return f"{text}  \n**Cannot run:** {error}"
    return f"{text}  \n**Output: {out_w} x {out_h} px** ({out_w * out_h / 1e6:.2f} MP)."
