"""Does a face's own self-check tell when the model would leave it worse than bicubic?

    python benchmarks/bench_guard.py --threads 1                  # the OOD faces, x4, clean/q75/q40
    python benchmarks/bench_guard.py --split val --factor 2 --qualities 0,40

The self-check (`arasfsr.self_check`) needs no ground truth: it reduces the LR face by
half (PIL bicubic), lets the chosen weights bring it back to the LR size, and compares that with
bicubic against the LR face itself. This script measures whether that proxy predicts the true
gain. Faces: the out-of-distribution set (`python -m arasfsr.data.ood`: faces from other
sources than the training studio). Per face: HR = the aligned face, LR = PIL bicubic HR / factor,
saved as JPEG at each quality (0: lossless); the weights are the default per-input choice
(`arasfsr.damage.choose`, "restore" table) with its share of detail (`damage.choose_detail`;
`--detail D` for a fixed share). Prints, per quality, the faces, the mean true gain over
bicubic (Y-PSNR, dB), the worst, and the same after the guard (a face whose self-check loses by
more than GUARD_MARGIN keeps bicubic: gain 0), and how many faces the guard kept.

Measured for 0.6 (see MODEL_CARD.md): the check predicts the gain only loosely (correlation 0.35-0.64),
it cannot look at the smallest faces (16 px), which hold the worst losses, and where it fires it
removes more gain than harm, so it is not in `restore`.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from arasfsr import damage, inference, restore, weights  # noqa: E402
from arasfsr.degrade import jpeg  # noqa: E402
from arasfsr.metrics import psnr_y  # noqa: E402

GUARD_MARGIN = 0.1   # dB: a face whose self-check loses by more keeps bicubic
GUARD_MIN_SIDE = 12  # px: the half-size copy must be at least this


def self_check(model, crop: np.ndarray, device: torch.device, quality: int | None = None
               ) -> tuple[float, float] | None:
    """Would the model help this face? A proxy that needs no ground truth.

    The face's own pixels are the reference: the crop is reduced by half (PIL bicubic, the
    training degradation; then saved as JPEG at `quality` when the input was a JPEG, so the model
    sees the damage it was chosen for), brought back to the crop's size by the model and by
    bicubic, and both are scored against the crop (Y-PSNR, on its central 70 %, where the face is).

    Args:
        crop: (h, w, 3) float32 in [0, 1], native input pixels.
    Returns:
        (model dB, bicubic dB), or None when the half-size copy would be under GUARD_MIN_SIDE px.
    """
    h, w = crop.shape[:2]
    small_size = (round(w / 2), round(h / 2))
    if min(small_size) < GUARD_MIN_SIDE:
        return None
    reference = np.rint(crop * 255).astype(np.uint8)
    small = Image.fromarray(reference).resize(small_size, Image.BICUBIC)
    if quality is not None:
        small = jpeg(small, min(95, max(1, quality)))
    with restore._on(model, device):
        sr = np.asarray(inference.upscale(model, small, size=(h, w), device=device))
    base = np.asarray(small.resize((w, h), Image.BICUBIC))
    y0, y1, x0, x1 = round(0.15 * h), round(0.85 * h), round(0.15 * w), round(0.85 * w)
    inner = (slice(y0, y1), slice(x0, x1))
    return psnr_y(sr[inner], reference[inner]), psnr_y(base[inner], reference[inner])



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=str(REPO / "data" / "ood"), help="the OOD face set")
    parser.add_argument("--split", default="val,test", help="comma-separated splits (default val,test)")
    parser.add_argument("--factor", type=float, default=4.0)
    parser.add_argument("--qualities", default="0,75,40", help="JPEG qualities of the LR (0: lossless)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--recompress", action="store_true",
                        help="save the self-check's half-size copy as JPEG at the input's quality")
    parser.add_argument("--detail", default="auto",
                        help="share of the model's detail over bicubic kept (0-1), or auto: the per-input default")
    parser.add_argument("--verbose", action="store_true", help="one line per face")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    paths = sorted(p for s in args.split.split(",") for p in (Path(args.data) / s).glob("*.png"))
    if not paths:
        raise SystemExit(f"no faces under {args.data} ({args.split}); build them: python -m arasfsr.data.ood")
    models: dict[str, object] = {}
    print(f"{len(paths)} faces, x{args.factor:g}, detail {args.detail}, self-check margin {GUARD_MARGIN} dB, "
          f"{args.threads} thread(s)\n")
    print("| LR | faces | checked | guard keeps bicubic | mean gain | worst | mean with guard | worst with guard "
          "| corr(check, gain) |\n|---|---|---|---|---|---|---|---|---|")
    for quality in (int(q) for q in args.qualities.split(",")):
        gains, checks, kept = [], [], []
        for path in paths:
            hr = Image.open(path).convert("RGB")
            size = (round(hr.height / args.factor), round(hr.width / args.factor))
            lr = hr.resize(size[::-1], Image.BICUBIC)
            if quality:
                lr = jpeg(lr, quality)
            name, found = damage.choose(lr, mode="restore")
            if name == "bicubic":
                gains.append(0.0), checks.append(float("nan")), kept.append(False)
                continue
            model = models.setdefault(name, weights.load_model(name, device="cpu"))
            detail = damage.choose_detail(found) if args.detail == "auto" else float(args.detail)
            sr = inference.upscale(model, lr, size=(hr.height, hr.width), device="cpu", detail=detail)
            base = inference.upscale("bicubic", lr, size=(hr.height, hr.width))
            gain = psnr_y(sr, hr) - psnr_y(base, hr)
            crop = np.asarray(lr.convert("RGB"), np.float32) / 255
            check = self_check(model, crop, torch.device("cpu"),
                                       quality=found.quality if args.recompress else None)
            gains.append(gain)
            checks.append(float("nan") if check is None else check[0] - check[1])
            kept.append(check is not None and check[0] - check[1] < -GUARD_MARGIN)
            if args.verbose:
                print(f"  q{quality} {path.name}: {name} gain {gain:+.2f}, check "
                      f"{'n/a' if check is None else f'{check[0] - check[1]:+.2f}'}", file=sys.stderr)
        g, c, k = np.array(gains), np.array(checks), np.array(kept)
        guarded = np.where(k, 0.0, g)
        ok = ~np.isnan(c)
        corr = np.corrcoef(c[ok], g[ok])[0, 1] if ok.sum() > 2 else float("nan")
        print(f"| {'lossless' if not quality else f'JPEG q{quality}'} | {len(g)} | {ok.sum()} | {k.sum()} | "
              f"{g.mean():+.2f} | {g.min():+.2f} | {guarded.mean():+.2f} | {guarded.min():+.2f} | {corr:+.2f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
