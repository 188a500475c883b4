"""Upscale an image to any scale or size, in bounded memory.

Reading (modes, EXIF, bombs, arrays) is `arasfsr.io`; the size planner is `arasfsr.sizes` (both
re-exported here). Image modes: RGB is upscaled as is. Grayscale (L, 1) and 16-bit grayscale
(I;16, I) are upscaled as RGB and returned in their own mode (16-bit stays 16-bit). RGBA / LA /
palette images with transparency: the colour channels go through the model and the alpha channel
is resized separately with bicubic interpolation, then reattached (RGBA / LA out). CMYK, YCbCr and
other modes are converted to RGB. EXIF orientation is applied first. 16-bit RGB files are read by
Pillow as 8-bit RGB. Float arrays in [0, 1] and 16-bit colour arrays reach the model unrounded.

Device default: "auto" (CUDA when available), as for `arasfsr.load_model`. `upscale` leaves the
caller's model as it found it: same device, same train/eval mode.
"""
from __future__ import annotations

import numbers
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from .coords import grid_coord, make_cell
from .decoder import inference_blocks, tile_frame
from .io import ImageError, ImageSource, merge_image, read_image, read_planes, split_image  # noqa: F401 (re-exported)
from .sizes import MAX_INPUT_PIXELS, MAX_OUTPUT_PIXELS, MAX_SCALE, MIN_INPUT_SIDE, output_size  # noqa: F401 (re-exported)
from .threads import idle_cpus, inference_plan, resolve_device, thread_limit  # noqa: F401 (resolve_device re-exported)

if TYPE_CHECKING:
    from .model import SRModel

DEFAULT_CHUNK_SIZE = None         # queries per chunk (bounds memory); None: per device (threads.inference_plan)


def open_image(image: ImageSource) -> Image.Image:
    """Kept for existing callers: `arasfsr.io.read_image` with the default pixel limit."""
    return read_image(image)


@torch.inference_mode()
def query_in_chunks(model, features, coord_of: Callable[[torch.Tensor], torch.Tensor], total: int,
                    cell: torch.Tensor, chunk_size: int | None = DEFAULT_CHUNK_SIZE,
                    progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Query `total` points, chunk by chunk: the one query loop of `render` and `restore`.

    Blocks, chunks and CPU workers are chosen per device by `threads.inference_plan`, within the
    caller's torch thread count; the output does not depend on these choices.

    Args:
        features: `model.encode(...)` of the input.
        coord_of: flat indices (N,) on the device -> their (N, 2) (row, col) coordinates.
        cell: (2,) the output pixel size, the same for every point, on the model's device.
        chunk_size: queries per chunk (bounds memory); None: chosen per device.
        progress: called with (points done, total) after each chunk.
    Returns:
        (total, 3) float32 on the CPU, clamped to [0, 1].
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of queries, got {chunk_size}")
    device = cell.device
    plan = inference_plan(device, torch.get_num_threads())
    chunk_size = plan.chunk_size if chunk_size is None else chunk_size
    result = torch.empty(total, 3, device=device)  # on the device: one copy at the end
    with inference_blocks(plan.block, plan.workers):
        for start in range(0, total, chunk_size):
            flat = torch.arange(start, min(start + chunk_size, total), device=device)
            coord = coord_of(flat).unsqueeze(0)  # computed per chunk: no full-size coordinate tensor
            rgb = model.query(features, coord, cell.expand_as(coord))
            result[start:start + len(flat)] = rgb[0].clamp_(0, 1)
            if progress is not None:
                progress(start + len(flat), total)
    return result.cpu()


@torch.inference_mode()
def render(model, lr_image: torch.Tensor, out_size: tuple[int, int], chunk_size: int | None = DEFAULT_CHUNK_SIZE,
           sample: bool = False, generator: torch.Generator | None = None,
           progress: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """Query every pixel centre of an out_size grid, chunk by chunk (`query_in_chunks`).

    The encoder uses as many of the caller's torch threads as there are idle CPUs at the call (a
    thread the OS parks makes the others wait at the end of every convolution); the caller's
    thread setting is restored on return.

    Args:
        lr_image: (1, 3, h, w) in [0, 1], on the model's device.
        chunk_size: queries per chunk (bounds memory); None: chosen per device.
    Returns:
        (H, W, 3) float32 on the CPU, clamped to [0, 1].
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of queries, got {chunk_size}")
    threads = torch.get_num_threads()
    encoder_threads = min(threads, idle_cpus()) if lr_image.device.type == "cpu" else threads
    with thread_limit(encoder_threads):
        features = model.encode(lr_image, sample=sample, generator=generator)
    cell = make_cell(out_size, device=lr_image.device)
    out = query_in_chunks(model, features, lambda flat: grid_coord(out_size, flat), out_size[0] * out_size[1],
                          cell, chunk_size, progress)
    return out.view(*out_size, 3)


TILE, TILE_MARGIN = 192, 24   # LR px: the encoder's tile and the context around it (the small and
                              # paper encoders see 17 and 33 px around a pixel: conv layers + decoder)


def _tile_spans(n: int, centres: np.ndarray, tile: int, margin: int):
    """Per tile along one axis: (LR rows [p0, p1) to encode, indices of the output pixels whose
    centres (in LR px, increasing; pixel p spans [p, p + 1)) lie in the tile's core [t0, t1)).
    Centres before the first tile or past the last belong to that tile."""
    for t0 in range(0, n, tile):
        t1 = min(n, t0 + tile)
        low = -np.inf if t0 == 0 else t0
        high = np.inf if t1 == n else t1
        index = np.flatnonzero((centres >= low) & (centres < high))
        if len(index):
            yield max(0, t0 - margin), min(n, t1 + margin), index


@torch.inference_mode()
def render_tiled(model, lr_image: torch.Tensor, out_size: tuple[int, int], tile: int = TILE,
                 margin: int = TILE_MARGIN, chunk_size: int | None = DEFAULT_CHUNK_SIZE,
                 progress: Callable[[int, int], None] | None = None, where: np.ndarray | None = None,
                 fallback: torch.Tensor | None = None) -> torch.Tensor:
    """`render` with the encoder run on tiles, so its memory does not grow with the input.

    The input is cut into `tile` x `tile` LR squares; each is encoded with `margin` px of its
    neighbours around it, and the output pixels whose centres fall in the square are queried in
    that tile's frame. With a margin at least the model's reach (its receptive field plus the
    decoder's neighbourhood) the result equals `render`'s up to float rounding. Each tile is encoded
    with its place in the whole image (`decoder.tile_frame`), so ARASFSR's global coordinate
    modulation reads the position in the whole face, as untiled.

    Args:
        lr_image: (1, 3, h, w) in [0, 1], on the model's device.
        out_size: (H, W) of the output.
        where: optional (h, w) bool map of LR pixels: only output pixels that fall on a True LR
            pixel are queried, the others are taken from `fallback` ((H, W, 3), e.g. bicubic).
            Tiles without a True pixel are not encoded at all.
    Returns:
        (H, W, 3) float32 on the CPU, clamped to [0, 1].
    """
    h, w = lr_image.shape[-2:]
    out_h, out_w = out_size
    rows = (np.arange(out_h) + 0.5) * h / out_h  # output pixel centres in LR px
    cols = (np.arange(out_w) + 0.5) * w / out_w
    return render_tiled_at(model, lr_image, rows, cols, (out_h / h, out_w / w), tile, margin, chunk_size,
                           progress, where, fallback)


@torch.inference_mode()
def render_tiled_at(model, lr_image: torch.Tensor, rows: np.ndarray, cols: np.ndarray,
                    factor: tuple[float, float], tile: int = TILE, margin: int = TILE_MARGIN,
                    chunk_size: int | None = DEFAULT_CHUNK_SIZE, progress: Callable[[int, int], None] | None = None,
                    where: np.ndarray | None = None, fallback: torch.Tensor | None = None) -> torch.Tensor:
    """`render_tiled` on any grid of output pixels: their centres `rows` (R,) and `cols` (C,) in
    LR px (increasing; LR pixel p spans [p, p + 1)), `factor` (fy, fx) output px per LR px (the
    cell). `arasfsr.restore` renders a face's part of the photo's output grid with it.
    Returns (R, C, 3) float32 on the CPU, clamped to [0, 1]."""
    if tile < 1 or margin < 0:
        raise ValueError(f"tile must be positive and margin non-negative, got {tile} and {margin}")
    h, w = lr_image.shape[-2:]
    rows, cols = np.asarray(rows, np.float64), np.asarray(cols, np.float64)
    out_h, out_w = len(rows), len(cols)
    if where is not None and (where.shape != (h, w) or fallback is None or tuple(fallback.shape) != (out_h, out_w, 3)):
        raise ValueError("where must be an (h, w) map of the input, with an (H, W, 3) fallback")
    result = torch.empty(out_h, out_w, 3) if where is None else fallback.detach().to("cpu", torch.float32).clone()
    lr_row = np.clip(np.floor(rows), 0, h - 1).astype(np.int64)  # output pixel -> the LR pixel it falls on
    lr_col = np.clip(np.floor(cols), 0, w - 1).astype(np.int64)
    todo = []  # per tile: (spans, flat indices of the output pixels to query in its (R, C) block)
    for p0, p1, row_index in _tile_spans(h, rows, tile, margin):
        for q0, q1, col_index in _tile_spans(w, cols, tile, margin):
            if where is None:
                todo.append((p0, p1, row_index, q0, q1, col_index, None))
                continue
            flat = np.flatnonzero(where[np.ix_(lr_row[row_index], lr_col[col_index])])
            if len(flat):
                todo.append((p0, p1, row_index, q0, q1, col_index, torch.from_numpy(flat)))
    total = sum(len(r) * len(c) if f is None else len(f) for _, _, r, _, _, c, f in todo)
    done = 0
    threads = torch.get_num_threads()
    encoder_threads = min(threads, idle_cpus()) if lr_image.device.type == "cpu" else threads
    device = lr_image.device
    for p0, p1, row_index, q0, q1, col_index, flat in todo:
        with thread_limit(encoder_threads):
            features = model.encode(lr_image[:, :, p0:p1, q0:q1], frame=tile_frame((p0, p1), (q0, q1), (h, w)))
        # output pixel centres in the encoded tile's [-1, 1] frame
        ys = torch.from_numpy((rows[row_index] - p0) * (2 / (p1 - p0)) - 1).float().to(device)
        xs = torch.from_numpy((cols[col_index] - q0) * (2 / (q1 - q0)) - 1).float().to(device)
        cell = make_cell(((p1 - p0) * factor[0], (q1 - q0) * factor[1]), device=device)  # tile in output px
        n_cols = len(col_index)
        picked = None if flat is None else flat.to(device)

        def coord_of(k, ys=ys, xs=xs, n_cols=n_cols, picked=picked):
            index = k if picked is None else picked[k]
            return torch.stack([ys[torch.div(index, n_cols, rounding_mode="floor")], xs[index % n_cols]], -1)

        count = len(row_index) * n_cols if flat is None else len(flat)
        part = query_in_chunks(model, features, coord_of, count, cell, chunk_size,
                               None if progress is None else (lambda k, _n, d=done: progress(d + k, total)))
        if flat is None:
            result[row_index[0]:row_index[-1] + 1, col_index[0]:col_index[-1] + 1] = part.view(len(row_index), n_cols, 3)
        else:  # the picked pixels only: (row, col) of each flat index in the tile's block
            result[torch.from_numpy(row_index)[flat // n_cols], torch.from_numpy(col_index)[flat % n_cols]] = part
        done += count
    return result


def detail_map(rgb: np.ndarray, block: int = 8, threshold: float = 2.0 / 255, grow: int = 1) -> np.ndarray:
    """(h, w) bool map of the LR pixels worth a model's query: `block` x `block` squares whose
    largest luma step to a neighbour exceeds `threshold`, grown by `grow` squares each way (so the
    model's result meets the fallback only where the image is flat and both agree). rgb: (h, w, 3)
    float in [0, 1]."""
    luma = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    h, w = luma.shape
    step = np.zeros_like(luma)
    step[:, :-1] = np.abs(np.diff(luma, axis=1))
    step[:-1, :] = np.maximum(step[:-1, :], np.abs(np.diff(luma, axis=0)))
    bh, bw = -(-h // block), -(-w // block)
    padded = np.zeros((bh * block, bw * block), step.dtype)
    padded[:h, :w] = step
    busy = padded.reshape(bh, block, bw, block).max(axis=(1, 3)) > threshold
    if grow:
        grown = busy.copy()
        for dy in range(-grow, grow + 1):
            for dx in range(-grow, grow + 1):
                shifted = np.zeros_like(busy)
                shifted[max(dy, 0):bh + min(dy, 0), max(dx, 0):bw + min(dx, 0)] = \
                    busy[max(-dy, 0):bh + min(-dy, 0), max(-dx, 0):bw + min(-dx, 0)]
                grown |= shifted
        busy = grown
    return np.repeat(np.repeat(busy, block, 0), block, 1)[:h, :w]


def _tiles(height: int, width: int) -> bool:
    """Encode in tiles: inputs over two tiles' worth of pixels."""
    return height * width > 2 * TILE * TILE


def upscale(model: SRModel | str, image: ImageSource, scale: float | None = None,
            size: tuple[int | None, int | None] | None = None, chunk_size: int | None = DEFAULT_CHUNK_SIZE,
            device: str | torch.device = "auto", sample: bool = False, seed: int | None = None,
            progress: Callable[[int, int], None] | None = None, detail: float = 1.0,
            self_ensemble: int = 1) -> Image.Image:
    """Super-resolve an image to any scale or any size.

    Args:
        model: an `SRModel`, or the string "bicubic" for the PIL baseline. The model is used on
            `device` and given back on its own device, in its own train/eval mode.
        image: a path, PIL image or array (uint8, uint16, or float in [0, 1]); from 8x8 px up to
            MAX_INPUT_PIXELS, checked from the file header before decoding.
        scale: float in [1, MAX_SCALE]; output size is round(input size x scale) per axis.
            Scale 1 returns the input unchanged (in its output mode).
        size: (height, width) of the output instead of a scale (anisotropic allowed); one side
            may be None to keep the aspect ratio.
        chunk_size: queries per chunk (bounds memory); None: chosen per device.
        device: "auto" (CUDA when available), "cpu", "cuda", ...
        sample: sample the LFE latent instead of using its mean (default: deterministic).
        seed: random seed for `sample` (default 0).
        progress: called with (pixels done, pixels total) after each chunk.
        detail: the share of the model's detail over bicubic that is kept, 0 to 1: the output is
            bicubic + detail x (model - bicubic). 1 (default): the model's output as it is. The
            per-input default (`arasfsr.damage.choose_detail`) keeps 0.7 of it for JPEG inputs,
            where the model's detail carries the compression's noise too (MODEL_CARD.md, "Release 0.8").
        self_ensemble: render the input this many times (1, 2, 4 or 8), each time flipped or rotated
            (`SELF_ENSEMBLE`: as it is, mirrored, upside down, turned 180, then the four with a quarter
            turn), turn each output back and average them, in that many times the time. 8 (every flip
            and quarter turn) is the geometric self-ensemble of EDSR+: +0.11 dB at x4 on the natural test
            split, +0.08 on photographs from elsewhere (MODEL_CARD.md). Made for photographs: a face
            model's GCM reads where it is in the face, so a turned face is drawn as some other face
            (`restore`'s mirror ensemble, `render_face`, is the one made for faces).
    Returns:
        A PIL image in the input's mode family (see the module docstring).
    Memory: inputs over 2 x TILE^2 pixels are encoded in tiles (`render_tiled`, every model; GCM
    still reads the position in the whole face), so the encoder's memory is that of one tile and
    the output's float buffer is what grows with the request.
    Raises:
        ValueError (`arasfsr.io.ImageError` for unusable images) and FileNotFoundError, each
        with a one-line message.
    """
    is_bicubic = isinstance(model, str)
    if is_bicubic and model != "bicubic":
        raise ValueError(f"model must be an SRModel or 'bicubic', got {model!r}")
    if not is_bicubic and not isinstance(model, torch.nn.Module):
        raise ValueError(f"model must be an SRModel or 'bicubic', got {type(model).__name__}")
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of queries, got {chunk_size}")
    check_detail(detail)
    check_self_ensemble(self_ensemble)
    rgb, alpha, mode, pil = read_planes(image)
    in_h, in_w = rgb.shape[:2]
    out_h, out_w = output_size((in_h, in_w), scale, size)
    if (out_h, out_w) == (in_h, in_w):  # scale 1: the input itself, not a model's approximation of it
        return merge_image(rgb, alpha, mode)
    if alpha is not None:
        alpha = np.asarray(Image.fromarray(alpha, "F").resize((out_w, out_h), Image.BICUBIC))
    if is_bicubic:
        if pil is not None and pil.mode in ("RGB", "L"):  # uint8: exactly PIL's bicubic, the protocol's baseline
            return pil.resize((out_w, out_h), Image.BICUBIC)
        return merge_image(bicubic_planes(rgb, (out_h, out_w)), alpha, mode)
    device = resolve_device(device)
    param = next(model.parameters(), None)
    home = param.device if param is not None else None
    was_training = model.training
    try:
        model.to(device).eval()
        lr = torch.from_numpy(rgb).permute(2, 0, 1).unsqueeze(0).to(device)
        generator = None
        if sample:
            generator = torch.Generator(device=device).manual_seed(0 if seed is None else int(seed))
        out = None
        passes = SELF_ENSEMBLE[:self_ensemble]
        for i, (turns, flip) in enumerate(passes):
            x = _turn(lr, turns, flip, dims=(2, 3))
            grid = (out_w, out_h) if turns % 2 else (out_h, out_w)  # `size` is the caller's request
            done = i * out_h * out_w
            step = None if progress is None else (
                lambda d, t, done=done: progress(done + d, len(passes) * out_h * out_w))
            if _tiles(in_h, in_w) and not sample:  # large input: the encoder in tiles (sampling draws per tile)
                y = render_tiled(model, x, grid, chunk_size=chunk_size, progress=step)
            else:
                y = render(model, x, grid, chunk_size, sample=sample, generator=generator, progress=step)
            y = _turn(y, turns, flip, dims=(0, 1), undo=True)
            out = y if out is None else out + y
        if len(passes) > 1:
            out = out / len(passes)
    finally:  # give the model back as it came: its device, its mode
        model.train(was_training)
        if home is not None:
            model.to(home)
    out = out.numpy()
    if detail != 1.0:
        out = shrink_detail(out, bicubic_planes(rgb, (out_h, out_w), pil), detail)
    return merge_image(out, alpha, mode)


# (quarter turns counter-clockwise, mirror left-right first): the passes of `upscale(self_ensemble=N)`,
# the first N of them. 1, 2 and 4 keep the output's shape; 8 adds the four with a quarter turn.
SELF_ENSEMBLE = ((0, False), (0, True), (2, True), (2, False), (1, False), (1, True), (3, False), (3, True))


def check_self_ensemble(n) -> int:
    """`self_ensemble` must be 1, 2, 4 or 8 (the passes `upscale` averages)."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or int(n) not in (1, 2, 4, 8):
        raise ValueError(f"self_ensemble must be 1, 2, 4 or 8 (the number of flipped or turned passes), got {n!r}")
    return int(n)


def _turn(x: torch.Tensor, turns: int, flip: bool, dims: tuple[int, int], undo: bool = False) -> torch.Tensor:
    """Mirror (along dims[1]) then turn by `turns` quarter turns in the plane dims; undo=True
    applies the inverse (turn back, then mirror)."""
    if undo:
        x = torch.rot90(x, -turns, dims) if turns % 4 else x
        return torch.flip(x, (dims[1],)) if flip else x
    x = torch.flip(x, (dims[1],)) if flip else x
    return torch.rot90(x, turns, dims) if turns % 4 else x


def check_detail(detail: float) -> float:
    """`detail` (the share of the model's detail over bicubic kept) must be a number from 0 to 1."""
    if isinstance(detail, bool) or not isinstance(detail, numbers.Real) or not 0.0 <= float(detail) <= 1.0:
        raise ValueError(f"detail must be a number from 0 to 1 (the share of the model's detail kept), got {detail!r}")
    return float(detail)


def bicubic_planes(rgb: np.ndarray, out_size: tuple[int, int], pil: Image.Image | None = None) -> np.ndarray:
    """(H, W, 3) float32 [0, 1] planes resized by PIL bicubic to out_size (height, width): the
    baseline `upscale("bicubic", ...)` gives. An 8-bit RGB or L `pil` (the image `rgb` came from)
    is resized as it is, as the protocol's baseline is; anything else in float throughout."""
    out_h, out_w = out_size
    if pil is not None and pil.mode in ("RGB", "L"):
        return np.asarray(pil.resize((out_w, out_h), Image.BICUBIC).convert("RGB"), np.float32) / 255.0
    return np.stack([np.asarray(Image.fromarray(np.ascontiguousarray(rgb[..., c]), "F").resize((out_w, out_h),
                                                                                               Image.BICUBIC))
                     for c in range(3)], -1)


def shrink_detail(out: np.ndarray, bicubic: np.ndarray, detail: float) -> np.ndarray:
    """bicubic + detail x (out - bicubic): keep that share of the model's detail over bicubic."""
    return (bicubic + np.float32(detail) * (out - bicubic)).astype(np.float32)
