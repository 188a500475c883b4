"""Training batches and evaluation pairs for an implicit-decoder SR model.

Training (`SRBatchCollate`, a DataLoader `collate_fn` over HR masters):
  1. one LR size s per batch, so the LR tensors stack;
  2. per sample a scale r, HR = bicubic(master, round(s * r)) and LR = degrade(master, (s, s)),
     both straight from the master (never LR from HR), as the authors do;
  3. a random subset of HR pixels as queries: their centre coordinates, cell and colours.
Evaluation (`make_eval_pair`): LR and HR both by bicubic resize from the master.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import get_worker_info

from ..augment import augment
from ..coords import make_cell, make_coord
from ..degrade import bicubic_resize, check_kind, degrade


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float tensor (3, H, W) in [0, 1]."""
    array = np.asarray(img.convert("RGB"), dtype=np.uint8)  # (H, W, 3)
    return torch.from_numpy(array.copy()).permute(2, 0, 1).float().div_(255.0)


def _square_side(img) -> int:
    if not isinstance(img, Image.Image):
        raise TypeError(f"expected HR masters as PIL images, got {type(img).__name__}")
    w, h = img.size
    if w != h:
        raise ValueError(f"HR masters must be square aligned faces, got {w}x{h}; "
                         "center-crop them first (e.g. with a FaceFolder transform)")
    return w


class SRBatchCollate:
    """Turn a list of HR master PIL images into one training batch of LR images and HR queries.

    Sizes. Per batch one LR size s is drawn uniformly from the integers in
    [input_sizes[0], input_sizes[1]]. If s exceeds the smallest master in the batch, s becomes that
    master's size (the largest s that fits every master; it may then lie below input_sizes[0]), so
    the collate never fails and never upsamples. Per sample r ~ U[scale_range[0], r_max] with
    r_max = min(scale_range[1], master_size / s); when r_max < scale_range[0], r = r_max. The HR
    target is round(s * r) px, never larger than the master. `scale` reports the realised scale
    hr_size / s, the one the cell encodes.

    Queries. `num_queries` HR pixels per sample, without replacement. An HR image with fewer pixels
    contributes every pixel once plus extra pixels drawn with replacement to fill up to num_queries.

    Randomness. Pass `rng` to make a batch a pure function of it (the trainer does: batch k uses a
    generator seeded with (seed, rank, k), in the main process or in any DataLoader worker).
    Without `rng`, a numpy Generator seeded with (seed, worker id, call counter): with
    num_workers=0 the batches are reproducible for a given seed and data order. DataLoader workers
    restart from a fresh copy every epoch, so there the key also holds the loader's per-epoch worker
    seed; those runs are reproducible when torch is seeded.

    Augmentation. With `hflip`, each face is mirrored left-right with probability 1/2 (an aligned
    face mirrored is still an aligned face, so the global coordinate prior stays valid). With
    `photometric` / `geometric` > 0, each master is also given, with that probability, a random
    colour cast, gamma, contrast and saturation / a roll of up to 10 degrees, zoom and shift
    (`arasfsr.augment`); LR and HR are both made from the augmented master.

    Crops. With `crop` (photographs, not aligned faces), the HR target is a random hr_size square
    of the master at its own pixels instead of the whole master resized, as LIIF trains on DIV2K;
    the LR is made from that patch.

    Args:
        input_sizes: inclusive (min, max) LR side in pixels.
        scale_range: (min, max) upscaling factor.
        num_queries: HR pixels sampled per image (N).
        degradation: "bicubic", "nn_jpeg", "realistic", "jpegQ", or a callable
            (master, (s, s), rng) -> PIL LR image.
        seed: base seed.
        hflip: random horizontal flips.
        photometric, geometric: probabilities of the two augmentation families (0: off).
        crop: HR patches at native resolution instead of the whole master (photo tiles).
    Returns (per call) a dict of tensors:
        lr (B, 3, s, s) in [0, 1]; coord (B, N, 2) (row, col) pixel centres of the queried HR pixels;
        cell (B, N, 2) = (2 / H_hr, 2 / W_hr); gt (B, N, 3) in [0, 1]; scale (B,) = H_hr / s.
    """

    def __init__(self, input_sizes: tuple[int, int] = (16, 64), scale_range: tuple[float, float] = (1.0, 8.0),
                 num_queries: int = 1024, degradation: str | Callable = "bicubic", seed: int = 0,
                 hflip: bool = False, photometric: float = 0.0, geometric: float = 0.0, crop: bool = False):
        lo, hi = input_sizes
        if int(lo) != lo or int(hi) != hi or not 1 <= lo <= hi:
            raise ValueError(f"input_sizes must be integers with 1 <= min <= max, got {input_sizes}")
        if not 1.0 <= scale_range[0] <= scale_range[1]:
            raise ValueError(f"scale_range must satisfy 1 <= min <= max, got {scale_range}")
        if num_queries < 1:
            raise ValueError(f"num_queries must be >= 1, got {num_queries}")
        if isinstance(degradation, str):
            check_kind(degradation)
        self.input_sizes = (int(lo), int(hi))
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.num_queries = int(num_queries)
        self.degradation = degradation
        self.seed = int(seed)
        self.hflip = bool(hflip)
        if not (0 <= photometric <= 1 and 0 <= geometric <= 1):
            raise ValueError(f"augmentation probabilities must be in [0, 1], got {photometric} and {geometric}")
        self.photometric, self.geometric = float(photometric), float(geometric)
        self.crop = bool(crop)
        self.calls = 0

    def _rng(self) -> np.random.Generator:
        info = get_worker_info()
        key = [self.seed, 0, self.calls]
        if info is not None:
            # worker processes start from a fresh copy (calls = 0) every epoch; the DataLoader's
            # per-epoch base seed (info.seed = base + id) keeps epochs from repeating each other
            key = [self.seed, info.id + 1, self.calls, info.seed]
        self.calls += 1
        return np.random.default_rng(key)

    def _lr(self, master: Image.Image, s: int, rng: np.random.Generator) -> Image.Image:
        if callable(self.degradation):
            return self.degradation(master, (s, s), rng)
        return degrade(master, (s, s), kind=self.degradation, rng=rng)

    def __call__(self, masters: Sequence[Image.Image],
                 rng: np.random.Generator | None = None) -> dict[str, torch.Tensor]:
        if len(masters) == 0:
            raise ValueError("cannot collate an empty batch")
        rng = self._rng() if rng is None else rng
        sides = [_square_side(m) for m in masters]
        s = int(rng.integers(self.input_sizes[0], self.input_sizes[1] + 1))
        s = min(s, min(sides))  # never ask a master for more pixels than it has

        lrs, coords, cells, gts, scales = [], [], [], [], []
        for master, side in zip(masters, sides):
            if self.hflip and rng.random() < 0.5:
                master = master.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            if self.photometric or self.geometric:
                master = augment(master, rng, self.photometric, self.geometric)
            r_max = min(self.scale_range[1], side / s)
            r = r_max if r_max <= self.scale_range[0] else rng.uniform(self.scale_range[0], r_max)
            hr_size = min(side, max(s, round(s * r)))  # s <= hr_size <= side
            if self.crop:  # photos: an HR patch at native pixels, the LR made from it
                top, left = (int(v) for v in rng.integers(0, side - hr_size + 1, 2))
                master = master.crop((left, top, left + hr_size, top + hr_size))
            hr = to_tensor(bicubic_resize(master, (hr_size, hr_size)))  # (3, H, W)
            lrs.append(to_tensor(self._lr(master, s, rng)))  # (3, s, s)

            pixels = hr_size * hr_size
            if pixels >= self.num_queries:
                index = rng.choice(pixels, self.num_queries, replace=False)
            else:  # every pixel once, then fill up with repeats
                extra = rng.integers(0, pixels, self.num_queries - pixels)
                index = np.concatenate([rng.permutation(pixels), extra])
            index = torch.from_numpy(index.astype(np.int64))
            coords.append(make_coord((hr_size, hr_size))[index])  # (N, 2)
            cells.append(make_cell((hr_size, hr_size)).expand(self.num_queries, 2))
            gts.append(hr.reshape(3, -1).t()[index])  # (N, 3), row-major like make_coord
            scales.append(hr_size / s)

        return {"lr": torch.stack(lrs), "coord": torch.stack(coords), "cell": torch.stack(cells),
                "gt": torch.stack(gts), "scale": torch.tensor(scales, dtype=torch.float32)}


def make_eval_pair(master: Image.Image, input_size: int, scale: float,
                   degradation: str = "bicubic") -> tuple[Image.Image, Image.Image]:
    """The evaluation protocol: LR of input_size px and HR of round(input_size * scale) px, each
    resized straight from the master (HR by bicubic, LR by `degradation`).

    Raises ValueError when the HR size exceeds the master: a ground truth made by upsampling the
    master would not be a ground truth.

    Returns:
        (lr, hr) PIL images, (input_size, input_size) and (hr_size, hr_size).
    """
    side = _square_side(master)
    if input_size < 1 or scale < 1:
        raise ValueError(f"need input_size >= 1 and scale >= 1, got {input_size} and {scale}")
    hr_size = round(input_size * scale)
    if hr_size > side:
        raise ValueError(f"HR size {hr_size} (= {input_size} x {scale}) exceeds the {side} px master; "
                         "use a larger master or a smaller input_size / scale")
    hr = bicubic_resize(master, (hr_size, hr_size))
    lr = degrade(master, (input_size, input_size), kind=degradation)
    return lr, hr
