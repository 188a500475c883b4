"""CelebA-HQ (or any face set) from the Hugging Face hub, e.g. `eurecom-ds/celeba-hq-256` (30k, 256 px)
or `PhilSad/celeba-hq-1.5k`.

`load_hf_faces` wraps a hub dataset (or a local one) as a torch Dataset of PIL images;
`prepare_celebahq` writes it as a face folder with the authors' split that `arasfsr.train` reads;
`hub_reachable` tells, in about a second, whether the hub can be reached at all.

`datasets` is an optional dependency, imported only when a function here needs it. CelebA terms:
non-commercial research use, no redistribution of the images.
"""
from __future__ import annotations

import io
import json
import os
import socket
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from PIL import Image
from torch.utils.data import DataLoader, Dataset, Subset

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
            a folder written by `save_to_disk`, a `datasets.Dataset`, or a `datasets.DatasetDict`
            (then `split` picks one).
        split: the hub split to load.
        image_key: the image column; default: auto-detected.
        limit: keep only the first `limit` rows.
    Returns:
        an `HFFaces` dataset; item i is row i's image as an RGB PIL image.
    Raises:
        ImportError without `datasets`; ConnectionError when a hub name cannot be downloaded.
    """
    try:
        import datasets
    except ImportError as error:
        raise ImportError("load_hf_faces needs the optional package `datasets`: pip install 'arasfsr[hf]' "
                          "(from a checkout: pip install '.[hf]')") from error

    if isinstance(name_or_dataset, (str, os.PathLike)) and Path(name_or_dataset).is_dir():
        # a folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`: no network
        return load_hf_faces(datasets.load_from_disk(str(name_or_dataset)), split, image_key, limit)
    if isinstance(name_or_dataset, str):
        try:
            dataset = datasets.load_dataset(name_or_dataset, split=split)
        except ConnectionError as error:  # what `datasets` raises when the hub cannot be reached
            raise ConnectionError(f"could not download {name_or_dataset!r} from the Hugging Face hub ({error}); "
                                  "check the internet connection, or pass a local dataset folder "
                                  "(written by save_to_disk) or a datasets.Dataset") from error
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


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub answers a TCP connection (a quick check before a download).

    False at once when `HF_HUB_OFFLINE` or `HF_DATASETS_OFFLINE` is set to 1; otherwise one
    connection to port 443 of `HF_ENDPOINT` (default https://huggingface.co), at most `timeout` s.
    (`datasets.load_dataset` itself retries for about 25 s before it gives up.)
    """
    if any(os.environ.get(name, "").lower() in ("1", "true", "yes", "on")
           for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:  # no DNS, refused, timed out
        return False


class _FaceWriter(Dataset):
    """Item i decodes row indices[i], resizes it (if `size`), writes `<split>/<row:05d>.png` and
    returns its manifest entry: the work a DataLoader worker does."""

    def __init__(self, faces: Dataset, split_of: dict[int, str], folder: Path, size: int | None):
        self.faces, self.split_of, self.folder, self.size = faces, split_of, folder, size
        self.indices = sorted(split_of)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict:
        index = self.indices[i]
        image = self.faces[index]
        if self.size is not None and image.size != (self.size, self.size):
            image = image.resize((self.size, self.size), Image.BICUBIC)
        name = f"{self.split_of[index]}/{index:05d}.png"
        image.save(self.folder / name)
        return {"name": name, "split": self.split_of[index], "source_index": int(index), "size": list(image.size)}


def prepare_celebahq(source: str | os.PathLike | Any, folder: str | os.PathLike, val_fraction: float = 0.02,
                     limit: int | None = None, size: int | None = None, num_workers: int = 0,
                     progress: bool = True) -> dict:
    """Write a Hugging Face face set as a face folder with the authors' split, once.

    The rows are split with `authors_split` (the first 25/30 train, the rest test); the last
    `val_fraction` of the train part becomes `val` (for the trainer's validation curve). Each row
    is written as `<split>/<row:05d>.png` and listed in `manifest.json`, the format
    `arasfsr.data.FaceFolder(folder, split=...)` and `arasfsr.train` read. A folder that already
    holds a manifest is left as it is (delete it to rebuild).

    Args:
        source: a hub name (e.g. "PhilSad/celeba-hq-1.5k"; downloads), a folder written by
            `save_to_disk`, a `datasets.Dataset` or a `datasets.DatasetDict` (its "train" split).
        folder: output folder (created).
        val_fraction: share of the train part held out as `val`, in [0, 0.5].
        limit: use only the first `limit` rows (before the split).
        size: resize every face to size x size px (bicubic); None keeps the stored size.
        num_workers: DataLoader worker processes that decode, resize and write the PNGs
            (0: in this process). Decoding dominates: use about the number of CPU cores.
        progress: show a progress bar.
    Returns:
        the manifest as a dict: {"version", "source", "licence", "split", "counts", "files"}.
    Raises:
        ConnectionError when a hub name cannot be downloaded; ValueError for bad arguments.
    """
    folder = Path(folder)
    manifest_path = folder / "manifest.json"
    if manifest_path.is_file():
        return json.loads(manifest_path.read_text(encoding="utf-8"))
    if not 0 <= val_fraction <= 0.5:
        raise ValueError(f"val_fraction must be in [0, 0.5], got {val_fraction}")
    if size is not None and size < 8:
        raise ValueError(f"size must be at least 8 px or None, got {size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    faces = load_hf_faces(source, limit=limit)
    train_part, test_part = authors_split(faces, "train"), authors_split(faces, "test")
    n_val = round(len(train_part) * val_fraction)
    train_rows = list(train_part.indices)
    parts = {"train": train_rows[:len(train_rows) - n_val], "val": train_rows[len(train_rows) - n_val:],
             "test": list(test_part.indices)}
    if not parts["train"] or not parts["test"]:
        raise ValueError(f"{len(faces)} rows give {len(parts['train'])} train and {len(parts['test'])} test "
                         "faces; use a larger dataset (or limit)")
    split_of = {index: split for split, indices in parts.items() for index in indices}
    for split in parts:
        (folder / split).mkdir(parents=True, exist_ok=True)
    writer = _FaceWriter(faces, split_of, folder, size)
    # batch_size=None: one manifest entry per item, no collation; the workers decode, resize and
    # write in parallel, the main process only collects the entries (in row order)
    loader = DataLoader(writer, batch_size=None, num_workers=num_workers)
    if progress:
        from tqdm.auto import tqdm
        loader = tqdm(loader, total=len(writer), desc=f"writing {folder.name}", unit="face")
    files = list(loader)
    source_name = source if isinstance(source, str) else type(source).__name__
    manifest = {"version": 1, "source": f"huggingface:{source_name}",
                "licence": "CelebA: non-commercial research use only, no redistribution",
                "split": f"authors' (first {len(train_rows)} of {len(faces)} rows train, rest test); "
                         f"last {n_val} of train as val",
                "counts": {split: len(indices) for split, indices in parts.items()}, "files": files}
    tmp = manifest_path.with_name(manifest_path.name + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    os.replace(tmp, manifest_path)  # the manifest appears only once every file is written
    return manifest
