"""Whole-photo tab: checks the request, calls `arasfsr.restore.restore`, saves and describes the result.

The restoration itself (detection, native crops rendered on the output grid, blending, the rule
that no face comes out softer than bicubic) lives in the package; this module only does the UI part:
limits, progress, files, the overview with numbered boxes, and the Markdown report.
"""
from __future__ import annotations

import time
from dataclasses import dataclass

from PIL import Image, ImageDraw

from arasfsr import damage, inference, restore

from . import limits, models, outputs, sizes
from .errors import InputError, quote
from .images import MAX_PHOTO_SIDE, display_rgb, input_notes, load_image
from .jobs import Progress, Tracker

# Time of the work around the faces (bicubic upscale and detection before them, two PNGs after,
# about half each) per output pixel, relative to one model query per face pixel: 0.033 at x2 and
# 0.038 at x4 (the 512 px astronaut, small model, one CPU thread). Used only to split the progress bar.
BACKGROUND_COST = 0.035


@dataclass
class PhotoResult:
    result_path: object
    bicubic_path: object
    width: int
    height: int
    seconds: float
    overview: Image.Image     # the input with numbered face boxes (green: enhanced, orange: kept bicubic)
    report: str               # Markdown
    faces: list[restore.FaceReport]


def _overview(image: Image.Image, reports: list[restore.FaceReport], max_side: int = 640) -> Image.Image:
    view = display_rgb(image)
    factor = min(1.0, max_side / max(view.size))
    if factor < 1:
        view = view.resize((round(view.width * factor), round(view.height * factor)), Image.LANCZOS)
    draw = ImageDraw.Draw(view)
    for report in reports:
        x, y, w, h = (v * factor for v in report.box)
        colour = (40, 200, 60) if report.status == restore.ENHANCED else (255, 150, 0)
        draw.rectangle((x, y, x + w, y + h), outline=colour, width=2)
        draw.rectangle((x, y - 12, x + 8 + 6 * len(str(report.index)), y), fill=colour)
        draw.text((x + 3, y - 12), str(report.index), fill=(0, 0, 0))
    return view


def _report(reports: list[restore.FaceReport], model_label: str, info, out_w: int, out_h: int, scale: float,
            seconds: float, drawn_by: str = "bicubic interpolation") -> str:
    done = sum(r.status == restore.ENHANCED for r in reports)
    lines = [f"**{len(reports)} face{'s' if len(reports) != 1 else ''} found, {done} super-resolved** with "
             f"{model_label}; photo {info.size_text} -> **{out_w} x {out_h} px** (x{scale:.2f}) in "
             f"**{seconds:.2f} s** on the {limits.device_name()}. The rest of the photo was drawn by {drawn_by}."]
    if not reports:
        reduced = max(1.0, max(info.width, info.height) / restore.DETECT_MAX_SIDE)
        lines.append(f"No face was found (YuNet, confidence {restore.DETECT_SCORE}): the whole result is the "
                     f"background. In a photo this size, faces under about {max(10, round(12 * reduced))} px are too "
                     f"small to detect.")
    else:
        lines += ["", "| # | Confidence | Face size | Result |", "|---|---|---|---|"]
        lines += [f"| {r.index} | {r.score:.2f} | {r.side:.0f} px | {r.status}"
                  f"{': ' + r.reason if r.reason else f' ({r.side:.0f} -> {r.output_side} px)'} |" for r in reports]
    notes = input_notes(info)
    if notes:
        lines.append("  \nNotes: " + "; ".join(notes) + ".")
    return "\n".join(lines)


def enhance_photo(path, scale=2.0, model_label: str | None = None,
                  progress: Progress | Tracker | None = None) -> PhotoResult:
    """Upscale a whole photo by `scale`, super-resolving every detected face with the model."""
    tracker = progress if isinstance(progress, Tracker) else Tracker(progress)
    model_label = models.photo_default() if model_label is None else model_label
    image, info = load_image(path, MAX_PHOTO_SIDE)
    out_h, out_w = sizes.plan_size(info.shape, "scale", scale, photo=True)
    scale = sizes.check_scale(scale)
    if model_label not in models.photo_choices():
        raise InputError(f"Whole-photo mode needs a model ({', '.join(models.photo_choices())}); "
                         f"got {quote(model_label)}.")
    found = damage.assess(image)  # the photo read once: its JPEG tables came with it
    detail = models.detail_for(model_label, found)
    model_label, choice = models.resolve(model_label, image, "restore", found=found)
    model = models.get_model(model_label)
    background_model, drawn_by = models.background(found=found)

    # progress: the background work (bicubic, detection, PNGs) and the faces, each by its expected cost
    background = BACKGROUND_COST * out_h * out_w
    tracker(0.0, "finding faces")
    share = {}

    def faces_progress(done: int, total: int) -> None:
        if "start" not in share:  # restore has upscaled the background and found the faces
            work = background + total
            share["start"], share["span"] = 0.5 * background / work, total / work
        tracker(share["start"] + share["span"] * done / max(total, 1),
                f"{model_label}: super-resolving faces" + ("" if background_model == "bicubic" else
                                                          ", then the background"))

    started = time.perf_counter()
    bicubic = restore.bicubic_background(image, (out_h, out_w))  # the baseline, and restore's canvas
    result, reports = restore.restore(model, image, size=(out_h, out_w), progress=faces_progress,
                                      background=background_model, bicubic=bicubic, detail=detail)
    seconds = time.perf_counter() - started
    tracker(share.get("start", 0.5) + share.get("span", 0.0), "saving PNG")

    folder = outputs.new_output_dir()
    stem = outputs.file_stem(path)
    name = f"{stem}_{models.SHORT[model_label]}_faces_x{scale:g}_{out_w}x{out_h}.png"
    result_path = outputs.save_png(result, folder / name)
    bicubic_path = outputs.save_png(inference.merge_image(*bicubic), folder / f"{stem}_bicubic_{out_w}x{out_h}.png")
    report = _report(reports, model_label, info, out_w, out_h, scale, seconds, drawn_by)
    if choice:
        report = f"{choice}.  \n{report}"
    return PhotoResult(result_path, bicubic_path, out_w, out_h, seconds, _overview(image, reports), report, reports)
