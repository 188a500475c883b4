"""What this server accepts: file sizes, image sides, scales and output megapixels, per mode.

Every number a refusal or the page quotes comes from here; the checks themselves are in
`demo.images` (files) and `demo.sizes` (scales and sizes, through `arasfsr.inference.output_size`).
"""
from __future__ import annotations

from arasfsr import inference, restore

MAX_UPLOAD_MB = 10                   # per file, also enforced by the server before upload ends
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
MAX_FACE_SIDE = 1024                 # px, face mode and the robustness view
MAX_PHOTO_SIDE = 4096                # px, whole-photo mode
MIN_SIDE = inference.MIN_INPUT_SIDE  # 8 px
MIN_SCALE, MAX_SCALE = 1.0, inference.MAX_SCALE  # the package's one range (the output megapixels bound the work)
# The render-fast student (arasfsr-fast, distilled from ARASFSR; `benchmarks/bench_fast.py`): above
# FAST_ABOVE_PIXELS, Auto lets it draw clean faces (the full model is one click away); above
# PREVIEW_ABOVE_PIXELS, a face that ARASFSR draws gets the student's result first, as a preview.
FAST_ABOVE_PIXELS = 1024 * 1024      # ARASFSR: 13.2 s for 128 -> 1024 on one AMD EPYC core, the 0.9 student 2.8 s
FAST_SPEEDUP = 4.7                   # that ratio (2026-12-07, quiet machine; results/fast.md), as the page states it
PREVIEW_ABOVE_PIXELS = 512 * 512     # ARASFSR about 3 s there; below it the preview would only add time
MAX_OUTPUT_MP_CPU = 4.0              # face mode, megapixels: about a minute for the small model on 2 cores
GPU_FACTOR = 4                       # face mode on a CUDA host: 4x larger outputs
# Whole-photo mode: the background is bicubic and only faces go through the model, so any accepted
# photo may at least keep its size: 4096 x 4096 px (16.8 MP, about 1 GB of working memory).
MAX_PHOTO_OUTPUT_PIXELS = MAX_PHOTO_SIDE * MAX_PHOTO_SIDE
MAX_PHOTO_INPUT_PIXELS = min(MAX_PHOTO_SIDE * MAX_PHOTO_SIDE, restore.MAX_PHOTO_PIXELS)


def on_gpu() -> bool:
    return inference.resolve_device("auto").type == "cuda"


def device_name() -> str:
    return "GPU" if on_gpu() else "CPU"


def max_output_pixels(photo: bool = False) -> int:
    """The output limit in pixels: face mode 4 MP on a CPU (x GPU_FACTOR on CUDA); whole photos 16.8 MP."""
    if photo:
        return min(MAX_PHOTO_OUTPUT_PIXELS, inference.MAX_OUTPUT_PIXELS)
    return min(int(MAX_OUTPUT_MP_CPU * 1e6) * (GPU_FACTOR if on_gpu() else 1), inference.MAX_OUTPUT_PIXELS)


def megapixels(pixels: int) -> str:
    """4000000 -> "4", 16777216 -> "16.8"."""
    return f"{pixels / 1e6:.1f}".removesuffix(".0")


def pixels_text(pixels: int) -> str:
    """262144 -> "512 x 512 px" (the fast thresholds are squares), else megapixels."""
    side = round(pixels ** 0.5)
    return f"{side} x {side} px" if side * side == pixels else f"{megapixels(pixels)} MP"


def limits_text() -> str:
    """The limits, as shown on the page and in the README."""
    where = "this GPU" if on_gpu() else "a CPU"
    return (f"Limits: files up to {MAX_UPLOAD_MB} MB; faces up to {MAX_FACE_SIDE}x{MAX_FACE_SIDE} px "
            f"(whole photos up to {MAX_PHOTO_SIDE} px a side) and at least {MIN_SIDE}x{MIN_SIDE} px; "
            f"scale {MIN_SCALE:g} to {MAX_SCALE:g}; output up to {megapixels(max_output_pixels())} megapixels "
            f"on {where} ({megapixels(max_output_pixels(photo=True))} MP for whole photos). "
            f"Formats: PNG, JPEG, GIF (first frame), BMP, TIFF, WebP, PPM, AVIF (where Pillow reads it).")
