"""Whole-photo restoration: every face super-resolved, the rest by bicubic interpolation or a
natural-photo model (`background`).

The models were trained on aligned face crops, not on photos. `restore` bridges the two:

    photo (H, W) --PIL bicubic--> background (H', W')                 the requested output size
    photo --YuNet--> faces, each with five landmarks                    [arasfsr.faces]
    for each face:
      canonical square around it (the training framing, axis-aligned), cut at NATIVE pixels
      encode the crop once                                              [model.encode]
      map the centres of the OUTPUT photo's pixels over the crop into the crop's [-1, 1] frame
      query the model there, cell = one output pixel in crop units      [model.query]
    blend each face over the background under a smooth mask (1 on the face, 0 before the crop edge)

Only an implicit model can do the loop body: it renders the face straight onto the output grid,
so the face's pixels are resampled exactly once (by the model), never warped in or out. The
alternative the old demo used (warp the face to an aligned crop, super-resolve, warp back) was
measured against it in benchmarks/bench_restore.py and is worse; see the README's Demo section.

A face the model cannot help stays bicubic and is listed with the reason: too small, too large,
beyond `max_faces`, or (the safety rule) its result came out softer than bicubic.
"""
from __future__ import annotations

import math
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from . import faces, inference
from .coords import make_cell, pixel_centres
from .faces import cv2  # OpenCV, imported by `faces`, whose error names the extra to install
from .sizes import MAX_PHOTO_PIXELS

MAX_FACES = 12                  # the most confident ones; the rest stay bicubic
MIN_FACE_SIDE = 16              # px: side of the face's crop in the input (the model saw 16-64 px faces)
MAX_FACE_OUTPUT_SIDE = 1024     # px: side of one face's crop in the output; bounds the time per face
DETECT_SCORE = 0.7              # YuNet confidence
DETECT_MAX_SIDE = 1280          # px: detection runs on a copy at most this long
# Blend mask over the crop, per axis, in fractions of the crop side: 0 on the outer MARGIN, a
# smoothstep up to 1 over the next FEATHER. The face (eyes at 37.5-62.5% across, mouth at 71% down)
# lies inside the plateau [0.15, 0.85]; the ramp lies where the crop still has real context.
MARGIN, FEATHER = 0.03, 0.12

# The background model skips flat squares (largest luma step at most this, in 0-1 units): see
# benchmarks/bench_restore.py --background natural for what it costs and saves.
BACKGROUND_FLAT = 2.0 / 255

ENHANCED, KEPT = "enhanced", "kept bicubic"
Progress = Callable[[int, int], None]   # (output pixels queried so far, total), as `inference.render`


@dataclass(frozen=True)
class FaceReport:
    """What happened to one detected face (in order of detection confidence)."""
    index: int                                 # 1-based
    score: float                               # YuNet confidence
    box: tuple[float, float, float, float]     # (x, y, width, height) in input pixels (YuNet's box)
    side: float                                # px: side of its canonical crop in the input
    output_side: int                           # px: the same crop's side in the output
    status: str                                # "enhanced" or "kept bicubic"
    reason: str = ""                           # why kept bicubic (starts with: too small, too large,
                                               # beyond max faces, softer than bicubic, outside the photo)


@dataclass(frozen=True)
class _Plan:
    """Where one face's crop lies: input pixels [top, top + n) x [left, left + n), may overrun the photo."""
    face: faces.Face
    top: int
    left: int
    n: int


# ----------------------------------------------------------------------------- detection
_detector = None
_detector_lock = threading.Lock()


def detect(rgb8: np.ndarray) -> list[faces.Face]:
    """Every face in an (H, W, 3) uint8 RGB photo, most confident first (one shared YuNet, made once)."""
    global _detector
    with _detector_lock:  # cv2 detectors are not re-entrant
        if _detector is None:
            _detector = faces.make_detector(score_threshold=DETECT_SCORE, top_k=200)
        return faces.detect_faces(_detector, rgb8, max_side=DETECT_MAX_SIDE)


def _run_detector(detector, rgb8: np.ndarray) -> list[faces.Face]:
    if detector is None:
        return detect(rgb8)
    if hasattr(detector, "detect"):  # a cv2.FaceDetectorYN of the caller's
        return faces.detect_faces(detector, rgb8, max_side=DETECT_MAX_SIDE)
    return sorted(detector(rgb8), key=lambda f: -f.score)  # a callable: rgb8 -> list[Face]


# ----------------------------------------------------------------------------- geometry
def face_crop(face: faces.Face) -> tuple[int, int, int]:
    """The axis-aligned square of input pixels in the training framing: (top, left, n).

    The five-point similarity fit (`faces.TEMPLATE`) gives the canonical crop's centre and side in
    input pixels; the roll angle is ignored (no resampling). Pixel centres sit at integers, so
    pixel i covers [i - 0.5, i + 0.5) and a square of n pixels centred on c starts at round(c - n/2 + 0.5).
    """
    m = faces.similarity_transform(face.landmarks, faces.TEMPLATE)  # input px -> crop fractions
    cx, cy = cv2.invertAffineTransform(m) @ np.array([0.5, 0.5, 1.0])  # the crop's centre in input px
    n = max(1, round(faces.source_side(face.landmarks)))
    return round(cy - n / 2 + 0.5), round(cx - n / 2 + 0.5), n


def reflect_index(index: np.ndarray, n: int) -> np.ndarray:
    """Indices outside [0, n) mirrored back in, edge pixel repeated (cv2.BORDER_REFLECT, as in training)."""
    period = 2 * n
    index = np.mod(index, period)
    return np.where(index < n, index, period - 1 - index)


def cut_crop(rgb: np.ndarray, top: int, left: int, n: int) -> np.ndarray:
    """The (n, n, 3) square of `rgb` at (top, left), at native pixels, mirrored where it overruns."""
    rows = reflect_index(np.arange(top, top + n), rgb.shape[0])
    cols = reflect_index(np.arange(left, left + n), rgb.shape[1])
    return rgb[np.ix_(rows, cols)]


def output_span(start: int, n: int, factor: float, out_n: int) -> tuple[int, np.ndarray]:
    """Output pixels whose centres fall on input pixels [start, start + n), along one axis.

    Output pixel u has its centre at input position (u + 0.5) / factor - 0.5 (pixel centres at
    integers). Returns (first u, positions in crop pixels of every such u), clipped to the photo.
    """
    first = max(0, math.ceil(start * factor - 0.5))          # (u + 0.5) / f >= start
    last = min(out_n - 1, math.ceil((start + n) * factor - 0.5) - 1)  # (u + 0.5) / f < start + n
    u = np.arange(first, last + 1, dtype=np.float64)
    return first, (u + 0.5) / factor - 0.5 - start


def crop_frame(position: np.ndarray, n: int) -> torch.Tensor:
    """Crop pixel positions -> the crop's [-1, 1] frame, the same formula as `coords.make_coord`:
    centre of pixel p is -1 + r + 2 r p with r = 1 / n (p need not be an integer here)."""
    return pixel_centres(n, torch.from_numpy(position).to(torch.float64)).to(torch.float32)


def blend_weight(position: np.ndarray, n: int) -> np.ndarray:
    """Blend mask along one axis at crop pixel positions: 0 at the crop's edge, smoothly 1 inside."""
    fraction = (position + 0.5) / n
    edge = np.minimum(fraction, 1 - fraction)               # distance to the nearer crop edge
    ramp = np.clip((edge - MARGIN) / FEATHER, 0, 1)
    return (ramp * ramp * (3 - 2 * ramp)).astype(np.float32)  # smoothstep: no kink, so no seam


def laplacian_variance(rgb: np.ndarray) -> float:
    """Sharpness of an (h, w, 3) float image in [0, 1]: variance of the Laplacian of its luma, 0-255 scale."""
    luma = (rgb @ np.array([0.299, 0.587, 0.114], np.float32)) * 255
    return float(cv2.Laplacian(luma.astype(np.float32), cv2.CV_32F).var())


# ----------------------------------------------------------------------------- the model on the output grid
@torch.inference_mode()
def render_face(model, crop: np.ndarray, rows: np.ndarray, cols: np.ndarray, factor: tuple[float, float],
                device: torch.device, chunk_size: int | None = inference.DEFAULT_CHUNK_SIZE,
                progress: Callable[[int], None] | None = None, ensemble: bool = False) -> np.ndarray:
    """The model's colours at output pixels given by their positions in an n x n crop.

    Args:
        crop: (n, n, 3) float32 in [0, 1], native input pixels.
        rows, cols: positions (in crop pixels, may be fractional) of the output pixel centres.
        factor: (fy, fx) output pixels per input pixel; the cell is one output pixel, 2 / (n f).
        progress: called with the number of pixels done after each chunk (with `ensemble`, the
            two passes count one after the other).
        ensemble: also render the mirrored crop at the mirrored positions (n - 1 - col, the same
            points of the face) and average the two: the flip ensemble `restore` uses.
    Crops over 2 x `inference.TILE`^2 px are encoded in tiles (`inference.render_tiled_at`).
    Returns:
        (len(rows), len(cols), 3) float32, clamped to [0, 1].
    """
    if ensemble:
        first = render_face(model, crop, rows, cols, factor, device, chunk_size, progress)
        pixels = len(rows) * len(cols)
        step = None if progress is None else (lambda done: progress(pixels + done))
        mirrored = render_face(model, np.ascontiguousarray(crop[:, ::-1]), rows, (crop.shape[1] - 1) - cols, factor,
                               device, chunk_size, step)
        return (first + mirrored) / 2
    n = crop.shape[0]
    lr = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).unsqueeze(0).to(device)  # (1, 3, n, n)
    if inference._tiles(n, n):  # a large face: the encoder in tiles, so memory stays bounded
        out = inference.render_tiled_at(model, lr, rows + 0.5, cols + 0.5, factor, chunk_size=chunk_size,
                                        progress=None if progress is None else (lambda done, total: progress(done)))
        return out.numpy()
    features = model.encode(lr)                          # once per face: the crop at its own pixels
    ys, xs = crop_frame(rows, n).to(device), crop_frame(cols, n).to(device)  # (R,), (C,)
    cell = make_cell((n * factor[0], n * factor[1]), device=device)  # the crop's extent in output pixels
    out = inference.query_in_chunks(
        model, features, lambda flat: torch.stack([ys[flat // len(xs)], xs[flat % len(xs)]], -1),  # (N, 2) (row, col)
        len(ys) * len(xs), cell, chunk_size, None if progress is None else (lambda done, total: progress(done)))
    return out.view(len(ys), len(xs), 3).numpy()


# ----------------------------------------------------------------------------- the photo
def bicubic_background(image: Image.Image, out_size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray | None, str]:
    """The whole photo upscaled by PIL bicubic to out_size (height, width), as float arrays.

    8-bit RGB and grayscale are resized as they are (so the result is exactly `upscale("bicubic")`),
    other modes per channel in float. Returns ((H', W', 3) float32 in [0, 1], alpha or None, mode).
    """
    height, width = out_size
    if image.mode in ("RGB", "L"):
        rgb, alpha, mode = inference.split_image(image.resize((width, height), Image.BICUBIC))
        return rgb.copy(), alpha, mode
    rgb, alpha, mode = inference.split_image(image)

    def resize(channel: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(np.ascontiguousarray(channel), "F").resize((width, height), Image.BICUBIC))

    canvas = np.stack([resize(rgb[..., c]) for c in range(3)], -1).clip(0, 1)
    return canvas, None if alpha is None else resize(alpha), mode


def _plan(found: list[faces.Face], factor: tuple[float, float], max_faces: int
          ) -> tuple[list[FaceReport], list[tuple[int, _Plan]]]:
    """A report for every face and the list of (report index, crop) to super-resolve."""
    reports, todo = [], []
    for index, face in enumerate(found, start=1):
        top, left, n = face_crop(face)
        side = faces.source_side(face.landmarks)
        n_out = round(n * math.sqrt(factor[0] * factor[1]))
        reason = ""
        if n < MIN_FACE_SIDE:
            reason = f"too small: {side:.0f} px across, the model needs at least {MIN_FACE_SIDE} px"
        elif n_out > MAX_FACE_OUTPUT_SIDE:
            reason = (f"too large: {n_out} px across once enlarged, over the {MAX_FACE_OUTPUT_SIDE} px limit per "
                      f"face (it fits up to x{math.floor(MAX_FACE_OUTPUT_SIDE / n * 100) / 100:g})")
        elif len(todo) >= max_faces:
            reason = f"beyond max faces: only the {max_faces} most confident are super-resolved"
        else:
            todo.append((len(reports), _Plan(face, top, left, n)))
        reports.append(FaceReport(index, float(face.score), tuple(float(v) for v in face.box), float(side), n_out,
                                  KEPT if reason else ENHANCED, reason))
    return reports, todo


def restore(model, image: str | os.PathLike | Image.Image | np.ndarray, scale: float | None = None,
            size: tuple[int, int] | None = None, *, detector=None, max_faces: int = MAX_FACES,
            device: str | torch.device = "auto", progress: Progress | None = None,
            chunk_size: int | None = inference.DEFAULT_CHUNK_SIZE,
            background=None, background_flat: float | None = BACKGROUND_FLAT,
            bicubic: tuple[np.ndarray, np.ndarray | None, str] | None = None,
            ensemble: bool = True, judge=None, detail: float = 1.0) -> tuple[Image.Image, list[FaceReport]]:
    """Upscale a whole photo: faces by the model, everything else by `background`.

    Args:
        model: an `SRModel`, or "bicubic" (faces are found and listed, nothing is super-resolved).
        image: a path, PIL image or array: any photo from 8x8 px up to MAX_PHOTO_PIXELS, any mode
            `arasfsr.upscale` takes (transparency kept, 16-bit grayscale kept 16-bit).
        scale: output = round(input x scale) per axis, 1 to `inference.MAX_SCALE`; or
        size: (height, width) of the output. Exactly one of the two (see `inference.output_size`).
        detector: None (YuNet, shared), a `cv2.FaceDetectorYN`, or a callable taking an (H, W, 3)
            uint8 RGB array and returning a list of `arasfsr.faces.Face`.
        max_faces: super-resolve at most this many faces, the most confident first.
        device: "auto" (CUDA when available), "cpu", ... The model runs there in eval mode, and is
            left on its own device in its own mode afterwards.
        progress: called with (output pixels rendered, total) after each chunk of queries.
        chunk_size: queries per model call (bounds memory); None: chosen per device.
        background: None or "bicubic" (PIL bicubic, as before 0.5), or a model without a face prior
            (the `natural` weights, LTE, LIIF) that renders the whole photo first, its encoder in
            tiles (`inference.render_tiled`), so memory stays bounded. The faces are blended over it;
            the sharpness rule still judges each face against bicubic. Transparency is resized by
            bicubic either way.
        background_flat: with a background model, 8 x 8 input squares whose largest luma step is
            at most this (0-1 units) and whose neighbours are as flat stay bicubic, where the
            model has nothing to add (`inference.detail_map`); None: the model draws every pixel.
        bicubic: `bicubic_background(image, output size)` when the caller has computed it already
            (the demo shows it beside the result); it is not modified.
        ensemble: render each face twice, as it is and mirrored, and average (`render_face`): on
            the out-of-distribution val photos at x4 this gained +0.09 / +0.06 / +0.02 dB on the
            faces (lossless / JPEG q75 / q40) and raised the worst face at each level, for twice
            the face rendering time (the background is rendered once). False: one pass.
        judge: the sharpness rule, `judge(face, sharp, soft) -> bool` (keep the model's face), given
            the detector's `Face` and the Laplacian variances of the result and of bicubic on its
            box; None: sharp >= soft, face by face (`video.TrackRule` decides per track instead).
        detail: the share of each face's detail over what lies beneath it that is kept, 0 to 1
            (`arasfsr.upscale`'s `detail`; the per-input default, `arasfsr.damage.choose_detail`,
            keeps 0.7 on JPEG inputs); the sharpness rule judges the face as it will be blended.
    Returns:
        (image of exactly the requested size in the input's mode family, one FaceReport per face found).
    """
    if not isinstance(model, str) and not hasattr(model, "query"):
        raise TypeError(f"model must be an SRModel or 'bicubic', got {type(model).__name__}")
    if isinstance(model, str) and model != "bicubic":
        raise ValueError(f"model must be an SRModel or 'bicubic', got {model!r}")
    if max_faces < 0:
        raise ValueError(f"max_faces must be 0 or more, got {max_faces}")
    detail = inference.check_detail(detail)
    if background == "bicubic":
        background = None
    if background is not None and not hasattr(background, "query"):
        raise TypeError(f"background must be None, 'bicubic' or a model, got {type(background).__name__}")
    pil = inference.read_image(image, max_pixels=MAX_PHOTO_PIXELS)  # photos may be larger than faces
    height, width = pil.height, pil.width
    out_h, out_w = inference.output_size((height, width), scale, size, max_input_pixels=MAX_PHOTO_PIXELS)
    factor = (out_h / height, out_w / width)                        # (fy, fx) output px per input px

    if bicubic is None:
        canvas, alpha, mode = bicubic_background(pil, (out_h, out_w))   # (H', W', 3) float32
    else:
        canvas, alpha, mode = bicubic
        if canvas.shape != (out_h, out_w, 3):
            raise ValueError(f"bicubic is {canvas.shape[1]}x{canvas.shape[0]} px, the output {out_w}x{out_h}")
        canvas = canvas.copy()  # blended into below; the caller's stays the baseline
    rgb = inference.split_image(pil)[0]                              # (H, W, 3) float32 in [0, 1]
    found = _run_detector(detector, np.rint(rgb * 255).astype(np.uint8))
    reports, todo = _plan(found, factor, max_faces)
    if model == "bicubic":
        reports = [r if r.status == KEPT else _kept(r, "bicubic was asked for") for r in reports]
        todo = []

    # each face: (output box, model colours, blend weight), composited below
    spans = []
    for k, plan in todo:
        top, rows = output_span(plan.top, plan.n, factor[0], out_h)
        left, cols = output_span(plan.left, plan.n, factor[1], out_w)
        spans.append((k, plan, top, rows, left, cols))
    passes = 2 if ensemble else 1
    total = passes * sum(len(rows) * len(cols) for *_, rows, _, cols in spans)
    # background pixels in face-pixel units (their measured relative cost), so the progress and the time
    # left shown follow the time, whichever model draws the background
    weight = 1.0 if background is None or model == "bicubic" else _relative_cost(background, model)
    drawn = 0 if background is None else round(out_h * out_w * weight)  # at most: flat squares stay bicubic
    if progress is not None:
        progress(0, total + drawn)
    layers = []
    if spans:
        device = inference.resolve_device(device)
        with _on(model, device):
            layers = _render_faces(model, rgb, canvas, spans, reports, factor, device, chunk_size, progress,
                                   total + drawn, ensemble, judge, detail)
    if background is not None:  # after the faces, which the sharpness rule judges against bicubic
        device = inference.resolve_device(device)
        lr = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).unsqueeze(0).to(device)
        step = None if progress is None else (lambda d, _n: progress(total + min(drawn, round(d * weight)),
                                                                      total + drawn))
        where = None if background_flat is None else inference.detail_map(rgb, threshold=background_flat)
        with _on(background, device):
            canvas = inference.render_tiled(background, lr, (out_h, out_w), chunk_size=chunk_size, progress=step,
                                            where=where, fallback=torch.from_numpy(canvas)).numpy()
    _composite(canvas, layers)
    return inference.merge_image(canvas, alpha, mode), reports


_COSTS: dict[tuple, float] = {}


def _relative_cost(background, model) -> float:
    """Seconds per queried pixel of `background` over `model`'s, measured once per pair of models
    (2048 queries each on the CPU, a few tens of milliseconds), for the progress estimate."""
    import time
    key = (id(background), id(model), background.config, model.config)
    if key not in _COSTS:
        from .coords import make_coord
        seconds = []
        for net in (background, model):
            with _on(net, torch.device("cpu")), torch.no_grad():
                features = net.encode(torch.full((1, 3, 16, 16), 0.5))
                coord = make_coord((32, 64)).view(1, -1, 2)
                cell = torch.full_like(coord, 2 / 64)
                net.query(features, coord, cell)  # warm-up
                started = time.perf_counter()
                net.query(features, coord, cell)
                seconds.append(time.perf_counter() - started)
        _COSTS[key] = min(4.0, max(0.02, seconds[0] / max(seconds[1], 1e-9)))
    return _COSTS[key]


class _on:
    """Run a model on `device` in eval mode, then give it back on its own device in its own mode."""

    def __init__(self, model, device):
        self.model, self.device = model, device

    def __enter__(self):
        parameter = next(self.model.parameters(), None)
        self.home = self.device if parameter is None else parameter.device
        self.training = self.model.training
        return self.model.to(self.device).eval()

    def __exit__(self, *exc):
        self.model.to(self.home).train(self.training)


def _render_faces(model, rgb, canvas, spans, reports, factor, device, chunk_size, progress, total,
                  ensemble: bool = False, judge=None, detail: float = 1.0) -> list:
    """Render every planned face; returns the (box, face, weight) layers that pass the sharpness rule.

    `reports` is updated in place for faces that stay bicubic after all.
    """
    done = 0
    layers = []
    for k, plan, top, rows, left, cols in spans:
        if len(rows) == 0 or len(cols) == 0:
            reports[k] = _kept(reports[k], "outside the photo: its crop has no pixel in the output")
            continue
        step = None if progress is None else (lambda d, base=done: progress(base + d, total))
        face = render_face(model, cut_crop(rgb, plan.top, plan.left, plan.n), rows, cols, factor, device,
                           chunk_size, step, ensemble=ensemble)
        done += len(rows) * len(cols) * (2 if ensemble else 1)
        weight = detail * np.outer(blend_weight(rows, plan.n), blend_weight(cols, plan.n))  # (R, C)
        box = (top, left, top + len(rows), left + len(cols))
        # the rule: never softer than bicubic, judged on the face's own box in the output
        background = canvas[box[0]:box[2], box[1]:box[3]]
        blended = background + weight[..., None] * (face - background)
        fy0, fx0, fy1, fx1 = _face_box_in(reports[k].box, factor, box)
        sharp = laplacian_variance(blended[fy0:fy1, fx0:fx1])
        soft = laplacian_variance(background[fy0:fy1, fx0:fx1])
        if not (judge(plan.face, sharp, soft) if judge is not None else sharp >= soft):
            reports[k] = _kept(reports[k], f"softer than bicubic: Laplacian variance {sharp:.1f} < {soft:.1f}")
            continue
        layers.append((box, face, weight))
    return layers


def _kept(report: FaceReport, reason: str) -> FaceReport:
    return FaceReport(report.index, report.score, report.box, report.side, report.output_side, KEPT, reason)


def _face_box_in(box: tuple[float, float, float, float], factor: tuple[float, float],
                 region: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """A YuNet (x, y, w, h) input box as (y0, x0, y1, x1) output pixels relative to `region`, clipped to it."""
    x, y, w, h = box
    top, left, bottom, right = region
    y0 = int(np.clip(math.floor(y * factor[0]) - top, 0, bottom - top - 1))
    x0 = int(np.clip(math.floor(x * factor[1]) - left, 0, right - left - 1))
    y1 = int(np.clip(math.ceil((y + h) * factor[0]) - top, y0 + 1, bottom - top))
    x1 = int(np.clip(math.ceil((x + w) * factor[1]) - left, x0 + 1, right - left))
    return y0, x0, y1, x1


def _composite(canvas: np.ndarray, layers: list) -> None:
    """Blend faces into the (H', W', 3) canvas in place; overlapping faces are averaged by their weights.

    out = bicubic + min(sum w, 1) * (sum w f / sum w - bicubic): one face alone gives the plain
    blend bicubic + w (f - bicubic); where faces overlap the result does not depend on their order.
    """
    if not layers:
        return
    top = min(b[0] for b, *_ in layers)
    left = min(b[1] for b, *_ in layers)
    bottom = max(b[2] for b, *_ in layers)
    right = max(b[3] for b, *_ in layers)
    total = np.zeros((bottom - top, right - left, 3), np.float32)   # sum of w * face
    weight = np.zeros((bottom - top, right - left, 1), np.float32)  # sum of w
    for (y0, x0, y1, x1), face, w in layers:
        total[y0 - top:y1 - top, x0 - left:x1 - left] += w[..., None] * face
        weight[y0 - top:y1 - top, x0 - left:x1 - left] += w[..., None]
    region = canvas[top:bottom, left:right]
    mean = total / np.maximum(weight, 1e-12)
    region += np.minimum(weight, 1.0) * (mean - region) * (weight > 0)
