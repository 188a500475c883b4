"""ONNX (onnxruntime) against torch: render time and agreement, same thread count, same inputs.

    python benchmarks/bench_onnx.py                       # arasfsr and lte, one thread
    python benchmarks/bench_onnx.py --models arasfsr --threads 2 --repeats 5

Each model is exported to a temporary folder (`arasfsr.onnx.export`), then both paths upscale the
same synthetic smooth images (no data needed): 64 -> 256 (x4), 128 -> 512 (x4), 128 -> 1024 (x8).
Reported per case: the median wall time of `arasfsr.upscale` (torch, `torch.set_num_threads`) and of
`arasfsr.onnx.upscale` (onnxruntime, intra-op threads), their ratio, and the largest difference in
8-bit levels between the two outputs. Quote the machine with the figures; on a shared machine run
it twice.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

CASES = ((64, 4), (128, 4), (128, 8))


def smooth_image(side: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = (rng.random((side // 8, side // 8, 3)) * 255).astype(np.uint8)
    return Image.fromarray(small).resize((side, side), Image.BICUBIC)


def timed(fn, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="arasfsr,lte")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    import arasfsr
    import arasfsr.onnx as aonnx
    torch.set_num_threads(args.threads)
    print(f"machine: {platform.processor() or platform.machine()}, {args.threads} thread(s), torch "
          f"{torch.__version__}, onnxruntime {__import__('onnxruntime').__version__}")
    print("| model | case | torch (s) | onnxruntime (s) | onnx / torch | max diff (levels) |")
    print("|---|---|---|---|---|---|")
    for name in args.models.split(","):
        model = arasfsr.load_model(name)
        with tempfile.TemporaryDirectory() as folder:
            aonnx.export(name, folder)
            net = aonnx.OnnxModel(folder, threads=args.threads)
            for side, scale in CASES:
                image = smooth_image(side)
                t_torch, ref = timed(lambda: arasfsr.upscale(model, image, scale=scale), args.repeats)
                t_onnx, out = timed(lambda: aonnx.upscale(net, image, scale=scale), args.repeats)
                diff = int(np.abs(np.asarray(out, np.int16) - np.asarray(ref, np.int16)).max())
                print(f"| {name} | {side} -> {side * scale} (x{scale}) | {t_torch:.2f} | {t_onnx:.2f} | "
                      f"{t_onnx / t_torch:.2f} | {diff} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
