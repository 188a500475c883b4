"""Shared by the demo's tests: weights to run with, a launched app, small image files."""
from __future__ import annotations

import os
import socket
import tempfile
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported anywhere
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Cached example results of this run, not of an older checkout (the app's default is ./.gradio/).
os.environ.setdefault("GRADIO_EXAMPLES_CACHE", tempfile.mkdtemp(prefix="arasfsr-examples-"))

import pytest  # noqa: E402
import torch  # noqa: E402

import arasfsr  # noqa: E402
import arasfsr.weights  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHIPPED = [REPO / "weights" / arasfsr.weights.DEFAULT_WEIGHTS[name] for name in ("arasfsr", "liif", "lte")]


def make_standins(folder: Path, names=("arasfsr", "liif", "lte")) -> Path:
    """Untrained tiny models under the shipped file names."""
    torch.manual_seed(0)
    for name in names:
        arasfsr.save_model(arasfsr.create_model(name, preset="tiny").eval(),
                           folder / arasfsr.weights.DEFAULT_WEIGHTS[name],
                           training={"data": "untrained stand-in for tests", "steps": 0})
    return folder


@contextmanager
def demo_weights(folder: Path):
    """The shipped weights when weights/ holds ARASFSR, LIIF and LTE, else tiny stand-ins in `folder`.

    Yields the weights folder in use. arasfsr.weights.WEIGHTS_DIR is read at import, so it is patched.
    """
    if all(path.is_file() for path in SHIPPED):
        folder = SHIPPED[0].parent
    else:
        make_standins(folder)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(arasfsr.weights, "WEIGHTS_DIR", folder)
        yield folder


@contextmanager
def one_thread():
    """Tiny inputs: one torch thread is as fast, and polite on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def launched_app():
    """build_demo() served on 127.0.0.1 in this process; yields its URL."""
    from demo.ui import LAUNCH_KWARGS, build_demo

    demo = build_demo()
    _, url, _ = demo.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True,
                            quiet=True, **LAUNCH_KWARGS)
    try:
        yield url
    finally:
        demo.close()
