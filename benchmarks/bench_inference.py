"""Inference speed and memory of the `paper` preset (random weights), fast vs straightforward path.

    python benchmarks/bench_inference.py            # the four sizes of the issue + 256 -> 2048 memory check
    python benchmarks/bench_inference.py --quick    # 64 -> 256 only

Each case runs in a fresh process, so its peak RSS (taken before the straightforward path runs)
is its own. Times are medians over --repeats runs (one run of the straightforward path for outputs
of 512 px and more); the speed-up compares the two paths measured in the same process.
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import resource
import statistics
import time

CASES = [(64, 256), (32, 256), (128, 512), (256, 1024)]


def decoder_flops(config, lr_side: int, out_side: int) -> float:
    """Multiply-adds x 2 of the fast path's decoder for one image (encoder excluded)."""
    d, layers = config.hidden_dim, config.hidden_layers
    channels = config.encoder_channels + (config.lfe_out_channels if config.use_lfe else 0)
    stream = 2 if config.use_gcm else 1
    per_corner = 4 * d + (layers - 1) * stream * d * d + 3 * d
    per_query = 4 * per_corner
    if config.use_gcm:
        per_query += (2 + 4 * config.gcm_frequencies) * d + (layers - 1) * d * d
    per_lr_pixel = 9 * channels * d
    return 2.0 * (per_query * out_side ** 2 + per_lr_pixel * lr_side ** 2)


def matmul_rate(repeats: int = 20) -> float:
    """GFLOP/s of plain float32 matmuls of the decoder's shape: (4 x 768, 512) @ (512, 256)."""
    import torch
    a, w = torch.randn(4 * 768, 512), torch.randn(512, 256)
    out = torch.empty(4 * 768, 256)
    torch.mm(a, w, out=out)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(10):
            torch.mm(a, w, out=out)
        times.append((time.perf_counter() - t) / 10)
    return 2 * a.shape[0] * 512 * 256 / min(times) / 1e9


def run_case(lr_side: int, out_side: int, repeats: int, reference: bool, queue) -> None:
    import torch

    import arasfsr
    from arasfsr.inference import render
    torch.manual_seed(0)
    model = arasfsr.create_model("arasfsr", preset="paper").eval()
    lr = torch.rand(1, 3, lr_side, lr_side)
    with torch.inference_mode():
        model.encode(lr)  # warm-up
        encode_times = []
        for _ in range(repeats):
            t = time.perf_counter()
            model.encode(lr)
            encode_times.append(time.perf_counter() - t)
    fast = []
    for _ in range(repeats):
        t = time.perf_counter()
        out = render(model, lr, (out_side, out_side))
        fast.append(time.perf_counter() - t)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # peak of the fast path (and set-up)
    slow = []
    if reference:  # the straightforward formulation, query chunks of 30000 as in the authors' code
        with torch.inference_mode():
            for _ in range(1 if out_side >= 512 else repeats):
                t = time.perf_counter()
                features = model.encode(lr, project=False)
                coord = arasfsr.make_coord((out_side, out_side)).unsqueeze(0)
                cell = arasfsr.make_cell((out_side, out_side)).expand_as(coord)
                ref = torch.cat([model.query(features, coord[:, i:i + 30000], cell[:, i:i + 30000], fast=False)
                                 for i in range(0, coord.shape[1], 30000)], dim=1).clamp(0, 1)
                slow.append(time.perf_counter() - t)
            assert (ref.view(out_side, out_side, 3) - out).abs().max() < 1e-4
    queue.put(dict(fast=statistics.median(fast), slow=statistics.median(slow) if slow else None,
                   encode=statistics.median(encode_times), rss_mb=rss_mb,
                   flops=decoder_flops(model.config, lr_side, out_side)))


def in_child(*args):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=run_case, args=(*args, queue))
    proc.start()
    result = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="64 -> 256 only")
    parser.add_argument("--no-big", action="store_true", help="skip the 256 -> 2048 memory check")
    args = parser.parse_args()
    import torch
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs, "
          f"load average before: {os.getloadavg()[0]:.2f}")
    rate = matmul_rate()
    print(f"plain float32 matmul (3072x512 @ 512x256): {rate:.0f} GFLOP/s\n")
    header = (f"{'case':>12} {'fast s':>8} {'ms/MP':>8} {'straight s':>11} {'speed-up':>9} "
              f"{'decoder GFLOP/s':>16} {'of matmul':>10} {'peak RSS MB':>12}")
    print(header)
    print("-" * len(header))
    cases = CASES[:1] if args.quick else CASES
    for lr_side, out_side in cases:
        r = in_child(lr_side, out_side, args.repeats, True)
        decoder_time = r["fast"] - r["encode"]
        gflops = r["flops"] / decoder_time / 1e9
        print(f"{lr_side:>5}->{out_side:<6} {r['fast']:>8.3f} {r['fast'] / (out_side ** 2 / 1e6) * 1e3:>8.0f} "
              f"{r['slow']:>11.3f} {r['slow'] / r['fast']:>8.2f}x {gflops:>16.0f} {gflops / rate:>9.0%} "
              f"{r['rss_mb']:>12.0f}")
    if not (args.quick or args.no_big):
        r = in_child(256, 2048, 1, False)
        print(f"{256:>5}->{2048:<6} {r['fast']:>8.3f} {r['fast'] / (2048 ** 2 / 1e6) * 1e3:>8.0f} "
              f"{'-':>11} {'-':>9} {r['flops'] / (r['fast'] - r['encode']) / 1e9:>16.0f} {'':>10} {r['rss_mb']:>12.0f}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f} (the two CPUs are shared with anything else running)")


if __name__ == "__main__":
    main()
