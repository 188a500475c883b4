import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

import arasfsr
from arasfsr.coords import make_cell, make_coord
from arasfsr.weights import read_metadata


def test_safetensors_round_trip(tmp_path, face_image):
    torch.manual_seed(0)
    model = arasfsr.create_model("arasfsr", preset="tiny").eval()
    info = {"scale_range": [1, 8], "input_sizes": [16, 64], "data": "synthetic", "steps": 0}
    path = arasfsr.save_model(model, tmp_path / "m.safetensors", training=info)
    loaded = arasfsr.load_model(path)
    assert loaded.config == model.config and loaded.training_info == info
    meta = read_metadata(path)
    assert meta["config"]["norm_mean"] == 0.5 and meta["format_version"] == "2"
    a = np.asarray(arasfsr.upscale(model, face_image, scale=2.3))
    b = np.asarray(arasfsr.upscale(loaded, face_image, scale=2.3))
    assert np.array_equal(a, b)


def _rewrite_metadata(src, dst, change):
    from safetensors import safe_open
    with safe_open(str(src), framework="pt") as f:
        meta = dict(f.metadata())
    change(meta)
    save_file(load_file(str(src)), str(dst), metadata=meta)


def test_unknown_config_key_or_version_fails_clearly(tmp_path):
    path = arasfsr.save_model(arasfsr.create_model("liif", preset="tiny"), tmp_path / "m.safetensors")

    def add_key(meta):
        config = json.loads(meta["config"])
        config["mystery"] = 1
        meta["config"] = json.dumps(config)
    _rewrite_metadata(path, tmp_path / "key.safetensors", add_key)
    with pytest.raises(ValueError, match=r"unknown model config keys \['mystery'\]"):
        arasfsr.load_model(tmp_path / "key.safetensors")
    _rewrite_metadata(path, tmp_path / "ver.safetensors", lambda m: m.update(format_version="99"))
    with pytest.raises(ValueError, match="format version '99'"):
        arasfsr.load_model(tmp_path / "ver.safetensors")
    save_file({"x": torch.zeros(1)}, str(tmp_path / "other.safetensors"))
    with pytest.raises(ValueError, match="not an arasfsr weight file"):
        arasfsr.load_model(tmp_path / "other.safetensors")
    with pytest.raises(FileNotFoundError):
        arasfsr.load_model(tmp_path / "missing.safetensors")
    with pytest.raises(ValueError, match=".safetensors"):
        arasfsr.save_model(arasfsr.create_model("liif", preset="tiny"), tmp_path / "m.pt")


def _synthetic_liif_checkpoint(blocks=2, channels=8, hidden=16):
    """A state dict with the published EDSR-baseline LIIF layout (smaller sizes), random values."""
    g = torch.Generator().manual_seed(0)
    r = lambda *shape: torch.randn(*shape, generator=g) * 0.1
    sd = {"encoder.sub_mean.weight": torch.eye(3).view(3, 3, 1, 1), "encoder.sub_mean.bias": r(3),
          "encoder.add_mean.weight": torch.eye(3).view(3, 3, 1, 1), "encoder.add_mean.bias": r(3),
          "encoder.head.0.weight": r(channels, 3, 3, 3), "encoder.head.0.bias": r(channels)}
    for i in range(blocks):
        for j in (0, 2):
            sd[f"encoder.body.{i}.body.{j}.weight"] = r(channels, channels, 3, 3)
            sd[f"encoder.body.{i}.body.{j}.bias"] = r(channels)
    sd[f"encoder.body.{blocks}.weight"] = r(channels, channels, 3, 3)
    sd[f"encoder.body.{blocks}.bias"] = r(channels)
    dims = [9 * channels + 4, hidden, hidden, hidden, hidden, 3]
    for k, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        sd[f"imnet.layers.{2 * k}.weight"] = r(b, a)
        sd[f"imnet.layers.{2 * k}.bias"] = r(b)
    args = {"encoder_spec": {"name": "edsr-baseline", "args": {"no_upsampling": True}},
            "imnet_spec": {"name": "mlp", "args": {"out_dim": 3, "hidden_list": [hidden] * 4}}}
    return {"model": {"name": "liif", "args": args, "sd": sd}, "optimizer": None, "epoch": 1}


def _reference_liif(sd, lr, coord, cell, blocks):
    """LIIF's forward written from the format notes: grid_sample nearest lookups, 3x3 unfold."""
    x = (lr - 0.5) / 0.5
    x = F.conv2d(x, sd["encoder.head.0.weight"], sd["encoder.head.0.bias"], padding=1)
    res = x
    for i in range(blocks):
        y = F.relu(F.conv2d(res, sd[f"encoder.body.{i}.body.0.weight"], sd[f"encoder.body.{i}.body.0.bias"], padding=1))
        res = res + F.conv2d(y, sd[f"encoder.body.{i}.body.2.weight"], sd[f"encoder.body.{i}.body.2.bias"], padding=1)
    feat = x + F.conv2d(res, sd[f"encoder.body.{blocks}.weight"], sd[f"encoder.body.{blocks}.bias"], padding=1)
    b, c, h, w = feat.shape
    feat = F.unfold(feat, 3, padding=1).view(b, 9 * c, h, w)
    feat_coord = make_coord((h, w), flatten=False).permute(2, 0, 1).unsqueeze(0).expand(b, 2, h, w)
    preds, areas = [], []
    for vy in (-1, 1):
        for vx in (-1, 1):
            c_ = coord.clone()
            c_[:, :, 0] += vy / h + 1e-6
            c_[:, :, 1] += vx / w + 1e-6
            c_.clamp_(-1 + 1e-6, 1 - 1e-6)
            grid = c_.flip(-1).unsqueeze(1)
            q_feat = F.grid_sample(feat, grid, mode="nearest", align_corners=False)[:, :, 0, :].permute(0, 2, 1)
            q_coord = F.grid_sample(feat_coord, grid, mode="nearest", align_corners=False)[:, :, 0, :].permute(0, 2, 1)
            rel = (coord - q_coord) * torch.tensor([h, w])
            inp = torch.cat([q_feat, rel, cell * torch.tensor([h, w])], -1)
            for k in range(4):
                inp = F.relu(F.linear(inp, sd[f"imnet.layers.{2 * k}.weight"], sd[f"imnet.layers.{2 * k}.bias"]))
            preds.append(F.linear(inp, sd["imnet.layers.8.weight"], sd["imnet.layers.8.bias"]))
            areas.append((rel[..., 0] * rel[..., 1]).abs() + 1e-9)
    total = sum(areas)
    areas = areas[::-1]  # diagonal swap: 0<->3, 1<->2
    ret = sum(p * (a / total).unsqueeze(-1) for p, a in zip(preds, areas))
    return (ret * 0.5 + 0.5)


def test_liif_checkpoint_import_reproduces_reference(tmp_path):
    ckpt = _synthetic_liif_checkpoint()
    torch.save(ckpt, tmp_path / "edsr-baseline-liif.pth")
    model = arasfsr.load_model(tmp_path / "edsr-baseline-liif.pth")
    assert model.config.name == "liif" and not model.config.use_skip and model.config.encoder_blocks == 2
    lr = torch.rand(1, 3, 10, 13, generator=torch.Generator().manual_seed(5))
    out_shape = (27, 31)
    coord = make_coord(out_shape).unsqueeze(0)
    cell = make_cell(out_shape).expand_as(coord)
    with torch.no_grad():
        ours = model(lr, coord, cell)
        reference = _reference_liif(ckpt["model"]["sd"], lr, coord, cell, blocks=2)
    assert (ours - reference).abs().max() < 1e-5


def test_liif_import_rejects_other_checkpoints(tmp_path):
    ckpt = _synthetic_liif_checkpoint()
    ckpt["model"]["args"]["encoder_spec"]["name"] = "rdn"
    torch.save(ckpt, tmp_path / "rdn.pth")
    with pytest.raises(ValueError, match="only EDSR-baseline"):
        arasfsr.load_model(tmp_path / "rdn.pth")
    torch.save({"state_dict": {}}, tmp_path / "other.pth")
    with pytest.raises(ValueError, match="not a LIIF checkpoint"):
        arasfsr.load_model(tmp_path / "other.pth")


def test_liif_checkpoint_whose_arguments_disagree_with_its_tensors_is_refused(tmp_path):
    ckpt = _synthetic_liif_checkpoint()
    ckpt["model"]["args"]["imnet_spec"]["args"]["hidden_list"] = [40000] * 4  # tensors are 16 wide
    torch.save(ckpt, tmp_path / "liar.pth")
    with pytest.raises(ValueError, match=r"liar.pth: its config does not match its tensors"):
        arasfsr.load_model(tmp_path / "liar.pth")


def test_metadata_is_read_without_torch(tmp_path):
    """The CLI checks --weights against --model before importing torch."""
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    code = ("import sys; from arasfsr.weights import read_metadata, family_of;"
            "meta = read_metadata(sys.argv[1]); print(family_of(meta['config']), 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code, str(repo / "weights" / "lte_small.safetensors")],
                          env={"PYTHONPATH": str(repo)}, capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.split() == ["lte", "False"]
