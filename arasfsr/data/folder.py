"""A dataset over any folder of face images, and a deterministic identity-disjoint split.

`FaceFolder` returns RGB PIL images: the HR *masters*. Resizing, degradation and conversion to
tensors happen later, per batch, in `arasfsr.data.samples`, because the LR and HR sizes are drawn
per batch.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from pathlib import Path

from PIL import Image
from torch.utils.data import Dataset

from ..io import IMAGE_SUFFIXES, read_image

IMAGE_EXTENSIONS = tuple(sorted(IMAGE_SUFFIXES))  # one suffix set for the CLI and training folders
SPLITS = ("train", "val", "test")
MANIFEST = "manifest.json"


def list_images(root: str | Path) -> list[Path]:
    """All image files under `root` (recursive, case-insensitive extensions), sorted by relative path."""
    root = Path(root)
    files = [p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def load_rgb(path: str | Path, background: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """Open an image as RGB; transparent pixels are composited over `background`.

    Read by `arasfsr.io.read_image` (EXIF orientation, first frame, decompression-bomb guard): a
    damaged file raises `arasfsr.io.ImageError` (a ValueError) whose one-line message names it.
    """
    img = read_image(path, max_pixels=None)
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (*background, 255))
        canvas.alpha_composite(rgba)
        return canvas.convert("RGB")
    return img.convert("RGB")


class FaceFolder(Dataset):
    """Face images under a folder, as RGB PIL images, in sorted path order.

    Without a split every image file below `root` is used (recursively). With `split` the folder
    must hold a `manifest.json` as written by `python -m arasfsr.data.offline`; the files whose
    entry has that split are used, in sorted name order.

    Args:
        root: folder of images.
        split: None, "train", "val" or "test".
        transform: optional callable applied to each PIL image (e.g. a torchvision transform).
    Item:
        `transform(img)` or the RGB PIL image (H, W vary per file).
    """

    def __init__(self, root: str | Path, split: str | None = None,
                 transform: Callable | None = None):
        self.root = Path(root)
        if not self.root.is_dir():
            raise ValueError(f"face folder {self.root} does not exist or is not a folder")
        self.split = split
        self.transform = transform
        self.records: list[dict] = []  # manifest entries, when a split is used
        if split is None:
            self.paths = list_images(self.root)
        else:
            if split not in SPLITS:
                raise ValueError(f"split must be None or one of {SPLITS}, got {split!r}")
            manifest = self.root / MANIFEST
            if not manifest.is_file():
                raise ValueError(f"split={split!r} needs {manifest}; build one with "
                                 "`python -m arasfsr.data.offline` or pass split=None")
            entries = json.loads(manifest.read_text(encoding="utf-8"))["files"]
            self.records = sorted((e for e in entries if e["split"] == split), key=lambda e: e["name"])
            self.paths = [self.root / e["name"] for e in self.records]
            missing = [p for p in self.paths if not p.is_file()]
            if missing:
                raise ValueError(f"{len(missing)} files listed in {manifest} are missing, "
                                 f"e.g. {missing[0]}; rebuild the folder")
        if not self.paths:
            raise ValueError(f"no images found in {self.root}" + (f" for split {split!r}" if split else ""))

    @classmethod
    def for_split(cls, root: str | Path, split: str, transform: Callable | None = None) -> "FaceFolder":
        """The one rule for choosing faces: the manifest's `split` when the folder has a manifest,
        else every image in the folder (a plain folder of aligned faces has no splits)."""
        if (Path(root) / MANIFEST).is_file():
            return cls(root, split=split, transform=transform)
        return cls(root, transform=transform)

    @property
    def names(self) -> list[str]:
        """File names relative to `root`, with forward slashes."""
        return [p.relative_to(self.root).as_posix() for p in self.paths]

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        img = load_rgb(self.paths[index])
        return self.transform(img) if self.transform is not None else img


def _hash_key(seed: int, identity: str) -> str:
    return hashlib.sha256(f"{seed}:{identity}".encode("utf-8")).hexdigest()


def deterministic_split(names: Sequence[str], identities: Sequence[str] | None = None,
                        fractions: tuple[float, float, float] = (0.8, 0.1, 0.1),
                        seed: int = 0) -> dict[str, list[str]]:
    """Split files into identity-disjoint train / val / test lists, the same way every time.

    Identities are ordered by sha256(f"{seed}:{identity}") (stable across runs, machines and
    Python versions), then whole identities are dealt to train until it holds at least
    round(fractions[0] * n) of the n files, then to val until train + val hold
    round((fractions[0] + fractions[1]) * n), the rest to test. Whole identities move together, so
    the sizes are approximate, and with few identities a split can come out empty.

    Args:
        names: unique file names.
        identities: one identity per name (e.g. person id); default: each name is its own identity.
        fractions: (train, val, test), non-negative, summing to 1.
        seed: changes the order, hence the split.
    Returns:
        {"train": [...], "val": [...], "test": [...]}, each list in the input order of `names`.
    """
    names = list(names)
    if len(set(names)) != len(names):
        raise ValueError("names must be unique")
    identities = names if identities is None else list(identities)
    if len(identities) != len(names):
        raise ValueError(f"got {len(names)} names but {len(identities)} identities")
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions}")

    count: dict[str, int] = {}
    for identity in identities:
        count[identity] = count.get(identity, 0) + 1
    order = sorted(count, key=lambda i: (_hash_key(seed, i), i))
    bounds = (round(fractions[0] * len(names)), round((fractions[0] + fractions[1]) * len(names)))
    split_of: dict[str, str] = {}
    dealt = 0
    for identity in order:
        # the split is chosen by how many files were dealt before this identity
        split_of[identity] = "train" if dealt < bounds[0] else "val" if dealt < bounds[1] else "test"
        dealt += count[identity]
    out: dict[str, list[str]] = {s: [] for s in SPLITS}
    for name, identity in zip(names, identities):
        out[split_of[identity]].append(name)
    return out
