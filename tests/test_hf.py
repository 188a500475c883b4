"""The CelebA-HQ path of notebook 04 on a tiny local `datasets` dataset: no network, seconds.

A 12-row `datasets.Dataset` of synthetic faces is saved with `save_to_disk`, then read back by
`prepare_celebahq` as the hub mirror would be: the authors' split, the val hold-out, the PNGs, the
manifest that `FaceFolder` and the trainer read. `hub_reachable` and the hub error are checked with
the offline switch, a refused local port and a simulated download failure: no test touches the network.
"""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

datasets = pytest.importorskip("datasets")

from arasfsr.data import FaceFolder  # noqa: E402
from arasfsr.data.hf import hub_reachable, load_hf_faces, prepare_celebahq  # noqa: E402


def face(seed: int, size: int = 40) -> Image.Image:
    """A distinct RGB image per seed (its mean colour encodes the seed)."""
    rng = np.random.default_rng(seed)
    pixels = np.full((size, size, 3), seed * 20, dtype=np.float64) + rng.normal(0, 3, (size, size, 3))
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def saved_dataset(tmp_path_factory):
    """12 rows with a `datasets.Image` column and a label, written by save_to_disk."""
    table = datasets.Dataset.from_dict({"image": [face(i) for i in range(12)], "label": list(range(12))},
                                       features=datasets.Features({"image": datasets.Image(),
                                                                   "label": datasets.Value("int64")}))
    path = tmp_path_factory.mktemp("hf") / "tiny_celebahq"
    table.save_to_disk(str(path))
    return path


def test_load_hf_faces_reads_a_save_to_disk_folder(saved_dataset):
    faces = load_hf_faces(saved_dataset)
    assert len(faces) == 12
    assert faces[3].mode == "RGB" and faces[3].size == (40, 40)
    assert abs(np.asarray(faces[3]).mean() - 60) < 2  # row 3 is the face of seed 3, in order


def test_prepare_celebahq_writes_the_authors_split_and_a_manifest(saved_dataset, tmp_path):
    out = tmp_path / "celebahq"
    manifest = prepare_celebahq(saved_dataset, out, val_fraction=0.2, size=32, progress=False)
    # authors' split scaled to 12 rows: round(12 * 25000 / 30000) = 10 train part, 2 test;
    # 20 % of the train part (2 rows) becomes val, taken from its end
    assert manifest["counts"] == {"train": 8, "val": 2, "test": 2}
    by_split = {s: sorted(e["source_index"] for e in manifest["files"] if e["split"] == s)
                for s in ("train", "val", "test")}
    assert by_split == {"train": list(range(8)), "val": [8, 9], "test": [10, 11]}
    assert json.loads((out / "manifest.json").read_text()) == manifest
    # the folder is what the trainer reads, and each PNG is its row, resized
    test = FaceFolder(out, split="test")
    assert test.names == ["test/00010.png", "test/00011.png"]
    assert test[0].size == (32, 32)
    assert abs(np.asarray(test[1]).mean() - 220) < 2
    assert len(FaceFolder(out, split="train")) == 8 and len(FaceFolder(out, split="val")) == 2


def test_prepare_celebahq_with_dataloader_workers_gives_the_same_folder(saved_dataset, tmp_path):
    serial = prepare_celebahq(saved_dataset, tmp_path / "serial", progress=False)
    parallel = prepare_celebahq(saved_dataset, tmp_path / "parallel", num_workers=2, progress=False)
    assert serial["files"] == parallel["files"]  # same entries, same (row) order
    for entry in serial["files"]:
        a = np.asarray(Image.open(tmp_path / "serial" / entry["name"]))
        b = np.asarray(Image.open(tmp_path / "parallel" / entry["name"]))
        assert np.array_equal(a, b)
    assert {e["size"][0] for e in serial["files"]} == {40}  # size=None keeps the stored size


def test_prepare_celebahq_keeps_a_finished_folder(saved_dataset, tmp_path):
    out = tmp_path / "done"
    first = prepare_celebahq(saved_dataset, out, progress=False)
    (out / "train" / "00000.png").unlink()  # a second call must not rewrite anything
    assert prepare_celebahq("no/such-dataset", out, progress=False) == first
    assert not (out / "train" / "00000.png").exists()


def test_prepare_celebahq_rejects_bad_arguments(saved_dataset, tmp_path):
    with pytest.raises(ValueError, match="val_fraction"):
        prepare_celebahq(saved_dataset, tmp_path / "a", val_fraction=0.9)
    with pytest.raises(ValueError, match="train and"):
        prepare_celebahq(saved_dataset, tmp_path / "b", limit=1)
    assert not (tmp_path / "a" / "manifest.json").exists()


def test_hub_reachable_is_false_offline_without_waiting(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_reachable() is False
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: refused, no network
    assert hub_reachable(timeout=1.0) is False


def test_an_unreachable_hub_is_a_clear_connection_error(monkeypatch, tmp_path):
    # `datasets.load_dataset` raises the builtin ConnectionError ("Couldn't reach ... on the Hub")
    # after its retries when there is no network; simulate that without the 25 s of retries
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'PhilSad/celeba-hq-1.5k' on the Hub (LocalEntryNotFoundError)")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(ConnectionError, match="check the internet connection"):
        prepare_celebahq("PhilSad/celeba-hq-1.5k", tmp_path / "out", progress=False)
    assert not (tmp_path / "out" / "manifest.json").exists()
