"""Bounded load test of the demo: N concurrent gradio_client clients, M /upscale requests each, on loopback.

    python benchmarks/load_test.py                       # starts `python app.py` itself, 4 clients x 5 requests
    python benchmarks/load_test.py --clients 8 --requests 10 --threads 1
    python benchmarks/load_test.py --url http://127.0.0.1:7860/   # an app already running (no RSS figure)

Each request sends the 64 px example face at a random non-integer scale (--min-scale to --max-scale)
and counts as a success when the returned PNG has the expected size. Reports the success rate, the
latency percentiles (queueing included: the app runs CONCURRENCY model jobs at once) and the
server's peak resident memory (VmHWM from /proc, Linux only). Then (unless --no-big-job) one 1 MP
job (the 256 px example face at x4 -> 1024 x 1024) and the server's resident memory (VmRSS) once it
has answered: the demo hands memory back after each run, so this should be under 600 MB again.
Not part of the test suite.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(url: str, server: subprocess.Popen | None, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while True:
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=2):
                return
        except OSError:
            if server is not None and server.poll() is not None:
                raise SystemExit(f"the app exited with code {server.returncode} before serving")
            if time.time() > deadline:
                raise SystemExit(f"the app did not serve {url} within {timeout:.0f} s")
            time.sleep(0.5)


def memory_kb(pid: int, field: str) -> int | None:
    """VmRSS (now) or VmHWM (peak) of a process in kB, from /proc; None where there is no /proc."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in [0, 100]) of a non-empty list."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


def client_loop(url: str, image: str, requests: int, scales: tuple[float, float], seed: int,
                input_size: tuple[int, int], records: list, lock: threading.Lock) -> None:
    from gradio_client import Client, handle_file
    from PIL import Image

    rng = random.Random(seed)
    client = Client(url, verbose=False)
    for _ in range(requests):
        scale = round(rng.uniform(*scales), 2)
        expected = tuple(math.floor(side * scale + 0.5) for side in input_size)
        started = time.perf_counter()
        try:
            result = client.predict(handle_file(image), scale, api_name="/upscale")[0]
            size = Image.open(result).size
            error = None if size == expected else f"size {size}, expected {expected}"
        except Exception as exc:  # noqa: BLE001 - every failure is counted and reported, not hidden
            error = f"{type(exc).__name__}: {exc}"[:200]
        with lock:
            records.append({"seconds": time.perf_counter() - started, "scale": scale, "error": error})


def big_job(url: str, server: subprocess.Popen | None) -> dict:
    """Two 1 MP jobs, one after the other: a face (256 px -> 1024 x 1024) and a whole photo (the 512 px
    astronaut at x2), with the server's resident memory before, at peak and after each."""
    from gradio_client import Client, handle_file
    from PIL import Image

    from demo.examples import prepare_examples

    examples = prepare_examples()
    client = Client(url, verbose=False)
    mb = (lambda kb: round(kb / 1024, 1) if kb else None)
    out = {}
    for name, image, scale, api in (("face", examples["grace_hopper_256"], 4.0, "/upscale"),
                                    ("photo", examples["astronaut"], 2.0, "/restore")):
        before = memory_kb(server.pid, "VmRSS") if server else None
        started = time.perf_counter()
        result = client.predict(handle_file(str(image)), scale, api_name=api)
        seconds = time.perf_counter() - started
        time.sleep(1.0)  # the answer is sent before the run's clean-up ends
        path = result[0] if name == "face" else result[-1]
        out[f"big_{name}"] = {"output": "x".join(map(str, Image.open(path).size)), "seconds": round(seconds, 1),
                              "rss_before_mb": mb(before), "rss_peak_mb": mb(memory_kb(server.pid, "VmHWM")),
                              "rss_after_mb": mb(memory_kb(server.pid, "VmRSS"))} if server else {}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=4, help="concurrent clients (default 4)")
    parser.add_argument("--requests", type=int, default=5, help="requests per client (default 5)")
    parser.add_argument("--min-scale", type=float, default=2.0)
    parser.add_argument("--max-scale", type=float, default=4.0)
    parser.add_argument("--image", default=None, help="input image (default: the 64 px example face)")
    parser.add_argument("--url", default=None, help="test a running app instead of starting app.py")
    parser.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for the started app")
    parser.add_argument("--weights-dir", default=None, help="ARASFSR_WEIGHTS_DIR for the started app")
    parser.add_argument("--json", default=None, help="also write the summary to this file")
    parser.add_argument("--no-big-job", action="store_true", help="skip the 1 MP job and its memory figure")
    args = parser.parse_args(argv)
    if args.clients < 1 or args.requests < 1:
        parser.error("--clients and --requests must be at least 1")

    sys.path.insert(0, str(REPO))
    from PIL import Image

    from demo.examples import prepare_examples

    image = args.image or str(prepare_examples()["grace_hopper_64"])
    width, height = Image.open(image).size

    server = None
    url = args.url
    if url is None:
        port = free_port()
        env = {**os.environ, "PORT": str(port), "GRADIO_SERVER_NAME": "127.0.0.1"}
        if args.threads:
            env["OMP_NUM_THREADS"] = str(args.threads)
        if args.weights_dir:
            env["ARASFSR_WEIGHTS_DIR"] = str(Path(args.weights_dir).resolve())
        server = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}/"
    url = url if url.endswith("/") else url + "/"
    try:
        started = time.perf_counter()
        wait_until_serving(url, server)
        startup = time.perf_counter() - started
        rss_idle = memory_kb(server.pid, "VmRSS") if server else None

        records: list[dict] = []
        lock = threading.Lock()
        threads = [threading.Thread(target=client_loop, args=(url, image, args.requests,
                                                              (args.min_scale, args.max_scale), k,
                                                              (width, height), records, lock))
                   for k in range(args.clients)]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        wall = time.perf_counter() - started
        rss_peak = memory_kb(server.pid, "VmHWM") if server else None
        big = None if args.no_big_job else big_job(url, server)
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=30)

    latencies = [r["seconds"] for r in records]
    ok = [r for r in records if r["error"] is None]
    summary = {
        "clients": args.clients, "requests_per_client": args.requests, "requests": len(records),
        "succeeded": len(ok), "success_rate": len(ok) / len(records),
        "latency_p50_s": round(percentile(latencies, 50), 3), "latency_p95_s": round(percentile(latencies, 95), 3),
        "latency_max_s": round(max(latencies), 3), "latency_mean_s": round(statistics.fmean(latencies), 3),
        "wall_s": round(wall, 2), "throughput_rps": round(len(records) / wall, 3),
        "input": f"{width}x{height}", "scales": [args.min_scale, args.max_scale],
        "server_startup_s": round(startup, 1) if server else None,
        "server_rss_idle_mb": round(rss_idle / 1024, 1) if rss_idle else None,
        "server_rss_peak_mb": round(rss_peak / 1024, 1) if rss_peak else None,
        "errors": sorted({r["error"] for r in records if r["error"]}),
        **(big or {}),
    }
    print(f"{summary['succeeded']}/{summary['requests']} succeeded ({summary['success_rate']:.0%}) from "
          f"{args.clients} clients x {args.requests} requests, {width}x{height} px at x{args.min_scale:g}-"
          f"x{args.max_scale:g}")
    print(f"latency p50 {summary['latency_p50_s']} s, p95 {summary['latency_p95_s']} s, max "
          f"{summary['latency_max_s']} s; {summary['throughput_rps']} requests/s over {summary['wall_s']} s")
    if server:
        print(f"server: ready in {summary['server_startup_s']} s, RSS {summary['server_rss_idle_mb']} MB idle, "
              f"peak {summary['server_rss_peak_mb']} MB")
    for name, job in (big or {}).items():
        if job:
            print(f"1 MP {name.removeprefix('big_')} job: {job['output']} in {job['seconds']} s; server RSS before "
                  f"{job['rss_before_mb']} MB, peak so far {job['rss_peak_mb']} MB, after {job['rss_after_mb']} MB")
    for error in summary["errors"]:
        print("error:", error)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1))
    return 0 if len(ok) == len(records) else 1


if __name__ == "__main__":
    sys.exit(main())
