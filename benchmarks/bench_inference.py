"""Inference speed of the `paper` preset (random weights): ours, our straightforward path and,
when their checkouts are given, the authors' code and the public LIIF code, in one run.

    python benchmarks/bench_inference.py                    # the cases of the issue, CPU
    python benchmarks/bench_inference.py --quick            # 64 -> 256 only
    python benchmarks/bench_inference.py --busy 2           # beside 2 busy-looping processes
    python benchmarks/bench_inference.py --device cuda --authors-code ../ARASFSR --liif-code ../liif

Every measurement runs in a fresh process (its own peak RSS; the reference checkouts both have
top-level packages named `models` and `utils`). Times are medians over --repeats (one run for
outputs of 512 px and more on the CPU), wall clock, including the encoder.

- ours: `arasfsr.inference.render` (blocks, chunks and threads per `threads.inference_plan`),
  after `threads.configure_threads()`, as the app runs it.
- straightforward: `model.query(..., fast=False)` in query chunks of 30000, as the authors'
  test code; checked equal to ours.
- authors' code / LIIF code: their own model classes (random weights, sizes taken from our
  `paper` preset's config) and their own `batched_predict` (chunks of 30000). Both call `.cuda()`
  (the authors' also torch.cuda.FloatTensor) unconditionally; on the CPU these are made CPU calls
  inside their process only, and their
  imports that are not installed (here: torchvision, tensorboardX, timm, einops, pytorch_wavelets;
  none is used on this path) are replaced by empty stand-ins, listed on stderr.
- ours (LIIF): our `liif` model rendered as ours, to compare with the LIIF code.

--busy N starts N processes that loop forever for the whole run (stopped at the end, on errors
and on Ctrl-C): the busy shared machine of issue 9.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.abc
import importlib.machinery
import multiprocessing as mp
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
import types

CASES = [(64, 256), (32, 256), (128, 512), (256, 1024)]
GPU_CASES = [(32, 256), (64, 256), (128, 512), (256, 1024), (256, 2048)]
REFERENCE_CHUNK = 30000  # queries per chunk in the authors' and LIIF's test code


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def sync(device: str) -> None:
    import torch
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, repeats: int, device: str) -> float:
    """Median wall time of fn() over `repeats` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


# ---- ours ---------------------------------------------------------------------------------
def run_ours(lr_side: int, out_side: int, repeats: int, device: str, straightforward: bool,
             liif: bool, queue) -> None:
    import torch

    import arasfsr
    from arasfsr.inference import render
    from arasfsr.threads import configure_threads
    threads = configure_threads()
    torch.manual_seed(0)
    model = arasfsr.create_model("arasfsr", preset="paper").eval().to(device)
    lr = torch.rand(1, 3, lr_side, lr_side, device=device)
    out = render(model, lr, (out_side, out_side))
    result = dict(threads=threads, ours=timed(lambda: render(model, lr, (out_side, out_side)), repeats, device))
    result["rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if straightforward:
        coord = arasfsr.make_coord((out_side, out_side), device=device).unsqueeze(0)
        cell = arasfsr.make_cell((out_side, out_side), device=device).expand_as(coord)

        @torch.inference_mode()
        def straight():
            features = model.encode(lr, project=False)
            return torch.cat([model.query(features, coord[:, i:i + REFERENCE_CHUNK], cell[:, i:i + REFERENCE_CHUNK],
                                          fast=False) for i in range(0, coord.shape[1], REFERENCE_CHUNK)],
                             dim=1).clamp(0, 1).cpu()

        ref = straight()
        assert (ref.view(out_side, out_side, 3) - out).abs().max() < 1e-4, "fast and straightforward paths differ"
        slow_repeats = 1 if out_side >= 512 and device == "cpu" else repeats
        result["straight"] = timed(straight, slow_repeats, device) if slow_repeats > 1 else _once(straight, device)
    if liif:
        model = arasfsr.create_model("liif", preset="paper").eval().to(device)
        result["ours_liif"] = timed(lambda: render(model, lr, (out_side, out_side)), repeats, device)
    queue.put(result)


def _once(fn, device: str) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


# ---- the reference checkouts ----------------------------------------------------------------
class _StandIn(types.ModuleType):
    """An importable empty module: any attribute is a class that does nothing."""
    __path__: list = []

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {"__init__": lambda self, *a, **k: None, "__call__": lambda self, *a, **k: None})


class _StandInFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last on sys.meta_path while a checkout is imported: serves a `_StandIn` for the packages
    the checkouts import at start-up but never use on this path, when they are not installed."""
    NAMES = {"torchvision", "tensorboardX", "timm", "einops", "pytorch_wavelets"}

    def __init__(self):
        self.served = []

    def find_spec(self, fullname, path, target=None):
        if fullname.split(".")[0] not in self.NAMES:
            return None
        self.served.append(fullname)
        return importlib.machinery.ModuleSpec(fullname, self, is_package=True)

    def create_module(self, spec):
        return _StandIn(spec.name)

    def exec_module(self, module):
        pass


def reference_model(kind: str, code_path: str, device: str):
    """Build the authors' ARASFSR or the public LIIF model from its checkout (random weights,
    our `paper` preset's sizes); returns (model, their batched_predict, their make_coord)."""
    import torch
    from torch import nn

    import arasfsr
    if device == "cpu":  # their code calls .cuda() (and the authors' torch.cuda.FloatTensor) unconditionally
        torch.Tensor.cuda = lambda self, *args, **kwargs: self
        nn.Module.cuda = lambda self, *args, **kwargs: self
        torch.cuda.FloatTensor = lambda *size: torch.empty(*size)
    sys.path.insert(0, os.path.abspath(code_path))
    finder = _StandInFinder()
    sys.meta_path.append(finder)
    try:
        import models  # noqa: F401 (their package)
        from test import batched_predict  # their test script's chunked query
        from utils import make_coord
    finally:
        sys.meta_path.remove(finder)
    if finder.served:
        print(f"{kind} code: not installed here, replaced by empty stand-ins: {sorted(set(finder.served))}",
              file=sys.stderr)
    family = "arasfsr" if kind == "authors" else "liif"
    config = arasfsr.create_model(family, preset="paper").config
    encoder = {"name": "edsr-baseline", "args": {"n_resblocks": config.encoder_blocks,
                                                  "n_feats": config.encoder_channels, "no_upsampling": True}}
    hidden = [config.hidden_dim] * config.hidden_layers
    if kind == "authors":
        spec = {"name": "asfsr", "args": {"encoder_spec": encoder, "imnet_spec": {
            "name": "mlp_sine_modulation_previous", "args": {"out_dim": 3, "hidden_list": hidden}}}}
    else:
        spec = {"name": "liif", "args": {"encoder_spec": encoder, "imnet_spec": {
            "name": "mlp", "args": {"out_dim": 3, "hidden_list": hidden}}}}
    torch.manual_seed(0)
    model = models.make(spec).eval()
    if device != "cpu":
        model = model.to(device)
    return model, batched_predict, make_coord


def run_reference(kind: str, code_path: str, lr_side: int, out_side: int, repeats: int, device: str, queue) -> None:
    import torch
    model, batched_predict, make_coord = reference_model(kind, code_path, device)
    lr = torch.rand(1, 3, lr_side, lr_side, device=device)

    def predict():  # as their demo.py: normalise, coordinates and cells, chunks of 30000
        h = w = out_side
        coord = make_coord((h, w)).to(device)
        cell = torch.ones_like(coord)
        cell[:, 0] *= 2 / h
        cell[:, 1] *= 2 / w
        pred = batched_predict(model, ((lr - 0.5) / 0.5), coord.unsqueeze(0), cell.unsqueeze(0),
                               bsize=REFERENCE_CHUNK)[0]
        return (pred * 0.5 + 0.5).clamp(0, 1).view(h, w, 3).cpu()

    n = 1 if out_side >= 512 and device == "cpu" else repeats
    queue.put(dict(time=timed(predict, n, device) if n > 1 else _once(predict, device)))


def in_child(target, *args):
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    try:
        while True:
            try:
                return queue.get(timeout=1)
            except Exception:  # noqa: BLE001 (queue.Empty, from the multiprocessing context)
                if not proc.is_alive():
                    raise RuntimeError(f"{target.__name__}{args} failed (exit code {proc.exitcode}); see above")
    finally:
        proc.join(timeout=5)
        if proc.is_alive():
            proc.kill()


# ---- busy processes -------------------------------------------------------------------------
@contextlib.contextmanager
def busy_processes(count: int):
    """`count` processes that loop forever while the block runs; always stopped after it."""
    procs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(count)]
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally on SIGTERM
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()
        for proc in procs:
            proc.wait()
        signal.signal(signal.SIGTERM, previous)


def fmt(seconds) -> str:
    return f"{seconds:.3f}" if seconds is not None else "-"


def ratio(slow, fast) -> str:
    return f"{slow / fast:.2f}x" if slow is not None and fast else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="64 -> 256 only")
    parser.add_argument("--cases", default=None, help="e.g. 64:256,32:256 (default: the issue's cases)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--busy", type=int, default=0, metavar="N", help="run beside N busy-looping processes")
    parser.add_argument("--authors-code", metavar="PATH", help="a checkout of the authors' ARASFSR code")
    parser.add_argument("--liif-code", metavar="PATH", help="a checkout of the public LIIF code")
    parser.add_argument("--no-straightforward", action="store_true", help="skip our straightforward path")
    args = parser.parse_args()
    import torch
    if args.cases:
        cases = [tuple(int(v) for v in case.split(":")) for case in args.cases.split(",")]
    elif args.quick:
        cases = [(64, 256)]
    else:
        cases = GPU_CASES if args.device.startswith("cuda") else CASES
    machine = cpu_model()
    if args.device.startswith("cuda"):
        machine = f"{torch.cuda.get_device_name()} ({machine})"
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {machine}, torch {torch.__version__}, "
          f"{os.cpu_count()} CPUs, device {args.device}, {args.busy} busy processes, "
          f"load average before: {os.getloadavg()[0]:.2f}", flush=True)
    header = (f"{'case':>12} {'ours s':>8} {'straight s':>11} {'x':>7} {'authors s':>10} {'x':>7} "
              f"{'LIIF code s':>12} {'ours LIIF s':>12} {'x':>7} {'threads':>8} {'RSS MB':>7}")
    with busy_processes(args.busy):
        print(header)
        print("-" * len(header), flush=True)
        for lr_side, out_side in cases:
            r = in_child(run_ours, lr_side, out_side, args.repeats, args.device, not args.no_straightforward,
                         bool(args.liif_code))
            authors = liif = None
            if args.authors_code:
                authors = in_child(run_reference, "authors", args.authors_code, lr_side, out_side, args.repeats,
                                   args.device)["time"]
            if args.liif_code:
                liif = in_child(run_reference, "liif", args.liif_code, lr_side, out_side, args.repeats,
                                args.device)["time"]
            print(f"{lr_side:>5}->{out_side:<6} {fmt(r['ours']):>8} {fmt(r.get('straight')):>11} "
                  f"{ratio(r.get('straight'), r['ours']):>7} {fmt(authors):>10} {ratio(authors, r['ours']):>7} "
                  f"{fmt(liif):>12} {fmt(r.get('ours_liif')):>12} {ratio(liif, r.get('ours_liif')):>7} "
                  f"{r['threads']:>8} {r['rss_mb']:>7.0f}", flush=True)
    print(f"\nx: the other's time / ours. load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
