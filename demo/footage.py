"""Video tab: checks a short clip against the page's limits, runs `arasfsr.video.restore_video`, and
returns the result beside the same clip enlarged by bicubic, for before/after playback. The rest of
each frame stays bicubic here (BACKGROUND_NOTE: the natural-photo model is 4x slower).

The work itself (probing, tracking faces, every frame through `restore`, the audio kept) is in the
package; this module holds the limits, the progress and Stop, and the report.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from . import limits, models, outputs
from .errors import InputError, quote, sentence
from .jobs import Progress, Tracker

MAX_SECONDS = 10.0            # clip length the page takes
MAX_FRAMES = 300              # and frames (10 s at 30 fps)
MAX_INPUT_SIDE = 640          # px, the clip's longer side
MAX_OUTPUT_PIXELS = 1280 * 720  # per frame
MAX_SCALE = 4.0
# Measured (benchmarks/bench_video.py, 2-core AMD EPYC, one thread): a 128 x 96 clip with two faces to
# 512 x 384, faces by ARASFSR (flip ensemble), bicubic background: 1.15 frames/s.
# The natural-photo model draws the background in `python -m arasfsr video` (+1.90 dB on the whole frames of
# that clip instead of +0.60) but at a quarter of the speed (0.30 frames/s): too slow for a page.
BACKGROUND_NOTE = ("the natural-photo model, which `python -m arasfsr video` uses for the rest of the frame, "
                   "takes about 4x as long")
FRAMES_PER_SECOND_NOTE = "about 1 frame a second for a 512 x 384 output with two faces on this CPU"


@dataclass
class VideoResult:
    result_path: Path
    bicubic_path: Path
    report: str


def limits_text() -> str:
    return (f"Clips up to {MAX_SECONDS:g} s and {MAX_FRAMES} frames, at most {MAX_INPUT_SIDE} px on the longer "
            f"side, files up to {limits.MAX_UPLOAD_MB} MB; scale 1 to {MAX_SCALE:g}, output frames up to "
            f"{limits.megapixels(MAX_OUTPUT_PIXELS)} MP (1280 x 720); {FRAMES_PER_SECOND_NOTE}.")


def _video_module():
    try:
        from arasfsr import video
    except ImportError:
        raise InputError("Video needs PyAV on this server (pip install 'arasfsr[video]').") from None
    return video


def check_clip(path, scale):
    """(probe info, output (height, width)) or an InputError naming what is over the page's limits."""
    video = _video_module()
    if not path:
        raise InputError("Upload a video first.")
    path = Path(path)
    if not isinstance(scale, (int, float)) or not 1 <= float(scale) <= MAX_SCALE:
        raise InputError(f"The scale must be a number from 1 to {MAX_SCALE:g}, got {quote(scale)}.")
    if path.is_file() and path.stat().st_size > limits.MAX_UPLOAD_BYTES:
        raise InputError(f"The clip is over {limits.MAX_UPLOAD_MB} MB.")
    try:
        info = video.probe(path, max_seconds=MAX_SECONDS)
    except (ValueError, OSError) as error:
        text = str(error).split(": ", 1)[-1]
        raise InputError(sentence(ValueError(f"{quote(path.name)}: {text}"))) from None
    if info.frames > MAX_FRAMES:
        raise InputError(f"The clip has {info.frames} frames; this page takes up to {MAX_FRAMES}.")
    if max(info.width, info.height) > MAX_INPUT_SIDE:
        raise InputError(f"The clip is {info.width} x {info.height} px; this page takes up to {MAX_INPUT_SIDE} px "
                         f"on the longer side (the command line takes more: python -m arasfsr video).")
    try:
        out_h, out_w = video.output_size(info, scale=float(scale))
    except ValueError as error:
        raise InputError(sentence(error)) from None
    if out_h * out_w > MAX_OUTPUT_PIXELS:
        raise InputError(f"x{float(scale):g} makes {out_w} x {out_h} px frames; this page makes frames up to "
                         f"{limits.megapixels(MAX_OUTPUT_PIXELS)} MP (1280 x 720). Choose a smaller scale.")
    return info, (out_h, out_w)


def enhance_video(path, scale=2.0, model_label: str | None = None,
                  progress: Progress | Tracker | None = None) -> VideoResult:
    """Upscale a short clip: faces tracked and super-resolved, the rest bicubic (see BACKGROUND_NOTE)."""
    tracker = progress if isinstance(progress, Tracker) else Tracker(progress)
    video = _video_module()
    info, (out_h, out_w) = check_clip(path, scale)
    model_label = models.photo_default() if model_label is None else model_label
    if model_label not in models.photo_choices():
        raise InputError(f"Video needs a model for the faces ({', '.join(models.photo_choices())}); "
                         f"got {quote(model_label)}.")
    from PIL import Image

    from arasfsr import damage
    first = Image.fromarray(next(video.frames_of(path, limit=1)))
    found = damage.assess(first)   # one choice for the whole clip: weights switching mid-clip would flicker
    detail = models.detail_for(model_label, found)
    model_label, choice = models.resolve(model_label, first, "restore", found=found)
    model = models.get_model(model_label)
    folder = outputs.new_output_dir()
    stem = outputs.file_stem(path)
    result_path = folder / f"{stem}_{models.SHORT[model_label]}_x{float(scale):g}_{out_w}x{out_h}.mp4"
    bicubic_path = folder / f"{stem}_bicubic_{out_w}x{out_h}.mp4"
    tracker(0.0, "bicubic version")
    nobody = video.FaceTracker(find=lambda rgb: [])   # the baseline needs no face detection
    video.restore_video("bicubic", path, bicubic_path, size=(out_h, out_w), max_faces=0, info=info, tracker=nobody,
                        progress=lambda done, total: tracker(0.05 * done / total, "bicubic version"))
    started = time.perf_counter()
    def step(done: int, total: int) -> None:
        tracker(0.05 + 0.95 * done / total, f"{model_label}: frame {done} of {total}")
    report = video.restore_video(model, path, result_path, size=(out_h, out_w), background=None, info=info,
                                 detail=detail, progress=step)
    seconds = time.perf_counter() - started
    lines = [f"**{info.frames} frames** ({info.seconds:.1f} s, {float(info.fps):.3g} fps) "
             f"{info.width} x {info.height} -> **{out_w} x {out_h} px** in **{seconds:.1f} s** "
             f"({info.frames / max(seconds, 1e-9):.2f} frames/s on the {limits.device_name()}).",
             f"Faces by {model_label}, tracked from frame to frame: {report.tracks} face track(s), super-resolved "
             f"in {report.frames_with_faces} of {info.frames} frames"
             + (f"; {report.faces_kept} face(s) left to the background ("
                + "; ".join(f"{why}: {n}" for why, n in report.reasons.items()) + ")" if report.faces_kept else "")
             + f". The rest of each frame: bicubic ({BACKGROUND_NOTE}). Audio: {report.audio}."]
    if choice:
        lines.insert(0, f"{choice}.")
    return VideoResult(result_path, bicubic_path, "  \n".join(lines))
