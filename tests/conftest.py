import numpy as np
import pytest
import torch

import arasfsr


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
