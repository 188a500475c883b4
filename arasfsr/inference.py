"""Upscale an image to any scale or size, in bounded memory.

Image modes: RGB is upscaled as is. Grayscale (L, 1) and 16-bit grayscale (I;16, I) are
upscaled as RGB and returned in their own mode (16-bit stays 16-bit). RGBA / LA / palette
images with transparency: the colour channels go through the model and the alpha channel is
resized separately with bicubic interpolation, then reattached (RGBA / LA out). CMYK, YCbCr and
other modes are converted to RGB. EXIF orientation is applied first. 16-bit RGB files are read
by Pillow as 8-bit RGB.
"""
from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageOps

from .coords import grid_coord, make_cell

MAX_SCALE = 32.0                  # per axis
MIN_INPUT_SIDE = 8                # px
MAX_INPUT_PIXELS = 2048 * 2048
MAX_OUTPUT_PIXELS = 4096 * 4096
DEFAULT_CHUNK_SIZE = None         # queries per chunk (bounds memory); None: per device (threads.inference_plan)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def output_size(input_size: tuple[int, int], scale: float | None = None,
                size: tuple[int, int] | None = None) -> tuple[int, int]:
    """The (height, width) an upscale produces; raises ValueError for any request out of bounds.

    Exactly one of `scale` (output = round(input x scale) per axis) or `size` is given.
    """
    h, w = input_size
    if min(h, w) < MIN_INPUT_SIDE:
        raise ValueError(f"input must be at least {MIN_INPUT_SIDE}x{MIN_INPUT_SIDE} px, got {h}x{w}")
    if h * w > MAX_INPUT_PIXELS:
        raise ValueError(f"input has {h * w} pixels, over the limit MAX_INPUT_PIXELS={MAX_INPUT_PIXELS}")
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    if scale is not None:
        scale = float(scale)
        if not math.isfinite(scale) or not 1.0 <= scale <= MAX_SCALE:
            raise ValueError(f"scale must be a number in [1, {MAX_SCALE:g}], got {scale}")
        out = (math.floor(h * scale + 0.5), math.floor(w * scale + 0.5))  # round half up
    else:
        if len(size) != 2 or any(int(s) != s for s in size):
            raise ValueError(f"size must be (height, width) in whole pixels, got {size}")
        out = (int(size[0]), int(size[1]))
        if out[0] < h or out[1] < w:
            raise ValueError(f"size {out[0]}x{out[1]} is smaller than the input {h}x{w}: this upscales only")
        if out[0] > MAX_SCALE * h or out[1] > MAX_SCALE * w:
            raise ValueError(f"size {out[0]}x{out[1]} needs a scale above MAX_SCALE={MAX_SCALE:g} for a {h}x{w} input")
    if out[0] * out[1] > MAX_OUTPUT_PIXELS:
        raise ValueError(f"output {out[0]}x{out[1]} has {out[0] * out[1]} pixels, over the limit "
                         f"MAX_OUTPUT_PIXELS={MAX_OUTPUT_PIXELS}")
    return out


def open_image(image: str | os.PathLike | Image.Image | np.ndarray) -> Image.Image:
    """A PIL image from a path, an array or an image, with EXIF orientation applied."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    elif not isinstance(image, Image.Image):
        image = Image.open(image)
        image.load()
    return ImageOps.exif_transpose(image)


def split_image(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(rgb float32 (h, w, 3) in [0, 1], alpha float32 (h, w) or None, output mode)."""
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        gray = np.clip(np.asarray(image, dtype=np.float32) / 65535.0, 0, 1)
        return np.repeat(gray[..., None], 3, axis=-1), None, "I;16"
    if mode in ("1", "L", "F"):
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        return np.repeat(gray[..., None], 3, axis=-1), None, "L"
    if mode in ("LA", "La"):
        arr = np.asarray(image.convert("LA"), dtype=np.float32) / 255.0
        return np.repeat(arr[..., :1], 3, axis=-1), arr[..., 1], "LA"
    if mode in ("RGBA", "RGBa", "PA"):
        arr = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        return arr[..., :3], arr[..., 3], "RGBA"
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0, None, "RGB"


def merge_image(rgb: np.ndarray, alpha: np.ndarray | None, mode: str) -> Image.Image:
    """Inverse of `split_image` for float arrays in [0, 1]: round to nearest, back to `mode`."""
    rgb = np.clip(rgb, 0.0, 1.0)
    if mode == "I;16":
        return Image.fromarray(np.rint(rgb.mean(-1) * 65535).astype(np.uint16))
    out = Image.fromarray(np.rint(rgb * 255).astype(np.uint8), "RGB")
    if mode in ("L", "LA"):
        out = out.convert("L")
    if alpha is not None:
        out = out.convert("RGBA" if mode == "RGBA" else "LA")
        out.putalpha(Image.fromarray(np.rint(np.clip(alpha, 0, 1) * 255).astype(np.uint8)))
    return out


@torch.inference_mode()
def render(model, lr_image: torch.Tensor, out_size: tuple[int, int], chunk_size: int = DEFAULT_CHUNK_SIZE,
           sample: bool = False, generator: torch.Generator | None = None,
           progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Query every pixel centre of an out_size grid, chunk by chunk.

    Blocks, chunks and CPU workers are chosen per device by `threads.inference_plan`, within the
    caller's torch thread count (`torch.get_num_threads()`, see `threads.configure_threads`); the
    encoder uses as many of those threads as there are idle CPUs at the call. The caller's thread
    setting is restored on return. The output does not depend on any of these choices.

    Args:
        lr_image: (1, 3, h, w) in [0, 1], on the model's device.
        chunk_size: queries per chunk (bounds memory); None: chosen per device.
    Returns:
        (H, W, 3) float32 on the CPU, clamped to [0, 1].
    """
    from .decoder import inference_blocks  # (here, not at the top: this file's header has another owner)
    from .threads import idle_cpus, inference_plan, thread_limit

    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of queries, got {chunk_size}")
    height, width = out_size
    device = lr_image.device
    threads = torch.get_num_threads()
    plan = inference_plan(device, threads)
    chunk_size = plan.chunk_size if chunk_size is None else chunk_size
    # the encoder is a few large convolutions: all threads on a quiet machine, fewer on a busy one
    # (a thread the OS parks makes the others wait at the end of every convolution)
    encoder_threads = min(threads, idle_cpus()) if device.type == "cpu" else threads
    with thread_limit(encoder_threads):
        features = model.encode(lr_image, sample=sample, generator=generator)
    result = torch.empty(height * width, 3, device=device)  # on the device: one copy at the end
    cell = make_cell(out_size, device=device)
    total = height * width
    with inference_blocks(plan.block, plan.workers):
        for start in range(0, total, chunk_size):
            flat = torch.arange(start, min(start + chunk_size, total), device=device)
            # pixel centres of the output grid, computed per chunk: no full-size coordinate tensor
            coord = grid_coord(out_size, flat).unsqueeze(0)
            rgb = model.query(features, coord, cell.expand_as(coord))
            result[start:start + len(flat)] = rgb[0].clamp_(0, 1)
            if progress is not None:
                progress(start + len(flat), total)
    return result.cpu().view(height, width, 3)


def upscale(model, image, scale: float | None = None, size: tuple[int, int] | None = None,
            chunk_size: int = DEFAULT_CHUNK_SIZE, device: str | torch.device = "auto",
            sample: bool = False, seed: int | None = None,
            progress: Callable[[int, int], None] | None = None) -> Image.Image:
    """Super-resolve an image to any scale or any size.

    Args:
        model: an `SRModel` (moved to `device`), or the string "bicubic" for the PIL baseline.
        image: a path, PIL image or uint8/uint16 array; any size from 8x8 px up.
        scale: float in [1, MAX_SCALE]; output size is round(input size x scale) per axis.
        size: (height, width) of the output instead of a scale (anisotropic allowed).
        chunk_size: queries per chunk; memory grows with it, speed barely does.
        device: "auto" (CUDA when available), "cpu", "cuda", ...
        sample: sample the LFE latent instead of using its mean (default: deterministic).
        seed: random seed for `sample` (default 0).
        progress: called with (pixels done, pixels total) after each chunk.
    Returns:
        A PIL image in the input's mode family (see the module docstring).
    """
    pil = open_image(image)
    rgb, alpha, mode = split_image(pil)
    out_h, out_w = output_size(rgb.shape[:2], scale, size)
    if alpha is not None:
        alpha = np.asarray(Image.fromarray(alpha, "F").resize((out_w, out_h), Image.BICUBIC))
    if isinstance(model, str):
        if model != "bicubic":
            raise ValueError(f"model must be an SRModel or 'bicubic', got {model!r}")
        if pil.mode in ("RGB", "L"):  # uint8: exactly PIL's bicubic, the protocol's baseline
            return pil.resize((out_w, out_h), Image.BICUBIC)
        channels = [np.asarray(Image.fromarray(rgb[..., c], "F").resize((out_w, out_h), Image.BICUBIC))
                    for c in range(3)]
        return merge_image(np.stack(channels, -1), alpha, mode)
    device = resolve_device(device)
    model.to(device).eval()
    lr = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).to(device)
    generator = None
    if sample:
        generator = torch.Generator(device=device).manual_seed(0 if seed is None else int(seed))
    out = render(model, lr, (out_h, out_w), chunk_size, sample=sample, generator=generator, progress=progress)
    return merge_image(out.numpy(), alpha, mode)
