import os

# One thread for the tests and every process they start: torch's default (one per core) makes
# small ops 5-30x slower when the machine is busy (many parallel regions waiting on a parked
# thread), and the tests are small. Set before torch starts its thread pool.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np
import pytest
import torch

import arasfsr

torch.set_num_threads(1)


@pytest.fixture
def tiny_model():
    torch.manual_seed(0)
    return arasfsr.create_model("arasfsr", preset="tiny").eval()


@pytest.fixture
def face_image():
    """A smooth synthetic RGB image (no photo needed): 20 x 28."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:20, 0:28]
    base = np.stack([np.sin(x / 4), np.cos(y / 5), np.sin((x + y) / 6)], -1) * 0.4 + 0.5
    return (np.clip(base + rng.normal(0, 0.03, base.shape), 0, 1) * 255).astype(np.uint8)


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: takes minutes (e.g. torch.compile); deselect with -m 'not slow'")
