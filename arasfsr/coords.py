"""Coordinate conventions shared by every model, the trainer and inference.

All coordinates are pixel centres in [-1, 1], in (row, col) order. For an axis of n pixels the
centres are -1 + r + 2 r i with r = 1 / n, i = 0..n-1, computed in `pixel_centres` only: the
same number written as -1 + (2i + 1) / n rounds differently, and at odd integer scales where a
query lands exactly on an LR pixel centre the rounding would decide the local-ensemble weights.
The cell of an output pixel is its size in the same units, (2 / H, 2 / W).
`torch.nn.functional.grid_sample` wants (x, y) = (col, row): the flip happens in exactly one
place, `sample_at`.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def pixel_centres(n: int, index: torch.Tensor) -> torch.Tensor:
    """Centres of pixels `index` (integer tensor) on an axis of n pixels: -1 + r + 2 r i, r = 1/n."""
    if n < 1:
        raise ValueError(f"grid sizes must be positive, got {n}")
    r = 1.0 / n  # half a pixel
    return -1 + r + 2 * r * index


def make_coord(shape: tuple[int, int], device=None, dtype=torch.float32, flatten: bool = True) -> torch.Tensor:
    """Pixel-centre coordinates of an H x W grid.

    Args:
        shape: (H, W).
        flatten: return (H*W, 2) when True, (H, W, 2) otherwise.
    Returns:
        (row, col) coordinates in [-1, 1].
    """
    if any(n < 1 for n in shape):
        raise ValueError(f"grid sizes must be positive, got {tuple(shape)}")
    axes = [pixel_centres(n, torch.arange(n, device=device, dtype=dtype)) for n in shape]
    grid = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1)  # (H, W, 2)
    return grid.reshape(-1, 2) if flatten else grid


def grid_coord(shape: tuple[int, int], flat_index: torch.Tensor, dtype=torch.float32) -> torch.Tensor:
    """(row, col) centres of the pixels with row-major flat indices `flat_index` of an H x W grid,
    shape (N, 2): bit-identical to `make_coord(shape)[flat_index]` without the full-size grid."""
    height, width = shape
    rows = torch.div(flat_index, width, rounding_mode="floor").to(dtype)
    cols = (flat_index % width).to(dtype)
    return torch.stack([pixel_centres(height, rows), pixel_centres(width, cols)], dim=-1)


def make_cell(shape: tuple[int, int], device=None, dtype=torch.float32) -> torch.Tensor:
    """Size of one pixel of an H x W grid in [-1, 1] units, (2/H, 2/W), shape (2,). H and W may be
    fractional: a crop or tile that spans H x W output pixels."""
    h, w = shape
    return torch.tensor([2.0 / h, 2.0 / w], device=device, dtype=dtype)


def sample_at(image: torch.Tensor, coord: torch.Tensor, mode: str = "bilinear",
              padding_mode: str = "border") -> torch.Tensor:
    """Sample a (B, C, h, w) image at (B, N, 2) (row, col) coordinates -> (B, N, C)."""
    grid = coord.flip(-1).unsqueeze(1)  # grid_sample reads (x, y) = (col, row): (B, 1, N, 2)
    out = F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=False)
    return out[:, :, 0, :].permute(0, 2, 1)  # (B, N, C)
