"""How many CPU threads to use, and how to split an inference into blocks and chunks.

Why this module exists: torch's default (one intra-op thread per core, many small parallel
regions) is fast on a quiet machine and falls apart on a busy one. Every parallel region ends
at a barrier; when the OS parks one of our threads to run someone else's process, the others
spin or sleep at that barrier, and a render that takes 1 s on a quiet 2-core CPU took 50 s beside
two busy processes. The fixes:

- count the CPUs the process may actually use (affinity mask, cgroup quota), not the machine's;
- in the decoder, run independent blocks of queries on single-threaded workers that take the
  next block when they finish one (no barrier: a parked worker delays only its own block);
- run the encoder (a few large convolutions) with as many threads as there are idle CPUs now.

Public API:
    configure_threads(max_threads=None) -> int    # call once at start-up (app, notebooks)
    inference_plan(device, threads) -> InferencePlan   # a pure function, used by `render`
    available_cpus(), idle_cpus(), thread_limit(n)
    resolve_device(device) -> torch.device        # "auto", "cpu", "cuda[:k]", "mps"; checked
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

# Queries per block on the CPU (x4 corners x hidden width floats per buffer): small enough that
# a block's activations stay in one core's L2 cache (512 x 4 x 256 x 4 B = 2 MB).
CPU_BLOCK = 512
# Queries per block on a GPU: large enough that each layer is one big kernel (a block of 512
# makes thousands of tiny launches); 65536 x 4 x 256 x 4 B = 256 MB per buffer.
GPU_BLOCK = 65536
CPU_CHUNK = 65536     # queries per render chunk on the CPU (bounds memory, not speed)
GPU_CHUNK = 262144    # 4 GPU blocks: few chunks, few host-device synchronisations


@dataclass(frozen=True)
class InferencePlan:
    """How `render` splits one image's queries.

    block: queries per decoder block (its activations are the working set).
    chunk_size: queries per render chunk (coordinates are made per chunk).
    workers: single-threaded CPU workers the decoder's blocks are spread over (1: run the blocks
        in order with torch's own intra-op threads).
    """
    block: int
    chunk_size: int
    workers: int


def inference_plan(device: str | torch.device, threads: int) -> InferencePlan:
    """Blocks, chunks and workers for a device and a thread budget (a pure function).

    Args:
        device: where the model runs ("cpu", "cuda", "cuda:1", ...).
        threads: CPU threads the render may use (at least 1).
    Returns:
        An `InferencePlan`. CUDA: one worker, large blocks and chunks. CPU: cache-sized blocks,
        spread over `threads` single-threaded workers, and chunks holding many blocks per worker.
    """
    if threads < 1:
        raise ValueError(f"threads must be at least 1, got {threads}")
    kind = torch.device(device).type
    if kind == "cpu":
        # each worker should get many blocks per chunk so that a slow worker does not hold the
        # chunk's end back: >= 16 blocks per worker
        return InferencePlan(block=CPU_BLOCK, chunk_size=max(CPU_CHUNK, 16 * CPU_BLOCK * threads),
                             workers=threads)
    return InferencePlan(block=GPU_BLOCK, chunk_size=GPU_CHUNK, workers=1)


def available_cpus() -> int:
    """CPUs this process may run on: its affinity mask, capped by a cgroup (v2 or v1) CPU quota."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    quota = _cgroup_quota()
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def _cgroup_quota() -> float | None:
    """CPUs allowed by the cgroup's quota (e.g. a container limited to 2 CPUs), or None."""
    try:
        with open("/sys/fs/cgroup/cpu.max") as f:  # v2: "max 100000" or "200000 100000"
            quota, period = f.read().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        with open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us") as f, open("/sys/fs/cgroup/cpu/cpu.cfs_period_us") as g:
            quota, period = int(f.read()), int(g.read())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


def _running_threads() -> int | None:
    """Threads on the whole machine that are running or ready to run right now (Linux)."""
    try:
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith("procs_running"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None


def idle_cpus(samples: int = 3, interval: float = 0.001) -> int:
    """Available CPUs not busy with other work right now (at least 1).

    Counts the machine's runnable threads a few times over ~2 ms (the 1-minute load average
    lags by a minute; this does not) and takes the median; the calling thread is not counted.
    Where that count cannot be read, returns `available_cpus()`.
    """
    cpus = available_cpus()
    counts = []
    for i in range(samples):
        n = _running_threads()
        if n is None:
            return cpus
        counts.append(n - 1)  # minus the thread reading
        if i + 1 < samples:
            time.sleep(interval)
    others = sorted(counts)[len(counts) // 2]
    return max(1, min(cpus, os.cpu_count() or cpus) - others)


@contextlib.contextmanager
def thread_limit(threads: int) -> Iterator[int]:
    """Run a block with `torch.set_num_threads(threads)`, then restore the caller's setting."""
    saved = torch.get_num_threads()
    if threads != saved:
        torch.set_num_threads(threads)
    try:
        yield threads
    finally:
        if torch.get_num_threads() != saved:
            torch.set_num_threads(saved)


def configure_threads(max_threads: int | None = None) -> int:
    """Set torch's CPU thread count for this machine and return it.

    Call once at start-up (app, notebook, script). The count is, in order of precedence: the
    OMP_NUM_THREADS environment variable if set (a user's explicit request is kept as is), else
    the CPUs this process may use (affinity mask and cgroup quota, not the machine's core count),
    capped by `max_threads`. A busy machine needs no smaller count: `render` spreads the decoder
    over single-threaded workers and sizes the encoder's threads by the idle CPUs at each call.

    Args:
        max_threads: upper bound (None: no bound). Ignored when OMP_NUM_THREADS is set.
    Returns:
        The thread count now set (`torch.get_num_threads()`).
    """
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env:
        try:
            threads = int(env)
        except ValueError:
            raise ValueError(f"OMP_NUM_THREADS must be a whole number of threads, got {env!r}: "
                             f"fix or unset it") from None
        if threads < 1:
            raise ValueError(f"OMP_NUM_THREADS must be at least 1, got {threads}: fix or unset it")
    else:
        threads = available_cpus()
        if max_threads is not None:
            if max_threads < 1:
                raise ValueError(f"max_threads must be at least 1, got {max_threads}")
            threads = min(threads, max_threads)
    torch.set_num_threads(threads)
    return torch.get_num_threads()


DEVICE_TYPES = ("cpu", "cuda", "mps")


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """"auto" -> CUDA when available, else CPU; "cpu", "cuda", "cuda:K" or "mps" when this machine
    has it. Anything else is a ValueError with one line saying why (an unknown name, a GPU that is
    not there, or a device without data such as "meta")."""
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ValueError(f"unknown device {str(device)!r}; use auto, cpu, cuda, cuda:K or mps") from None
    if resolved.type not in DEVICE_TYPES:
        raise ValueError(f"device {str(device)!r} cannot run a model here; use auto, cpu, cuda, cuda:K or mps")
    if resolved.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {str(device)!r}: this machine has no CUDA GPU that torch can use; "
                             "use --device cpu (or auto)")
        if resolved.index is not None and resolved.index >= torch.cuda.device_count():
            raise ValueError(f"device {str(device)!r}: there are only {torch.cuda.device_count()} CUDA GPU(s)")
    if resolved.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ValueError(f"device {str(device)!r}: Apple's MPS is not available on this machine; use cpu")
    return resolved
