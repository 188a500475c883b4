"""The one output-size planner: (height, width) everywhere, limits as keyword arguments.

Torch-free, so the command line can check a request before it imports torch or loads a model.
`arasfsr.inference` re-exports everything here; the demo calls `output_size` with its own limits.
"""
from __future__ import annotations

import math
import numbers

MAX_SCALE = 32.0                  # per axis
MIN_INPUT_SIDE = 8                # px
MAX_INPUT_PIXELS = 2048 * 2048
MAX_OUTPUT_PIXELS = 4096 * 4096
VIDEO_MAX_SECONDS = 600.0         # `arasfsr video`: longer clips are refused unless --max-seconds says otherwise
VIDEO_CRF = 18                    # `arasfsr video`: x264 quality of the output (visually close to lossless)
MAX_PHOTO_PIXELS = 4096 * 4096    # whole photos (`arasfsr.restore`): larger than the faces `upscale` takes

Size = tuple[int | None, int | None]


def _is_number(value) -> bool:
    # bool is an int to Python, but `scale=True` is a mistake, not "x1"
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_request(scale: float | None = None, size: Size | None = None, *,
                  max_scale: float = MAX_SCALE) -> None:
    """Check the form of a request without knowing the input: exactly one of scale / size,
    a finite scale in [1, max_scale], a size of whole positive pixels. Raises ValueError.

    Args:
        scale: the scale factor, or None.
        size: (height, width); one of the two may be None (it then keeps the aspect ratio).
        max_scale: the largest scale allowed per axis.
    """
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    if scale is not None:
        if not _is_number(scale) or not math.isfinite(float(scale)) or not 1.0 <= float(scale) <= max_scale:
            raise ValueError(f"scale must be a number in [1, {max_scale:g}], got {scale!r}")
        return
    if isinstance(size, (str, bytes)) or not hasattr(size, "__len__") or len(size) != 2:
        raise ValueError(f"size must be (height, width), got {size!r}")
    if size[0] is None and size[1] is None:
        raise ValueError("size needs a height, a width or both, got (None, None)")
    for side in size:
        if side is not None and (not _is_number(side) or not math.isfinite(float(side)) or int(side) != side):
            raise ValueError(f"size must be (height, width) in whole pixels, got {tuple(size)}")


def output_size(input_size: tuple[int, int], scale: float | None = None, size: Size | None = None, *,
                max_scale: float = MAX_SCALE, max_output_pixels: int = MAX_OUTPUT_PIXELS,
                min_side: int = MIN_INPUT_SIDE, max_input_pixels: int | None = MAX_INPUT_PIXELS
                ) -> tuple[int, int]:
    """The (height, width) an upscale produces; raises ValueError for any request out of bounds.

    Args:
        input_size: (height, width) of the input in pixels.
        scale: output = round-half-up(input x scale) per axis; exactly 1 gives the input size.
        size: (height, width) of the output instead of a scale (anisotropic allowed). One side may
            be None: it then follows the input's aspect ratio, rounded half up.
        max_scale: largest scale per axis (also bounds `size`).
        max_output_pixels: largest height x width of the output.
        min_side: smallest input side in pixels.
        max_input_pixels: largest input height x width, or None for no limit.
    Returns:
        (height, width) of the output, each >= the input's.
    """
    h, w = (int(v) for v in input_size)
    if min(h, w) < min_side:
        raise ValueError(f"input must be at least {min_side}x{min_side} px, got {h}x{w} (height x width)")
    if max_input_pixels is not None and h * w > max_input_pixels:
        raise ValueError(f"input has {h * w} pixels ({h}x{w}), over the limit of {max_input_pixels} "
                         f"(MAX_INPUT_PIXELS); crop or downscale it first")
    check_request(scale, size, max_scale=max_scale)
    if scale is not None:
        scale = float(scale)
        out = (math.floor(h * scale + 0.5), math.floor(w * scale + 0.5))  # round half up
    else:
        out_h, out_w = size
        if out_h is None:   # keep the aspect ratio: height follows width
            out_h = math.floor(h * int(out_w) / w + 0.5)
        if out_w is None:
            out_w = math.floor(w * int(out_h) / h + 0.5)
        out = (int(out_h), int(out_w))
        if out[0] < h or out[1] < w:
            raise ValueError(f"size {out[0]}x{out[1]} is smaller than the input {h}x{w} (height x width): "
                             "this upscales only")
        if out[0] > max_scale * h or out[1] > max_scale * w:
            raise ValueError(f"size {out[0]}x{out[1]} needs a scale above {max_scale:g} (MAX_SCALE) "
                             f"for a {h}x{w} input")
    if out[0] * out[1] > max_output_pixels:
        raise ValueError(f"output {out[0]}x{out[1]} has {out[0] * out[1]} pixels, over the limit of "
                         f"{max_output_pixels} (MAX_OUTPUT_PIXELS); ask for a smaller scale or size")
    return out
