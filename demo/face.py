"""Face mode: one aligned face super-resolved to a scale or a size, next to bicubic."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import arasfsr
from arasfsr import damage

from . import limits, models, outputs, sizes
from .images import MAX_FACE_SIDE, input_notes, load_image
from .jobs import Progress, Tracker


@dataclass
class UpscaleResult:
    result_path: Path       # the model's output, full resolution PNG (the download)
    bicubic_path: Path      # the same input upscaled by bicubic, same size
    width: int
    height: int
    seconds: float          # model time
    bicubic_seconds: float
    info: str               # Markdown summary
    notes: list[str] = field(default_factory=list)


def preview_model(path, scale=4.0, model_label: str = models.FACE_DEFAULT, resize_by: str = "scale", width=None,
                  height=None) -> str | None:
    """The model that draws a preview of this request before the chosen one runs (the distilled
    student, for a large output that ARASFSR draws; `models.preview_choice`), or None."""
    image, info = load_image(path, MAX_FACE_SIDE)
    out_h, out_w = sizes.plan_size(info.shape, resize_by, scale, width, height)
    chosen, _ = models.resolve(model_label, image, out_pixels=out_h * out_w)
    return models.preview_choice(chosen, out_h * out_w)


def upscale_face(path, scale=4.0, model_label: str = models.FACE_DEFAULT, resize_by: str = "scale", width=None,
                 height=None, sample: bool = False, seed=0, progress: Progress | Tracker | None = None
                 ) -> UpscaleResult:
    """Super-resolve one face image to a scale or a size; also makes the bicubic comparison.

    Raises InputError for anything the demo refuses (see `demo.limits`), Stopped on Stop.
    """
    tracker = progress if isinstance(progress, Tracker) else Tracker(progress)
    image, info = load_image(path, MAX_FACE_SIDE)
    out_h, out_w = sizes.plan_size(info.shape, resize_by, scale, width, height)
    scale = sizes.check_scale(scale) if resize_by == "scale" else None
    found = damage.assess(image)  # the image read once: its JPEG tables came with it
    detail = models.detail_for(model_label, found)
    model_label, choice = models.resolve(model_label, image, out_pixels=out_h * out_w, found=found)
    model = models.get_model(model_label)
    seed = sizes.check_seed(seed) if sample else 0
    notes = ([choice] if choice else []) + input_notes(info)
    if sample and (model == "bicubic" or not model.config.use_lfe):
        notes.append(f"{model_label} has no LFE latent, so 'sample' changes nothing")

    started = time.perf_counter()
    bicubic = arasfsr.upscale("bicubic", image, size=(out_h, out_w))
    bicubic_seconds = time.perf_counter() - started
    if model == "bicubic":
        result, seconds = bicubic, bicubic_seconds
    else:
        started = time.perf_counter()
        result = arasfsr.upscale(model, image, size=(out_h, out_w), sample=sample, seed=seed, detail=detail,
                                 progress=tracker.phase(0.0, 0.95, f"{model_label}: querying pixels"))
        seconds = time.perf_counter() - started
    tracker(0.97, "saving PNG")

    folder = outputs.new_output_dir()
    tag = f"x{scale:g}" if resize_by == "scale" else "size"
    stem = outputs.file_stem(path)
    result_path = outputs.save_png(result, folder / f"{stem}_{models.SHORT[model_label]}_{tag}_{out_w}x{out_h}.png")
    bicubic_path = (result_path if model == "bicubic"
                    else outputs.save_png(bicubic, folder / f"{stem}_bicubic_{out_w}x{out_h}.png"))

    how = f"x{scale:.2f}" if resize_by == "scale" else "to a size"
    latent = ""
    if model != "bicubic" and model.config.use_lfe:
        latent = f" LFE latent: sampled, seed {seed}." if sample else " LFE latent: deterministic (its mean)."
    text = (f"**{model_label}** {how}: {info.size_text} -> **{out_w} x {out_h} px** in **{seconds:.2f} s** "
            f"on the {limits.device_name()} (bicubic {bicubic_seconds:.3f} s).{latent}")
    if notes:
        text += "  \nNotes: " + "; ".join(notes) + "."
    return UpscaleResult(result_path, bicubic_path, out_w, out_h, seconds, bicubic_seconds, text, notes)
