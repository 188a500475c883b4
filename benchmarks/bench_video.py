"""`arasfsr.video` on a test clip with a known original: face gain over bicubic, and flicker.

    python benchmarks/bench_video.py --threads 1
    python benchmarks/bench_video.py --threads 1 --crf 23 32 --models arasfsr arasfsr-real --markdown results/video.md

The clip (made here, from the project's own data, nothing reserved): two faces of the
out-of-distribution TEST split (`python -m arasfsr.data.ood`: faces from other sources than the
training studio), 128 px, pasted under a feathered ellipse onto a 512 x 384 photograph of the natural
set's TEST split (`python -m arasfsr.data.natural`), gliding across it in opposite directions, 4 px a
frame with a vertical bob: the HR original, 48 frames at 24 fps. It is reduced by PIL bicubic /4 and
H.264-encoded at each --crf: the LR clip `python -m arasfsr video` gets.

Measured per configuration, against the HR frames, on luma (Y, as `arasfsr.metrics`):
  face dB     PSNR over the two faces' inner boxes (where each face is in that frame), all frames
              pooled, minus bicubic's (`video` with "bicubic" as the model: the same
              decoding, PIL bicubic upscale and output encoding, no face super-resolved)
  frame dB    the same over whole frames
  flicker     the error's change from frame to frame on the faces: RMS over the face boxes of
              (out_t - hr_t) - (out_{t-1} - hr_{t-1}), each box taken where the face is in its frame
              (so the face's own motion cancels), averaged over frames; reported as a ratio to
              bicubic's (the target: at most 1)
  switches    frames where a face's enhanced/kept status changes
Configurations: the default (`FaceTracker`), "no tracking" (YuNet per frame, as `restore` does on a
photo: alpha 1, beta 0, no coasting), each model of --models; the background as `video` chooses it
(--background).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from arasfsr import video  # noqa: E402
from arasfsr.metrics import rgb_to_y  # noqa: E402

FACES = ("testimage_face0.png", "00017_gray_face0.png")
BACKDROP = "Bridge_by_Sander_Klootwijk_0_0.png"
SIZE = (384, 512)          # HR frame (height, width)
FACE = 128                 # HR face side
FRAMES, FPS, STEP = 48, 24, 4
FACTOR = 4
INNER = (0.2, 0.8)         # the face box measured: this span of the pasted square, per axis


CLIP = "glide"             # or "changing": set by --clip


def positions(t: int) -> list[tuple[int, int]]:
    """(top, left) of each face in frame t: one left to right, one right to left, both bobbing ("glide");
    one face left to right ("changing")."""
    if CLIP == "changing":
        return [(120, 40 + STEP * t)]
    bob = round(10 * np.sin(2 * np.pi * t / 24))
    return [(48 + bob, 24 + STEP * t), (208 - bob, SIZE[1] - FACE - 24 - STEP * t)]


def hr_frames(ood: Path, natural: Path) -> list[np.ndarray]:
    backdrop = Image.open(natural / BACKDROP).convert("RGB")
    backdrop = backdrop.resize((SIZE[1], round(backdrop.height * SIZE[1] / backdrop.width)), Image.LANCZOS)
    backdrop = backdrop.crop((0, 0, SIZE[1], SIZE[0])) if backdrop.height >= SIZE[0] else \
        backdrop.resize((SIZE[1], SIZE[0]), Image.LANCZOS)
    faces = [Image.open(ood / name).convert("RGB").resize((FACE, FACE), Image.LANCZOS) for name in FACES]
    mask = Image.new("L", (FACE, FACE), 0)
    ImageDraw.Draw(mask).ellipse((8, 4, FACE - 8, FACE - 4), fill=255)
    mask = mask.filter(ImageFilter.GaussianBlur(6))
    frames = []
    for t in range(FRAMES):
        frame = backdrop.copy()
        if CLIP == "changing":  # the face's appearance changes all the time: a cross-fade from one face to the other
            mix = 0.5 - 0.5 * np.cos(np.pi * t / (FRAMES - 1))
            shown = [Image.blend(faces[0], faces[1], float(mix))]
        else:
            shown = faces
        for face, (top, left) in zip(shown, positions(t)):
            frame.paste(face, (left, top), mask)
        frames.append(np.asarray(frame))
    return frames


def boxes(t: int) -> list[tuple[slice, slice]]:
    a, b = (round(FACE * v) for v in INNER)
    return [(slice(top + a, top + b), slice(left + a, left + b)) for top, left in positions(t)]


def luma(rgb8: np.ndarray) -> np.ndarray:
    return rgb_to_y(rgb8).astype(np.float64)   # uint8 Y, 0-255, as the evaluation protocol


def psnr(sq_error: float) -> float:
    return 10 * np.log10(255.0 ** 2 / max(sq_error, 1e-12))


def measure(out_frames, hr) -> dict:
    """Face and frame MSE (pooled), and the mean face flicker."""
    face_se = face_n = frame_se = frame_n = 0.0
    flicker, previous = [], None
    for t, (out, orig) in enumerate(zip(out_frames, hr)):
        error = luma(out) - luma(orig)
        frame_se += float((error ** 2).sum())
        frame_n += error.size
        patches = [error[r, c] for r, c in boxes(t)]
        for patch in patches:
            face_se += float((patch ** 2).sum())
            face_n += patch.size
        if previous is not None:
            flicker.append(np.mean([np.sqrt(np.mean((p - q) ** 2)) for p, q in zip(patches, previous)]))
        previous = patches
    return {"face": face_se / face_n, "frame": frame_se / frame_n, "flicker": float(np.mean(flicker))}


def run(model_name: str, lr_path: Path, out_path: Path, tracked: bool, background: str, args) -> tuple[dict, object]:
    from arasfsr.weights import load_model
    model = "bicubic" if model_name == "bicubic" else load_model(model_name)
    back = None
    if background == "natural":
        back = load_model("natural")
    tracker = video.FaceTracker() if tracked else video.FaceTracker(alpha=1.0, beta=0.0, max_misses=0)
    started = time.perf_counter()
    report = video.restore_video(model, lr_path, out_path, size=SIZE, background=back, tracker=tracker,
                                 overwrite=True, ensemble=not args.no_ensemble, crf=args.out_crf,
                                 temporal=args.temporal if tracked else 1.0, temporal_colour=args.colour,
                                 temporal_base=args.base if tracked else 1.0)
    report.seconds = time.perf_counter() - started
    return report, list(video.frames_of(out_path))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ood", default=str(REPO / "data" / "ood" / "test"))
    parser.add_argument("--natural", default=str(REPO / "data" / "natural" / "test"))
    parser.add_argument("--work", default=str(REPO / "runs" / "bench_video"), help="folder for the clips made here")
    parser.add_argument("--clip", choices=("glide", "changing"), default="glide",
                        help="glide: two faces gliding across; changing: one face gliding while it turns into "
                             "another (a cross-fade: appearance that changes every frame, as expressions, turns "
                             "and light do)")
    parser.add_argument("--crf", type=int, nargs="+", default=[23], help="H.264 quality of the LR clip")
    parser.add_argument("--models", nargs="+", default=["arasfsr"], help="face weights to compare")
    parser.add_argument("--background", choices=("bicubic", "natural"), default="bicubic")
    parser.add_argument("--no-tracking-too", action="store_true", help="also run without tracking")
    parser.add_argument("--no-ensemble", action="store_true")
    parser.add_argument("--colour", action="store_true",
                        help="TemporalFilter on the faces' colours (default: on the model's detail only)")
    parser.add_argument("--out-crf", type=int, default=video.DEFAULT_CRF, help="H.264 quality of the output")
    parser.add_argument("--temporal", type=float, default=video.TEMPORAL_WEIGHT,
                        help="TemporalFilter weight with tracking (1: off; without tracking always off)")
    parser.add_argument("--base", type=float, default=video.TEMPORAL_BASE,
                        help="TemporalFilter: this frame's share of the bicubic base under the detail (1: its own)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", help="also write the table here")
    args = parser.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    global CLIP
    CLIP = args.clip
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    hr = hr_frames(Path(args.ood), Path(args.natural))
    video.write_frames(work / "hr.mp4", hr, FPS, crf=0)  # to look at (lossless x264)
    lr = [np.asarray(Image.fromarray(f).resize((SIZE[1] // FACTOR, SIZE[0] // FACTOR), Image.BICUBIC)) for f in hr]
    rows = []
    for crf in args.crf:
        lr_path = video.write_frames(work / f"lr_crf{crf}.mp4", lr, FPS, crf=crf)
        # the baseline goes through the same pipeline (and the same output encoding): faces left bicubic
        base = measure(run("bicubic", lr_path, work / f"out_bicubic_crf{crf}.mp4", False, "bicubic", args)[1], hr)
        configs = [(m, True) for m in args.models]
        if args.no_tracking_too:
            configs += [(m, False) for m in args.models]
        for name, tracked in configs:
            out_path = work / f"out_{name}_{'tracked' if tracked else 'per-frame'}_crf{crf}.mp4"
            report, frames = run(name, lr_path, out_path, tracked, args.background, args)
            got = measure(frames, hr)
            row = {"crf": crf, "model": name, "tracking": "yes" if tracked else "no",
                   "face": psnr(got["face"]) - psnr(base["face"]), "frame": psnr(got["frame"]) - psnr(base["frame"]),
                   "flicker": got["flicker"], "flicker_bicubic": base["flicker"],
                   "ratio": got["flicker"] / base["flicker"], "fps": report.frames / report.seconds,
                   "kept": report.faces_kept, "enhanced": report.faces_enhanced, "tracks": report.tracks,
                   "face_bicubic": psnr(base["face"])}
            rows.append(row)
            print(f"crf {crf} {name:14s} tracking {row['tracking']:3s}: faces {row['face']:+.2f} dB "
                  f"(bicubic {row['face_bicubic']:.2f}), frames {row['frame']:+.2f} dB, flicker {row['flicker']:.2f} "
                  f"vs bicubic {row['flicker_bicubic']:.2f} (x{row['ratio']:.2f}), {row['enhanced']} face renders, "
                  f"{row['kept']} kept, {row['tracks']} tracks, {row['fps']:.2f} frames/s", flush=True)
    lines = [f"Clip {CLIP}: {FRAMES} frames, {SIZE[1]}x{SIZE[0]} HR, 128 px OOD test faces over a natural test "
             f"photo, /{FACTOR} by PIL bicubic, H.264; temporal filter {args.temporal} "
             f"({'colours' if args.colour else f'detail; base {args.base}'}); background {args.background}; "
             f"{'one pass' if args.no_ensemble else 'flip ensemble'}; {args.threads} thread(s).", "",
             "| LR crf | face weights | tracking | faces vs bicubic | frames vs bicubic | flicker (bicubic) | "
             "flicker ratio | faces kept | frames/s |", "|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['crf']} | {r['model']} | {r['tracking']} | {r['face']:+.2f} dB | {r['frame']:+.2f} dB | "
              f"{r['flicker']:.2f} ({r['flicker_bicubic']:.2f}) | {r['ratio']:.2f} | {r['kept']} / "
              f"{r['kept'] + r['enhanced']} | {r['fps']:.2f} |" for r in rows]
    print("\n".join(lines))
    if args.markdown:
        Path(args.markdown).write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
