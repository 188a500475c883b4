"""CelebA-HQ (or any face set) from the Hugging Face hub, e.g. `eurecom-ds/celeba-hq-256` (30k, 256 px)
or `PhilSad/celeba-hq-1.5k`.

`datasets` is an optional dependency, imported only when `load_hf_faces` is called. CelebA terms:
non-commercial research use, no redistribution of the images.
"""
from __future__ import annotations

import io
from typing import Any

from PIL import Image
from torch.utils.data import Dataset, Subset

CELEBA_HQ_SIZE = 30000
CELEBA_HQ_TRAIN = 25000  # the authors: sorted images 0..24999 train, 25000..29999 test
_IMAGE_NAMES = ("image", "img", "jpg", "jpeg", "png", "pixel_values")


def _detect_image_key(dataset: Any) -> str:
    """The image column: a `datasets.Image` feature, else a usual name, else a PIL-valued column."""
    from datasets import Image as ImageFeature  # only called once `datasets` is importable

    for key, feature in dataset.features.items():
        if isinstance(feature, ImageFeature):
            return key
    for key in _IMAGE_NAMES:
        if key in dataset.column_names:
            return key
    if len(dataset) > 0:
        for key, value in dataset[0].items():
            if isinstance(value, Image.Image):
                return key
    raise ValueError(f"no image column found among {dataset.column_names}; pass image_key=...")


def _to_pil(value: Any) -> Image.Image:
    if isinstance(value, Image.Image):
        return value
    if isinstance(value, dict) and value.get("bytes") is not None:  # undecoded datasets.Image
        return Image.open(io.BytesIO(value["bytes"]))
    if isinstance(value, dict) and value.get("path"):
        return Image.open(value["path"])
    raise ValueError(f"cannot read an image from a {type(value).__name__}")


class HFFaces(Dataset):
    """A torch Dataset over one column of a `datasets.Dataset`, returning RGB PIL images."""

    def __init__(self, dataset: Any, image_key: str):
        self.dataset = dataset
        self.image_key = image_key

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Image.Image:
        return _to_pil(self.dataset[int(index)][self.image_key]).convert("RGB")


def load_hf_faces(name_or_dataset: str | Any, split: str = "train", image_key: str | None = None,
                  limit: int | None = None) -> HFFaces:
    """Faces from a Hugging Face dataset, as a torch Dataset of RGB PIL images (row order kept).

    Args:
        name_or_dataset: a hub name such as "eurecom-ds/celeba-hq-256" (downloads; needs network),
            a `datasets.Dataset`, or a `datasets.DatasetDict` (then `split` picks one).
        split: the hub split to load.
        image_key: the image column; default: auto-detected.
        limit: keep only the first `limit` rows.
    """
    try:
        import datasets
    except ImportError as error:
        raise ImportError("load_hf_faces needs the optional package `datasets`: pip install datasets") from error

    if isinstance(name_or_dataset, str):
        dataset = datasets.load_dataset(name_or_dataset, split=split)
    elif isinstance(name_or_dataset, datasets.DatasetDict):
        if split not in name_or_dataset:
            raise ValueError(f"split {split!r} not in this DatasetDict: {list(name_or_dataset)}")
        dataset = name_or_dataset[split]
    elif isinstance(name_or_dataset, datasets.Dataset):
        dataset = name_or_dataset
    else:
        raise TypeError("name_or_dataset must be a hub name, a datasets.Dataset or a datasets.DatasetDict, "
                        f"got {type(name_or_dataset).__name__}")
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1 or None, got {limit}")
        dataset = dataset.select(range(min(limit, len(dataset))))
    if image_key is None:
        image_key = _detect_image_key(dataset)
    elif image_key not in dataset.column_names:
        raise ValueError(f"image_key {image_key!r} not among the columns {dataset.column_names}")
    return HFFaces(dataset, image_key)


def authors_split(faces: Dataset, part: str = "train") -> Subset:
    """The authors' CelebA-HQ split: the first 25000 of the 30000 sorted images train, the rest test.

    For a smaller (or larger) mirror the boundary scales proportionally: the first
    round(n * 25000 / 30000) rows train, the rest test. The row order is taken as the sorted order;
    this matches the authors' images only if the mirror keeps CelebA-HQ's index order (e.g.
    `eurecom-ds/celeba-hq-256` with its 30000 rows; not verified offline). A small mirror such as
    `PhilSad/celeba-hq-1.5k` is a different subset, so its numbers are not comparable to the paper's.

    Args:
        faces: any sized Dataset (e.g. from `load_hf_faces`).
        part: "train" or "test".
    """
    if part not in ("train", "test"):
        raise ValueError(f"part must be 'train' or 'test', got {part!r}")
    n = len(faces)
    boundary = round(n * CELEBA_HQ_TRAIN / CELEBA_HQ_SIZE)
    return Subset(faces, range(boundary) if part == "train" else range(boundary, n))
