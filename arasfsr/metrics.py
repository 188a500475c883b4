"""The authors' evaluation metrics: PSNR and SSIM on the uint8 Y channel, full image, no shave."""
from __future__ import annotations

import numpy as np
from PIL import Image
from skimage.metrics import structural_similarity


def rgb_to_y(image) -> np.ndarray:
    """RGB (PIL image or (H, W, 3) uint8 / float [0, 1] array) -> uint8 Y (H, W).

    Y = 16 + 65.481 R + 128.553 G + 24.966 B with R, G, B in [0, 1] (ITU-R BT.601, in [16, 235]),
    then cast to uint8 (truncation), as in the authors' code.
    """
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image)
    rgb = rgb.astype(np.float64) / 255.0 if rgb.dtype == np.uint8 else rgb.astype(np.float64)
    y = 16.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2])
    return y.astype(np.uint8)  # truncation, as a uint8 cast does


def psnr_y(pred, target) -> float:
    """PSNR in dB between the Y channels of two RGB images of the same size (peak 255)."""
    a, b = rgb_to_y(pred).astype(np.float64), rgb_to_y(target).astype(np.float64)
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} vs {b.shape}")
    mse = np.mean((a - b) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim_y(pred, target) -> float:
    """SSIM between the Y channels (scikit-image defaults, data range 255)."""
    a, b = rgb_to_y(pred), rgb_to_y(target)
    if a.shape != b.shape:
        raise ValueError(f"images differ in size: {a.shape} vs {b.shape}")
    if min(a.shape) < 7:
        raise ValueError(f"SSIM needs images of at least 7x7 px, got {a.shape}")
    return float(structural_similarity(a, b, data_range=255))
