"""The whole photo, not only the faces: the natural-photo set builder, patch training, the tiled
encoder, the natural-photo background of whole-photo mode, and the heavy JPEG degradation."""
import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import test_train
import torch
from PIL import Image, ImageFilter
from skimage import data as skdata

import arasfsr
from arasfsr import restore as restore_mod
from arasfsr.data import SRBatchCollate, natural
from arasfsr.data.offline import read_member
from arasfsr.degrade import bicubic_resize, degrade
from arasfsr.inference import render, render_tiled
from arasfsr.weights import DEFAULT_WEIGHTS, WEIGHTS_DIR

REPO = Path(__file__).resolve().parent.parent
faces = test_train.faces  # the synthetic face folder (a module-scoped fixture)


@pytest.fixture(scope="module")
def photo():
    """scikit-image's coffee (public domain), 400 x 600, a photograph without faces."""
    return Image.fromarray(skdata.coffee())


def _deb(path: Path, members: dict[str, bytes]) -> Path:
    """A minimal Debian package: an ar archive with debian-binary, control.tar.xz and data.tar.xz."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tf:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
        link = tarfile.TarInfo("./link.png")
        link.type, link.linkname = tarfile.SYMTYPE, next(iter(members)).split("/")[-1]
        tf.addfile(link)

    def entry(name: str, blob: bytes) -> bytes:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{100644:<8}{len(blob):<10}`\n".encode()
        return header + blob + (b"\n" if len(blob) % 2 else b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"!<arch>\n" + entry("debian-binary", b"2.0\n") + entry("control.tar.xz", b"x")
                     + entry("data.tar.xz", data.getvalue()))
    return path


def test_a_debian_package_member_is_read_without_unpacking(tmp_path):
    blob = b"\x89PNG fake bytes"
    deb = _deb(tmp_path / "pkg_1.0_all.deb", {"./a.png": blob, "./usr/b.jpg": b"odd"})
    assert read_member(deb, "./a.png") == blob
    assert read_member(deb, "./usr/b.jpg") == b"odd"
    assert read_member(deb, "./link.png") == blob  # symbolic links inside the package are followed
    with pytest.raises(KeyError):
        read_member(deb, "./missing.png")
    (tmp_path / "bad.deb").write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="not a Debian package"):
        read_member(tmp_path / "bad.deb", "./a.png")


def test_natural_builder_tiles_by_split_and_writes_a_manifest(photo, tmp_path):
    buffer = io.BytesIO()
    photo.resize((1200, 800), Image.BICUBIC).save(buffer, "JPEG", quality=95)
    deb = _deb(tmp_path / "cache" / "natural" / "pics_1_all.deb",
               {"./usr/share/backgrounds/one.jpg": buffer.getvalue(), "./usr/share/backgrounds/two.jpg": buffer.getvalue()})
    import hashlib
    source = {"package": "pics 1", "group": "lomiri", "url": "http://example.invalid/pics_1_all.deb",
              "sha256": hashlib.sha256(deb.read_bytes()).hexdigest(), "licence": "test",
              "photos": {"one": ("train", "A", "CC0-1.0"), "two": ("test", "B", "CC0-1.0")}}
    manifest = natural.build(tmp_path / "out", cache=tmp_path / "cache", tile=128, sources=(source,), progress=False)
    # reduced by 2 to 600 x 400; train tiles on a 64 px stride (overlapping), test tiles side by side
    assert manifest["summary"] == {"train": 8 * 5, "val": 0, "test": 4 * 3}
    tiles = [Image.open(tmp_path / "out" / f["name"]) for f in manifest["files"]]
    assert {t.size for t in tiles} == {(128, 128)}
    assert json.loads((tmp_path / "out" / "manifest.json").read_text())["photos"][0]["master_size"] == [600, 400]
    from arasfsr.data import FaceFolder
    assert len(FaceFolder(tmp_path / "out", split="train")) == 40


def test_natural_sources_are_photographs_from_unreserved_packages():
    packages = " ".join(s["package"] for s in natural.SOURCES)
    for reserved in ("mate-backgrounds", "ukui-wallpapers"):
        assert reserved not in packages
    names = {name: split for s in natural.SOURCES for name, (split, *_rest) in s["photos"].items()}
    authors = {}
    for s in natural.SOURCES:
        for name, (split, author, _licence) in s["photos"].items():
            authors.setdefault(author, set()).add(split)
    assert all(len(splits) == 1 for splits in authors.values()), "a photographer in two splits"
    assert {"train", "val", "test"} <= set(names.values())


def test_the_added_packages_bring_train_photos_only_and_the_first_set_can_be_rebuilt(monkeypatch, tmp_path):
    first = natural.FIRST_SET
    assert [s["package"].split()[0] for s in first] == ["lomiri-wallpapers-16.04", "lomiri-wallpapers-20.04",
                                                         "plasma-workspace-wallpapers"]
    assert sum(len(s["photos"]) for s in first) == 25  # 15 train, 3 val, 7 test: the set of 0.5-0.9
    added = [s for s in natural.SOURCES if s not in first]
    assert added and all(split == "train" for s in added for split, *_ in s["photos"].values())
    assert all(s["group"] in natural.MEMBERS and s["group"] in natural.REDUCE for s in natural.SOURCES)
    seen = []
    monkeypatch.setattr(natural, "build", lambda out, cache, tile, sources: seen.append(sources) or {"summary": {}})
    assert natural.main(["--out", str(tmp_path), "--first-set"]) == 0
    assert natural.main(["--out", str(tmp_path)]) == 0
    assert seen == [first, natural.SOURCES]


def test_collate_crops_native_patches_when_asked(photo):
    master = photo.crop((0, 0, 400, 400))
    batch = SRBatchCollate((16, 16), (4, 4), num_queries=64 * 64, crop=True)([master], rng=np.random.default_rng(0))
    assert tuple(batch["lr"].shape) == (1, 3, 16, 16)
    # the HR target is a 64 px piece of the master at its own pixels, not the master resized
    hr = (batch["gt"][0].reshape(64 * 64, 3) * 255).round().numpy()
    rows = ((batch["coord"][0, :, 0] + 1) / 2 * 64 - 0.5).round().long().numpy()
    cols = ((batch["coord"][0, :, 1] + 1) / 2 * 64 - 0.5).round().long().numpy()
    patch = np.zeros((64, 64, 3))
    patch[rows, cols] = hr
    array = np.asarray(master, dtype=np.float64)
    found = min(np.abs(array[t:t + 64, c:c + 64] - patch).max() for t in range(337) for c in range(337))
    assert found == 0
    resized = np.asarray(bicubic_resize(master, (64, 64)), dtype=np.float64)
    assert np.abs(resized - patch).max() > 20


@pytest.mark.parametrize("family", ["lte", "liif", "arasfsr", "arasfsr-fast"])
def test_tiled_rendering_matches_rendering_the_whole_input(family):
    torch.manual_seed(0)
    model = arasfsr.create_model(family, preset="tiny").eval()
    lr = torch.rand(1, 3, 45, 61)
    for out in [(135, 183), (45, 61), (100, 77)]:
        whole = render(model, lr, out)
        tiled = render_tiled(model, lr, out, tile=16, margin=12)
        assert (whole - tiled).abs().max() < 1e-4
    # only where the map says, the fallback elsewhere, across several tiles
    where = np.zeros((45, 61), bool)
    where[5:30, 10:50] = True
    fallback = torch.zeros(135, 183, 3)
    picked = render_tiled(model, lr, (135, 183), tile=16, margin=12, where=where, fallback=fallback)
    whole = render(model, lr, (135, 183))
    assert (picked[15:90, 30:150] - whole[15:90, 30:150]).abs().max() < 1e-4
    assert picked[:15].abs().max() == 0 and picked[:, 150:].abs().max() == 0
    far = render_tiled(model, lr, (135, 183), tile=16, margin=0)
    assert (far - render(model, lr, (135, 183))).abs().max() > 1e-3  # no context: the seams show


def test_a_tile_frame_puts_the_tiles_pixel_centres_on_the_images():
    from arasfsr.coords import make_coord
    from arasfsr.decoder import tile_frame, to_global
    whole = make_coord((45, 61)).view(45, 61, 2)
    frame = tile_frame((7, 30), (20, 61), (45, 61))
    local = make_coord((23, 41))
    assert torch.allclose(to_global(local, frame).view(23, 41, 2), whole[7:30, 20:61], atol=1e-6)
    assert to_global(local, None) is local


def test_a_tiled_face_prior_reads_the_position_in_the_whole_face():
    """GCM sees global coordinates: a tile encoded without its frame gives other colours, with it
    the same as the untiled face (the test above checks the whole render)."""
    from arasfsr.decoder import tile_frame
    torch.manual_seed(0)
    model = arasfsr.create_model("arasfsr", preset="tiny").eval()
    assert model.config.use_gcm
    lr = torch.rand(1, 3, 40, 40)
    coord = torch.tensor([[[0.1, -0.2], [0.5, 0.5]]])  # in the tile's frame (rows 10-40, cols 0-30)
    cell = torch.full((1, 2, 2), 2 / 60)
    with torch.inference_mode():
        framed = model.query(model.encode(lr[..., 10:40, 0:30], frame=tile_frame((10, 40), (0, 30), (40, 40))),
                             coord, cell)
        unframed = model.query(model.encode(lr[..., 10:40, 0:30]), coord, cell)
        whole_coord = coord * torch.tensor([30 / 40, 30 / 40]) + torch.tensor([(30 + 20) / 40 - 1, 30 / 40 - 1])
        whole = model.query(model.encode(lr), whole_coord, cell * 30 / 40)
    assert (framed - whole).abs().max() < 1e-4
    assert (unframed - whole).abs().max() > 1e-3


def test_restore_draws_the_background_with_the_natural_model_and_keeps_faces(photo):
    torch.manual_seed(0)
    lte = arasfsr.create_model("lte", preset="tiny").eval()
    small = photo.resize((90, 60), Image.BICUBIC)
    face_model = arasfsr.create_model("arasfsr", preset="tiny").eval()
    plain, _ = restore_mod.restore(face_model, small, scale=2, detector=lambda rgb: [])
    drawn, _ = restore_mod.restore(face_model, small, scale=2, detector=lambda rgb: [], background=lte,
                                   background_flat=None)
    bicubic = np.asarray(small.resize((180, 120), Image.BICUBIC), np.float64)
    assert np.array_equal(np.asarray(plain), bicubic)
    expected = render(lte, torch.from_numpy(np.asarray(small, np.float32) / 255).permute(2, 0, 1)[None], (120, 180))
    assert np.abs(np.asarray(drawn, np.float64) - expected.numpy() * 255).max() <= 1.0
    # flat squares are left to bicubic: a photo with a flat half gets bicubic there, the model elsewhere
    half = np.asarray(small).copy()
    half[:, 48:] = half[:, 48:].mean(axis=(0, 1)).astype(np.uint8)
    flat, _ = restore_mod.restore(face_model, Image.fromarray(half), scale=2, detector=lambda rgb: [], background=lte)
    flat = np.asarray(flat, np.float64)
    bicubic = np.asarray(Image.fromarray(half).resize((180, 120), Image.BICUBIC), np.float64)
    assert np.array_equal(flat[:, 130:], bicubic[:, 130:])          # 3 LR squares (24 px) from the edge
    assert np.abs(flat[:, :60] - bicubic[:, :60]).max() > 2
    with pytest.raises(TypeError, match="background"):
        restore_mod.restore(face_model, small, scale=2, detector=lambda rgb: [], background=3)


def test_heavy_degradation_is_seeded_compressed_and_shifts_the_block_grid(photo):
    master = photo.crop((100, 0, 500, 400))
    a, b = degrade(master, (64, 64), "heavy", rng=5), degrade(master, (64, 64), "heavy", rng=5)
    assert a.size == (64, 64) and np.array_equal(np.asarray(a), np.asarray(b))
    clean = np.asarray(bicubic_resize(master, (64, 64)), np.float64)
    errors = [np.abs(np.asarray(degrade(master, (64, 64), "heavy", rng=k), np.float64) - clean).mean()
              for k in range(6)]
    assert min(errors) > 1.0  # always compressed (or blurred and compressed)
    with pytest.raises(ValueError, match="rng"):
        degrade(master, (64, 64), "heavy")


def test_shipped_natural_weights_are_an_lte_without_a_face_prior():
    path = WEIGHTS_DIR / DEFAULT_WEIGHTS["natural"]
    if not path.is_file():
        pytest.skip("natural weights not shipped in this checkout")
    model = arasfsr.load_model("natural", device="cpu")
    assert not model.config.use_gcm and model.config.name == "lte"
    meta = arasfsr.weights.read_metadata(path)["training"]
    assert meta["crop"] is True and "natural photographs" in meta["data"]


@pytest.mark.parametrize("family", ["natural-deep", "natural-wide"])
def test_the_natural_lte_grows_a_larger_encoder_that_computes_the_same_and_learns(family, faces, tmp_path):
    from arasfsr.model import create_model, grow_state_dict
    from arasfsr.train import Trainer
    torch.manual_seed(3)
    source = create_model("lte", preset="tiny").eval()
    with torch.no_grad():  # a source whose every weight matters (the default init zeroes nothing)
        for p in source.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model = create_model(family, preset="tiny").eval()
    assert model.config.encoder_blocks > source.config.encoder_blocks
    grown = grow_state_dict(model, source)
    assert "encoder.body.2.body.2.weight" in grown  # a new block (tiny has 2)
    assert "decoder.amplitude.weight" in grown  # tiny is 16 wide: both families grow wider too
    assert arasfsr.weights.family_of(model.config.to_dict()) == family
    paper_lte = create_model("lte", preset="paper").config.to_dict()
    assert arasfsr.weights.family_of(paper_lte) == "lte"
    lr = torch.rand(2, 3, 13, 15)
    coord = torch.rand(2, 300, 2) * 2 - 1
    cell = torch.full((2, 300, 2), 2 / 50)
    with torch.no_grad():
        same = model(lr, coord, cell)
        torch.testing.assert_close(same, source(lr, coord, cell), atol=1e-6, rtol=0)
        # the body's last conv moved behind the new blocks: it still is the source's
        last = f"encoder.body.{model.config.encoder_blocks}.weight"
        c = source.config.encoder_channels
        torch.testing.assert_close(model.state_dict()[last][:c, :c], source.state_dict()["encoder.body.2.weight"])
        new_block = model.encoder.body[2].body[2]
        new_block.weight.add_(0.1)  # the new block is read: changing it changes the output
        assert (model(lr, coord, cell) - same).abs().max() > 1e-3
        new_block.weight.sub_(0.1)
        model.decoder.amplitude.weight[:, c:].add_(0.1)  # so are the new channels, through LTE's new columns
        assert (model(lr, coord, cell) - same).abs().max() > 1e-3
    # training from the small file: `--init-from` grows it, and one step moves the zero-start weights
    src_path = tmp_path / "lte_tiny.safetensors"
    arasfsr.save_model(source, src_path)
    cfg = test_train._config(faces, tmp_path / "run", model=family, steps=1, val_every=1, ckpt_every=1,
                             warmup_steps=0, init_from=str(src_path))
    trainer = Trainer(cfg, progress=False)
    assert trainer.init_info["grown"]
    before = trainer.model.encoder.body[2].body[2].weight.detach().clone()
    assert not before.any()
    trainer.run()
    assert trainer.model.encoder.body[2].body[2].weight.detach().abs().max() > 0


def test_an_encoder_grows_only_where_the_decoder_reads_it_the_same_way():
    from arasfsr.model import create_model, grow_state_dict
    source = create_model("arasfsr", preset="tiny")
    deeper = create_model("arasfsr", preset="tiny", encoder_blocks=3)
    assert "encoder.body.2.body.0.weight" in grow_state_dict(deeper, source)  # any family grows deeper
    with pytest.raises(ValueError, match="only LTE"):  # its decoder reads the LFE's channels after the encoder's
        grow_state_dict(create_model("arasfsr", preset="tiny", encoder_channels=24), source)
    with pytest.raises(ValueError, match="cannot grow"):  # never smaller
        grow_state_dict(create_model("lte", preset="tiny", encoder_blocks=1), create_model("lte", preset="tiny"))
    with pytest.raises(ValueError, match="only edsr-baseline"):
        grow_state_dict(create_model("lte", preset="tiny", encoder="rdn", encoder_blocks=3),
                        create_model("lte", preset="tiny", encoder="rdn"))


def test_restore_cli_background_choice_is_printed(photo, tmp_path):
    src = tmp_path / "coffee.png"
    photo.resize((60, 40), Image.BICUBIC).save(src)
    for choice, words in (("bicubic", "background: bicubic"), ("auto", "background: ")):
        out = tmp_path / f"out_{choice}.png"
        proc = subprocess.run([sys.executable, "-m", "arasfsr", "restore", str(src), "-o", str(out), "--scale", "2",
                               "--model", "arasfsr", "--background", choice], capture_output=True, text=True,
                              cwd=REPO, timeout=300)
        assert proc.returncode == 0, proc.stderr
        assert words in proc.stderr and Image.open(out).size == (120, 80)


@pytest.mark.parametrize("family", ["lte", "arasfsr"])
def test_upscale_encodes_a_large_input_in_tiles_within_one_level(family):
    torch.manual_seed(1)
    model = arasfsr.create_model(family, preset="tiny").eval()
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 256, (300, 280, 3), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(2))
    assert arasfsr.inference._tiles(300, 280)
    out = np.asarray(arasfsr.upscale(model, image, scale=1.5, device="cpu"), np.int16)
    lr = torch.from_numpy(np.asarray(image, np.float32) / 255).permute(2, 0, 1)[None]
    whole = np.rint(render(model, lr, (450, 420)).numpy() * 255).astype(np.int16)
    assert np.abs(out - whole).max() <= 1


# ----------------------------------------------------------------------------- safe intake (issue 20)
@pytest.mark.parametrize("fmt,what", [("EPS", "EPS"), ("PCX", "PCX"), ("ICO", "ICO"), ("TGA", "unknown format")])
def test_a_file_is_opened_only_by_the_plugin_its_magic_number_calls_for(tmp_path, fmt, what):
    path = tmp_path / "face.png"
    Image.new("RGB", (32, 32), (200, 30, 30)).save(path, fmt)
    with pytest.raises(arasfsr.io.ImageError, match=what) as err:
        arasfsr.read_image(path)
    assert "\n" not in str(err.value) and "accepted: PNG, JPEG" in str(err.value)
    with pytest.raises(arasfsr.io.ImageError, match=what):
        arasfsr.io.image_size(path)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM"])
def test_every_listed_format_is_read_whatever_its_name(tmp_path, fmt):
    path = tmp_path / "face.data"
    Image.new("RGB", (24, 16), (10, 120, 200)).save(path, fmt)
    assert arasfsr.io.sniff_format(path.read_bytes()[:32]) == fmt
    assert arasfsr.read_image(path).size == (24, 16)


@pytest.mark.parametrize("device", ["bogus", "meta", "cuda:99"])
def test_a_bad_device_is_one_line_before_any_work(device, tmp_path):
    src = tmp_path / "in.png"
    Image.new("RGB", (16, 16)).save(src)
    proc = subprocess.run([sys.executable, "-m", "arasfsr", "upscale", str(src), "-o", str(tmp_path / "o.png"),
                           "--scale", "2", "--device", device], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().count("\n") == 0 and "--device" in proc.stderr
    assert not (tmp_path / "o.png").exists()


def test_weights_with_nan_values_or_a_bad_normalisation_are_refused(tmp_path):
    from safetensors.torch import load_file, save_file

    from arasfsr.weights import WeightFileError, read_header
    source = WEIGHTS_DIR / DEFAULT_WEIGHTS["lte"]
    state = load_file(str(source))
    meta = read_header(source)[1]
    key = next(iter(state))
    bad = dict(state)
    bad[key] = bad[key].clone()
    bad[key].view(-1)[0] = float("nan")
    save_file(bad, str(tmp_path / "nan.safetensors"), metadata=meta)
    with pytest.raises(WeightFileError, match="NaN"):
        arasfsr.load_model(tmp_path / "nan.safetensors", device="cpu")
    for value in (0.0, "0.5", float("nan")):
        config = json.loads(meta["config"])
        config["norm_std"] = value
        save_file(state, str(tmp_path / "std.safetensors"), metadata={**meta, "config": json.dumps(config)})
        with pytest.raises(WeightFileError, match="norm_std"):
            arasfsr.load_model(tmp_path / "std.safetensors", device="cpu")


def test_liif_checkpoints_with_odd_args_are_refused_with_a_reason(tmp_path):
    from arasfsr.weights import WeightFileError
    for args in (None, "edsr", {"encoder_spec": "edsr-baseline"}):
        torch.save({"model": {"name": "liif", "args": args, "sd": {}}}, tmp_path / "odd.pth")
        with pytest.raises(WeightFileError):
            arasfsr.load_model(tmp_path / "odd.pth", device="cpu")


def test_the_background_model_is_chosen_only_for_photos_it_helps(photo, tmp_path):
    from arasfsr import damage
    small = photo.resize((120, 80), Image.BICUBIC)
    assert damage.choose_background(damage.assess(small))[0] == "natural"
    for quality, expected in ((95, "natural"), (90, "natural"), (75, "bicubic"), (40, "bicubic")):
        path = tmp_path / f"q{quality}.jpg"
        small.save(path, quality=quality)
        name, reason = damage.choose_background(damage.choose(path, mode="restore")[1])
        assert name == expected and f"quality {quality}" in reason
    once_jpeg = np.asarray(Image.open(tmp_path / "q40.jpg"))  # tables gone: the JPEG trace decides
    assert damage.choose_background(damage.assess(once_jpeg))[0] == "bicubic"


def test_restore_encodes_a_large_face_in_tiles_within_float_rounding(monkeypatch):
    """A face crop over two tiles' worth of pixels: the tiled encoder (GCM in the whole crop's
    frame) gives the colours of the untiled one at the photo's fractional output positions."""
    from arasfsr import inference
    from arasfsr.restore import render_face
    torch.manual_seed(0)
    model = arasfsr.create_model("arasfsr", preset="tiny").eval()
    crop = np.random.default_rng(0).random((300, 300, 3)).astype(np.float32)
    rows, cols = np.linspace(10.2, 280.7, 97), np.linspace(-0.3, 299.4, 101)
    calls = []
    monkeypatch.setattr(inference, "render_tiled_at",
                        lambda *a, _f=inference.render_tiled_at, **k: calls.append(1) or _f(*a, **k))
    tiled = render_face(model, crop, rows, cols, (2.0, 2.0), torch.device("cpu"))
    assert calls  # 300 x 300 > 2 x 192^2: tiled
    monkeypatch.setattr(inference, "_tiles", lambda h, w: False)
    whole = render_face(model, crop, rows, cols, (2.0, 2.0), torch.device("cpu"))
    assert len(calls) == 1 and tiled.shape == whole.shape == (97, 101, 3)
    assert np.abs(tiled - whole).max() < 1e-4
