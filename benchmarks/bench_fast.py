"""arasfsr-fast against the default `arasfsr`, in one run: speed, decoder FLOPs, quality.

    python benchmarks/bench_fast.py                         # 128 -> 1024 speed, FLOPs, quality (studio + OOD)
    python benchmarks/bench_fast.py --skip-quality          # speed and FLOPs only
    python benchmarks/bench_fast.py --models arasfsr arasfsr-fast lte --threads 1 2
    python benchmarks/bench_fast.py --device cuda --skip-quality   # the CUDA table, on a machine with a GPU

Speed: `arasfsr.upscale` of one 128 x 128 face (a test-split master) to 1024 x 1024, wall clock,
median of --repeats after one warm-up, encoder included, for each thread count; the ratio is
default / fast measured in the same run, so a busy machine slows both.

FLOPs: multiply-adds x 2 of matrix products and convolutions (torch's FlopCounterMode on the
autograd query path, which runs the same products as the inference path; elementwise work is not
counted). "decoder" is per output pixel; "encoder" is per LR pixel (it includes the per-LR-pixel
decoder terms) and is amortised over scale^2 output pixels in "total at x8". "fraction of matmul"
is the effective rate (total FLOPs of the 128 -> 1024 render / its time) over the rate of a plain
float32 8192 x 256 x 256 matmul measured here with the same threads.

Quality: Y-PSNR (uint8 Y, as `arasfsr.evaluate`) on held-out faces: the studio's test split
(data/faces) and the faces from other sources (data/ood, test split), LR = bicubic(master, s),
HR = bicubic(master, s * r), for x4 and x8 to 64 px (every test face) and to 128 px (the faces
of 128 px); per face, each model minus the first, mean and standard error over faces.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_inference import cpu_model  # noqa: E402

from arasfsr.coords import make_coord  # noqa: E402

# (LR side, scale): 64 px HR for every test face, 128 px for the faces of 128 px
SETTINGS = [(16, 4), (8, 8), (32, 4), (16, 8)]


def flops(model, lr_side: int = 32, out_side: int = 128) -> tuple[float, float]:
    """(encoder FLOPs per LR pixel, decoder FLOPs per output pixel) of one model."""
    from torch.utils.flop_counter import FlopCounterMode
    lr = torch.rand(1, 3, lr_side, lr_side)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        features = model.encode(lr, sample=False)
    encoder = counter.get_total_flops() / lr_side ** 2
    coord = make_coord((out_side, out_side)).view(1, -1, 2)
    cell = torch.full_like(coord, 2 / out_side)
    with torch.enable_grad(), FlopCounterMode(display=False) as counter:
        model.query(features, coord, cell)
    return encoder, counter.get_total_flops() / out_side ** 2


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(device: torch.device, repeats: int = 20) -> float:
    """FLOP/s of a plain float32 (8192 x 256) @ (256 x 256) with the current threads."""
    a, b = torch.rand(8192, 256, device=device), torch.rand(256, 256, device=device)
    a @ b
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        a @ b
        _sync(device)
        times.append(time.perf_counter() - t0)
    return 2 * 8192 * 256 * 256 / statistics.median(times)


def render_time(model, face, out_side: int, repeats: int, device: torch.device) -> float:
    from arasfsr.inference import upscale
    upscale(model, face, size=(out_side // 4, out_side // 4), device=device)  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        upscale(model, face, size=(out_side, out_side), device=device)  # returns a PIL image: synchronised
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def quality(models: dict, data: str, settings) -> dict:
    """{(s, r): {name: [Y-PSNR per face]}} on the test split of `data`."""
    from tqdm import tqdm

    from arasfsr.data import FaceFolder, make_eval_pair
    from arasfsr.inference import upscale
    from arasfsr.metrics import psnr_y
    folder = FaceFolder.for_split(data, "test")
    masters = [folder[i] for i in range(len(folder))]
    scores = {}
    for s, r in tqdm(settings, desc=f"quality {Path(data).name}", unit="setting"):
        hr_side = round(s * r)
        table = {name: [] for name in models}
        for master in masters:
            if hr_side > master.size[0]:
                continue
            lr, hr = make_eval_pair(master, s, r, "bicubic")
            for name, model in models.items():
                table[name].append(psnr_y(upscale(model, lr, size=(hr_side, hr_side)), hr))
        scores[s, r] = table
    return scores


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["arasfsr", "arasfsr-fast"],
                        help="shipped names or weight files; the first is the reference")
    parser.add_argument("--threads", type=int, nargs="+", default=[1])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--input", type=int, default=128)
    parser.add_argument("--output", type=int, default=1024)
    parser.add_argument("--data", nargs="+", default=["data/faces", "data/ood"])
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--device", default="cpu", help="cpu or cuda (speed only; quality runs on the CPU)")
    args = parser.parse_args(argv)
    from arasfsr.threads import resolve_device
    device = resolve_device(args.device)

    from arasfsr.data import FaceFolder
    from arasfsr.weights import load_model
    models = {Path(m).stem.removesuffix("_small") if m.endswith(".safetensors") else m: load_model(m, device="cpu")
              for m in args.models}
    names = list(models)
    face = FaceFolder.for_split(args.data[0], "test")[0].resize((args.input, args.input))
    scale = args.output / args.input
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
    print(f"machine: {where}, torch {torch.__version__}, {args.input} -> {args.output} (x{scale:g})")

    print("\n| model | decoder MFLOP / output px | encoder MFLOP / LR px | total MFLOP / output px at "
          f"x{scale:g} |\n|---|---|---|---|")
    cost = {}
    for name, model in models.items():
        enc, dec = flops(model)
        cost[name] = dec + enc / scale ** 2
        print(f"| {name} | {dec / 1e6:.3f} | {enc / 1e6:.3f} | {cost[name] / 1e6:.3f} |")

    print(f"\n| threads | model | {args.input} -> {args.output} s | vs {names[0]} | effective GFLOP/s | "
          "fraction of matmul |\n|---|---|---|---|---|---|")
    for threads in args.threads:
        torch.set_num_threads(threads)
        rate = matmul_rate(device)
        times = {name: render_time(model, face, args.output, args.repeats, device) for name, model in models.items()}
        for name in names:
            effective = cost[name] * args.output ** 2 / times[name]
            print(f"| {threads} | {name} | {times[name]:.2f} | {times[names[0]] / times[name]:.2f}x | "
                  f"{effective / 1e9:.1f} | {effective / rate:.2f} (matmul {rate / 1e9:.0f} GFLOP/s) |")

    if args.skip_quality:
        return 0
    torch.set_num_threads(args.threads[0])
    print(f"\nY-PSNR, test splits; difference = model minus {names[0]}, mean +- standard error over faces")
    print("\n| data | setting | faces | " + " | ".join(names) + " | bicubic | " +
          " | ".join(f"{n} - {names[0]}" for n in names[1:]) + " |")
    print("|---" * (4 + 2 * len(names) - 1) + "|")
    for data in args.data:
        scores = quality({**models, "bicubic": "bicubic"}, data, SETTINGS)
        for (s, r), table in scores.items():
            n = len(table[names[0]])
            if not n:
                continue
            means = " | ".join(f"{np.mean(table[name]):.2f}" for name in names + ["bicubic"])
            diffs = []
            for name in names[1:]:
                d = np.array(table[name]) - np.array(table[names[0]])
                diffs.append(f"{d.mean():+.3f} +- {d.std(ddof=1) / np.sqrt(n):.3f}")
            print(f"| {Path(data).name} | {s} -> {round(s * r)} (x{r}) | {n} | {means} | {' | '.join(diffs)} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
