"""Around one model run: progress with a time estimate, the Stop button, and memory given back after.

- Progress: the package reports (pixels done, total); `Tracker` turns that into a fraction of the
  whole job (phases weighted by their expected share of the time) and a "about N s left" estimate
  from the elapsed time, refreshed at every chunk.
- Stop: `request_stop(session)` sets a flag; the next progress call of that session's run raises
  `Stopped`, so a long render ends within one chunk of queries.
- Memory: `release_memory()` after each run collects garbage and hands freed heap pages back to the
  system (glibc keeps them otherwise: the server stayed at its peak after one large job).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import gc
import threading
import time
from collections.abc import Callable

import torch

from .errors import Stopped

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening)

_stops: set[str] = set()
_stops_lock = threading.Lock()


def request_stop(session: str | None) -> None:
    """Ask the run of this browser session to stop at its next chunk."""
    if session:
        with _stops_lock:
            _stops.add(session)


def clear_stop(session: str | None) -> None:
    with _stops_lock:
        _stops.discard(session)


def stop_requested(session: str | None) -> bool:
    with _stops_lock:
        return session in _stops


class Tracker:
    """Reports a job's progress to `progress` (which may be None) and checks for Stop.

    `phase(start, span, what)` returns an arasfsr-style (done, total) callback mapping its work onto
    [start, start + span] of the whole. The description ends in a time estimate once 3% is done:
    remaining = elapsed x (1 - fraction) / fraction, which is right when fractions track time.
    """

    def __init__(self, progress: Progress | None, session: str | None = None):
        self.progress, self.session = progress, session
        self.started = time.perf_counter()
        self.reports: list[tuple[float, float]] = []   # (seconds since start, fraction): for tests
        clear_stop(session)

    def __call__(self, fraction: float, what: str) -> None:
        if stop_requested(self.session):
            clear_stop(self.session)
            raise Stopped("Stopped: the run was cancelled before it finished.")
        fraction = min(max(fraction, 0.0), 1.0)
        elapsed = time.perf_counter() - self.started
        self.reports.append((elapsed, fraction))
        if self.progress is None:
            return
        if 0.03 <= fraction < 1:
            what = f"{what} (about {elapsed * (1 - fraction) / fraction:.0f} s left)"
        self.progress(fraction, what)

    def phase(self, start: float, span: float, what: str) -> Callable[[int, int], None]:
        return lambda done, total: self(start + span * done / max(total, 1), what)


def release_memory() -> None:
    """Free what the last run left: Python garbage, torch's CUDA cache, and glibc's free heap pages."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    _malloc_trim()


def _malloc_trim() -> None:
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        if libc is not None and hasattr(libc, "malloc_trim"):  # glibc only (not musl, macOS, Windows)
            libc.malloc_trim(0)
    except OSError:
        pass
