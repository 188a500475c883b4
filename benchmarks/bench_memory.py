"""Peak memory (RSS) of the command line on the largest requests, measured by /usr/bin/time -v.

    python benchmarks/bench_memory.py                     # every case, one thread each
    python benchmarks/bench_memory.py --cases natural-4096 --threads 2

Each case runs `python -m arasfsr upscale|restore` in a fresh process on a synthetic smooth image
(no data needed) and reports the wall time and the "Maximum resident set size". Cases:
  natural-4096   natural-photo model, 1024 x 1024 -> 4096 x 4096 (x4), encoder in tiles
  restore-4096   whole-photo mode, 1024 x 1024 photo -> 4096 x 4096, background by the natural model
  restore-4096-bicubic  the same with --background bicubic (the 0.4 behaviour)
  face-1024      ARASFSR (face prior), 1024 x 1024 -> 2048 x 2048
  face-2048-near1  ARASFSR, the largest input (2048 x 2048) at x1.001
  face-2048      ARASFSR, the largest input and output: 2048 x 2048 -> 4096 x 4096
Since 0.6 every model encodes inputs over 2 x 192^2 px in tiles (GCM in the whole face's frame);
the 0.5 release peaked at 2.9 GB on face-1024, and 0.4 at 11.1 GB on face-2048.
Needs GNU time at /usr/bin/time (Debian: apt-get install time).
"""
from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
CASES = {
    "natural-4096": (1024, ["upscale", "--weights", "natural", "--scale", "4"]),
    "restore-4096": (1024, ["restore", "--model", "arasfsr", "--background", "natural", "--scale", "4"]),
    "restore-4096-bicubic": (1024, ["restore", "--model", "arasfsr", "--background", "bicubic", "--scale", "4"]),
    "face-1024": (1024, ["upscale", "--weights", "arasfsr", "--scale", "2"]),
    "face-2048-near1": (2048, ["upscale", "--weights", "arasfsr", "--scale", "1.001"]),
    "face-2048": (2048, ["upscale", "--weights", "arasfsr", "--scale", "2"]),
}


def smooth_image(side: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (side // 16, side // 16, 3), dtype=np.uint8)
    return Image.fromarray(small).resize((side, side), Image.BICUBIC)


def measure(args: list[str], threads: int) -> tuple[float, float, int]:
    """(peak RSS in MB, wall seconds, exit code) of `python -m arasfsr ARGS`."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    proc = subprocess.run(["/usr/bin/time", "-v", sys.executable, "-m", "arasfsr", *args], capture_output=True,
                          text=True, cwd=REPO, env=env)
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    wall = re.search(r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", proc.stderr)
    seconds = float("nan")
    if wall:
        h, m, s = wall.groups()
        seconds = int(h or 0) * 3600 + int(m) * 60 + float(s)
    if proc.returncode != 0:
        print(proc.stderr[-2000:], file=sys.stderr)
    return (int(rss.group(1)) / 1024 if rss else float("nan")), seconds, proc.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per run (default 1)")
    args = parser.parse_args(argv)
    if not Path("/usr/bin/time").is_file():
        raise SystemExit("needs GNU time at /usr/bin/time (apt-get install time)")
    print("| case | input | command | peak RSS | wall time |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            side, command = CASES[name]
            src = Path(tmp) / f"in_{side}.png"
            if not src.exists():
                smooth_image(side).save(src)
            out = Path(tmp) / f"{name}.png"
            rss, seconds, code = measure([command[0], str(src), "-o", str(out), "--overwrite", "--no-progress",
                                          *command[1:]], args.threads)
            status = "" if code == 0 else f" (exit {code})"
            size = "x".join(map(str, Image.open(out).size)) if out.exists() else "none"
            print(f"| {name} | {side} x {side} -> {size} | `{' '.join(command)}` | {rss:.0f} MB | "
                  f"{seconds:.1f} s{status} |", flush=True)
    print(f"\n{args.threads} torch thread(s) per run; peak RSS of the whole process (Python, torch, the images).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
