"""Whole-photo mode (beyond the paper, which takes aligned faces only).

The photo is upscaled by bicubic interpolation; every face YuNet finds is aligned to the framing the
model was trained on (`arasfsr.faces`), super-resolved straight to its size in the output, warped
back and blended in under a feathered mask. Faces too small or too large, or over the face limit,
stay bicubic and are listed in the report with the reason.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from PIL import Image, ImageDraw

from arasfsr import faces, inference

from . import handlers
from .handlers import InputError, Progress

MIN_FACE_SIDE = 16             # px: side of the aligned crop in the photo (the model saw 16-64 px faces)
MAX_FACE_OUTPUT_SIDE = 1024    # px: side of one super-resolved crop, bounds the time per face
MAX_FACES = 12                 # the most confident ones; the rest are reported
DETECT_SCORE = 0.7             # YuNet confidence
DETECT_MAX_SIDE = 1280         # px: the photo is reduced to this for detection
MARGIN, FEATHER = 0.03, 0.12   # blend mask: 0 on the outer 3% of the crop, ramps to 1 over the next 12%
PHOTO_MODELS = tuple(label for label, key in handlers.MODELS.items() if key != "bicubic")

_detector = None
_detector_lock = threading.Lock()


def detect(rgb8: np.ndarray) -> list[faces.Face]:
    """All faces in an (H, W, 3) uint8 RGB photo, most confident first (one shared detector)."""
    global _detector
    with _detector_lock:
        if _detector is None:
            _detector = faces.make_detector(score_threshold=DETECT_SCORE, top_k=200)
        return faces.detect_faces(_detector, rgb8, max_side=DETECT_MAX_SIDE)


def feather_mask(size: int) -> np.ndarray:
    """(size, size) float32 blend weights: 1 in the middle, smoothly 0 towards the crop's border."""
    f = (np.arange(size) + 0.5) / size
    edge = np.minimum(f, 1 - f)                       # distance to the nearest border, in crop sides
    ramp = np.clip((edge - MARGIN) / FEATHER, 0, 1)
    ramp = ramp * ramp * (3 - 2 * ramp)               # smoothstep: no visible seam at either end
    return np.outer(ramp, ramp).astype(np.float32)


@dataclass
class FaceReport:
    index: int
    score: float
    side: float          # px, side of the aligned crop in the photo
    status: str          # "super-resolved", "too small", "too large", "over the face limit"
    detail: str
    box: tuple[float, float, float, float]


@dataclass
class PhotoResult:
    result_path: object
    bicubic_path: object
    width: int
    height: int
    seconds: float
    overview: Image.Image     # the input with numbered face boxes (green: done, orange: left bicubic)
    report: str               # Markdown
    faces: list[FaceReport]


def _out_to_crop(landmarks: np.ndarray, side: int, sx: float, sy: float) -> np.ndarray:
    """(2, 3) map from output-photo pixels to the side x side crop's pixels.

    Output pixel u sits at input pixel (u + 0.5) / s - 0.5 (per axis, s = output / input size);
    `crop_transform` then maps input pixels to the crop. Composing both gives one affine map.
    """
    crop = faces.crop_transform(landmarks, side)        # input px -> crop px: [A | t]
    down = np.array([[1 / sx, 0, 0.5 / sx - 0.5], [0, 1 / sy, 0.5 / sy - 0.5], [0, 0, 1]])
    return crop @ down


def blend_face(canvas: np.ndarray, face: np.ndarray, out_to_crop: np.ndarray) -> bool:
    """Warp a (N, N, 3) crop into the (H, W, 3) float canvas in place, under `feather_mask`.

    Only the crop's bounding box in the canvas is touched. Returns False when it lies outside.
    """
    n = face.shape[0]
    height, width = canvas.shape[:2]
    corners = np.array([[-0.5, -0.5, 1], [n - 0.5, -0.5, 1], [-0.5, n - 0.5, 1], [n - 0.5, n - 0.5, 1]]).T
    xs, ys = cv2.invertAffineTransform(out_to_crop) @ corners
    x0, y0 = max(0, math.floor(xs.min())), max(0, math.floor(ys.min()))
    x1, y1 = min(width, math.ceil(xs.max()) + 1), min(height, math.ceil(ys.max()) + 1)
    if x1 <= x0 or y1 <= y0:
        return False
    roi = out_to_crop.copy()
    roi[:, 2] += out_to_crop[:, :2] @ np.array([x0, y0])  # the ROI's pixel (0, 0) is the canvas's (x0, y0)
    flags = cv2.WARP_INVERSE_MAP  # the matrix maps destination (canvas) pixels to source (crop) pixels
    warped = cv2.warpAffine(face, roi, (x1 - x0, y1 - y0), flags=cv2.INTER_CUBIC | flags,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    weight = cv2.warpAffine(feather_mask(n), roi, (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR | flags,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
    region = canvas[y0:y1, x0:x1]
    region += weight * (np.clip(warped, 0, 1) - region)
    return True


def bicubic_background(image: Image.Image, rgb: np.ndarray, alpha: np.ndarray | None, mode: str,
                       size: tuple[int, int]) -> tuple[Image.Image, np.ndarray, np.ndarray | None]:
    """Pillow's bicubic upscale of the whole photo to size (width, height), as an image and as floats.

    Done here rather than by arasfsr.upscale, whose input limit (2048 x 2048) photos may exceed.
    8-bit RGB and grayscale are resized as they are (exactly face mode's bicubic), other modes per
    channel in float, like arasfsr.upscale. Returns (image, (H', W', 3) float32 canvas, alpha or None).
    """
    def resize(channel: np.ndarray) -> np.ndarray:
        return np.asarray(Image.fromarray(channel, "F").resize(size, Image.BICUBIC))

    if image.mode in ("RGB", "L"):
        background = image.resize(size, Image.BICUBIC)
        canvas, alpha, _ = inference.split_image(background)
        return background, canvas.copy(), alpha
    canvas = np.stack([resize(np.ascontiguousarray(rgb[..., c])) for c in range(3)], -1)
    alpha = None if alpha is None else resize(alpha)
    return inference.merge_image(canvas, alpha, mode), canvas, alpha


def _overview(image: Image.Image, reports: list[FaceReport], max_side: int = 640) -> Image.Image:
    view = handlers.display_rgb(image)
    factor = min(1.0, max_side / max(view.size))
    if factor < 1:
        view = view.resize((round(view.width * factor), round(view.height * factor)), Image.LANCZOS)
    draw = ImageDraw.Draw(view)
    for report in reports:
        x, y, w, h = (v * factor for v in report.box)
        colour = (40, 200, 60) if report.status == "super-resolved" else (255, 150, 0)
        draw.rectangle((x, y, x + w, y + h), outline=colour, width=2)
        draw.rectangle((x, y - 12, x + 8 + 6 * len(str(report.index)), y), fill=colour)
        draw.text((x + 3, y - 12), str(report.index), fill=(0, 0, 0))
    return view


def enhance_photo(path, scale=2.0, model_label: str = handlers.DEFAULT_MODEL,
                  progress: Progress | None = None) -> PhotoResult:
    """Upscale a whole photo by `scale`, super-resolving every detected face with the model."""
    image, info = handlers.load_image(path, handlers.MAX_PHOTO_SIDE)
    out_w, out_h = handlers.plan_size((info.width, info.height), "scale", scale,
                                      max_pixels=handlers.max_output_pixels(photo=True))
    scale = handlers.check_scale(scale)
    if model_label not in PHOTO_MODELS:
        raise InputError(f"Whole-photo mode needs a model ({', '.join(PHOTO_MODELS)}); "
                         f"got {handlers.quote(model_label)}.")
    model = handlers.get_model(model_label)
    started = time.perf_counter()

    rgb, alpha, mode = inference.split_image(image)                     # (H, W, 3) float32 in [0, 1]
    background, canvas, alpha = bicubic_background(image, rgb, alpha, mode, (out_w, out_h))
    if progress is not None:
        progress(0.02, "detecting faces")
    found = detect(np.rint(rgb * 255).astype(np.uint8))

    sx, sy = out_w / info.width, out_h / info.height
    reports, todo = [], []
    for index, face in enumerate(found, start=1):
        side = faces.source_side(face.landmarks)
        n_out = round(side * math.sqrt(sx * sy))
        report = FaceReport(index, face.score, side, "super-resolved", "", face.box)
        if side < MIN_FACE_SIDE:
            report.status = "too small"
            report.detail = f"{side:.0f} px across; the model needs faces of at least {MIN_FACE_SIDE} px"
        elif n_out > MAX_FACE_OUTPUT_SIDE:
            report.status = "too large"
            report.detail = (f"its output would be {n_out} px across, over the {MAX_FACE_OUTPUT_SIDE} px limit per "
                             f"face; it fits up to x{math.floor(MAX_FACE_OUTPUT_SIDE / side * 100) / 100:g}")
        elif len(todo) >= MAX_FACES:
            report.status = "over the face limit"
            report.detail = f"only the {MAX_FACES} most confident faces are super-resolved"
        else:
            todo.append((report, face, max(inference.MIN_INPUT_SIDE, math.floor(side)), n_out))
        reports.append(report)

    device = inference.resolve_device("auto")
    model.to(device).eval()
    work = sum(n_out ** 2 for *_, n_out in todo)
    done = 0
    for report, face, n_in, n_out in todo:
        crop = faces.align_face(rgb, face.landmarks, n_in)              # (n, n, 3) float32, native resolution
        lr = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).unsqueeze(0).to(device)
        step = handlers.fraction_progress(progress, 0.05 + 0.9 * done / work, 0.9 * n_out ** 2 / work,
                                           f"{model_label}: face {report.index} ({n_in} -> {n_out} px)")
        sr = inference.render(model, lr, (n_out, n_out), progress=step).numpy()
        done += n_out ** 2
        if not blend_face(canvas, sr, _out_to_crop(face.landmarks, n_out, sx, sy)):
            report.status, report.detail = "outside the photo", "its crop lies outside the image"
        else:
            report.detail = f"{n_in} -> {n_out} px"
    seconds = time.perf_counter() - started
    if progress is not None:
        progress(0.97, "saving PNG")

    folder = handlers.new_output_dir()
    stem = handlers.file_stem(path)
    name = f"{stem}_{handlers.MODELS[model_label]}_faces_x{scale:g}_{out_w}x{out_h}.png"
    result_path = handlers.save_png(inference.merge_image(canvas, alpha, mode), folder / name)
    bicubic_path = handlers.save_png(background, folder / f"{stem}_bicubic_{out_w}x{out_h}.png")

    done_count = sum(r.status == "super-resolved" for r in reports)
    lines = [f"**{len(found)} face{'s' if len(found) != 1 else ''} found, {done_count} super-resolved** with "
             f"{model_label}; photo {info.size_text} -> **{out_w} x {out_h} px** (x{scale:.2f}) in "
             f"**{seconds:.2f} s** on the {handlers.device_name()}. The rest of the photo is bicubic."]
    if not found:
        longest = max(info.width, info.height)
        reduced = max(1.0, longest / DETECT_MAX_SIDE)  # detection runs on a copy at most DETECT_MAX_SIDE px
        lines.append(f"No face was found (YuNet, confidence {DETECT_SCORE}): the result is the bicubic upscale. "
                     f"In a photo this size, faces under about {max(10, round(12 * reduced))} px are too small "
                     f"to detect.")
    else:
        lines += ["", "| # | Confidence | Face size | Result |", "|---|---|---|---|"]
        lines += [f"| {r.index} | {r.score:.2f} | {r.side:.0f} px | {r.status}: {r.detail} |" for r in reports]
    notes = handlers.input_notes(info)
    if notes:
        lines.append("  \nNotes: " + "; ".join(notes) + ".")
    return PhotoResult(result_path, bicubic_path, out_w, out_h, seconds, _overview(image, reports),
                       "\n".join(lines), reports)
