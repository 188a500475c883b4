"""Weight files that describe themselves.

`.safetensors` files hold the tensors plus, in their string metadata: the format version, the
model config (which includes the normalisation), and what the model was trained on (scale
range, input sizes, data description, steps). Loading runs no code and rebuilds the model from
the file alone. `load_model` also imports a published LIIF checkpoint (`.pth`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from .model import ModelConfig, SRModel

FORMAT_VERSION = "2"
# Format 1 (arasfsr 0.1): LFE residual blocks with LeakyReLU(0.01), `kl_weight` (a loss weight)
# inside the model config. Such files still load, as the network they were trained as.
READABLE_VERSIONS = ("1", "2")
KNOWN_METADATA = {"format", "format_version", "config", "training"}
# The shipped weights live in the repository's weights/ folder, next to the package.
WEIGHTS_DIR = Path(os.environ.get("ARASFSR_WEIGHTS_DIR", Path(__file__).resolve().parent.parent / "weights"))
DEFAULT_WEIGHTS = {
    "arasfsr": "arasfsr_small.safetensors",
    "liif": "liif_small.safetensors",
    "lte": "lte_small.safetensors",
    "arasfsr-no-lfe": "arasfsr-no-lfe_small.safetensors",
    "arasfsr-no-gcm": "arasfsr-no-gcm_small.safetensors",
}


def default_weights_path(name: str = "arasfsr") -> Path:
    if name not in DEFAULT_WEIGHTS:
        raise ValueError(f"no shipped weights for {name!r}; shipped: {tuple(DEFAULT_WEIGHTS)}")
    return WEIGHTS_DIR / DEFAULT_WEIGHTS[name]


def save_model(model: SRModel, path: str | os.PathLike, training: dict | None = None) -> Path:
    """Write `model` to a `.safetensors` file with its config and training description.

    Args:
        training: JSON-serialisable facts, e.g. {"scale_range": [1, 8], "input_sizes": [16, 64],
            "data": "...", "steps": 3000}.
    The file is written next to its destination, then renamed, so a crash never leaves half a file.
    """
    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"weights are saved as .safetensors, got {path.name!r}")
    metadata = {"format": "arasfsr", "format_version": FORMAT_VERSION,
                "config": json.dumps(model.config.to_dict()), "training": json.dumps(training or {})}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    return path


def read_metadata(path: str | os.PathLike) -> dict:
    """The parsed metadata of an arasfsr weight file: {"format_version", "config", "training"}."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != "arasfsr":
        raise ValueError(f"{path} is not an arasfsr weight file (no 'format: arasfsr' in its metadata)")
    version = meta.get("format_version")
    if version not in READABLE_VERSIONS:
        raise ValueError(f"{path} has weight format version {version!r}; this arasfsr "
                         f"reads versions {READABLE_VERSIONS}: upgrade arasfsr or re-export the weights")
    unknown = sorted(set(meta) - KNOWN_METADATA)
    if unknown:
        raise ValueError(f"{path} has unknown metadata keys {unknown}")
    config = json.loads(meta["config"])
    if version == "1":
        config = upgrade_config_v1(config)
    return {"format_version": version, "config": config, "training": json.loads(meta.get("training", "{}"))}


def upgrade_config_v1(config: dict) -> dict:
    """A format-1 model config as a format-2 one describing the same network."""
    config = dict(config)
    config.pop("kl_weight", None)  # a training setting, now in TrainConfig
    config.setdefault("lfe_activation", "leaky_relu")
    return config


def load_model(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> SRModel:
    """Load a model in eval mode.

    Args:
        path: an arasfsr `.safetensors` file, a published LIIF `.pth` checkpoint, or None for the
            shipped default ARASFSR weights.
    The returned model has `.training_info` (dict) from the file's metadata.
    """
    path = Path(path) if path is not None else default_weights_path("arasfsr")
    if not path.is_file():
        raise FileNotFoundError(f"weight file not found: {path}")
    if path.suffix in (".pth", ".pt"):
        model, info = import_liif_checkpoint(path), {"source": f"published LIIF checkpoint {path.name}"}
    else:
        meta = read_metadata(path)
        model = SRModel(ModelConfig.from_dict(meta["config"]))
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
        model.load_state_dict(state)  # strict: a missing or extra tensor is an error
        info = meta["training"]
    model.training_info = info
    return model.to(device).eval()


def import_liif_checkpoint(path: str | os.PathLike) -> SRModel:
    """Rebuild a published EDSR-baseline LIIF checkpoint as our `liif` model.

    The checkpoint is read with `weights_only=True` (no code runs). Its MLP input layout
    [unfolded latent (channel-major 3x3), rel coord, rel cell] is ours, so the linear layers map
    one to one; the EDSR mean-shift tensors are unused by the baseline encoder and dropped.
    """
    ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    spec = ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(spec, dict) or "sd" not in spec or "args" not in spec:
        raise ValueError(f"{path} is not a LIIF checkpoint (expected a dict with model = {{name, args, sd}})")
    if spec.get("name") != "liif":
        raise ValueError(f"{path} holds model {spec.get('name')!r}; only 'liif' checkpoints can be imported")
    args = spec["args"]
    encoder = args.get("encoder_spec", {}).get("name")
    if encoder != "edsr-baseline":
        raise ValueError(f"only EDSR-baseline LIIF checkpoints can be imported, this one uses {encoder!r}")
    for flag in ("local_ensemble", "feat_unfold", "cell_decode"):
        if not args.get(flag, True):
            raise ValueError(f"LIIF checkpoints with {flag}=False are not supported")
    hidden = args.get("imnet_spec", {}).get("args", {}).get("hidden_list", [256, 256, 256, 256])
    if len(set(hidden)) != 1:
        raise ValueError(f"LIIF MLPs with unequal hidden widths {hidden} are not supported")
    sd = spec["sd"]
    blocks = sum(1 for k in sd if k.startswith("encoder.body.") and k.endswith(".body.0.weight"))
    channels = sd["encoder.head.0.weight"].shape[0]
    config = ModelConfig(name="liif", encoder_channels=channels, encoder_blocks=blocks, hidden_dim=hidden[0],
                         hidden_layers=len(hidden), use_lfe=False, use_gcm=False, use_skip=False)
    model = SRModel(config)
    state = {}
    for key, value in sd.items():
        if key.startswith(("encoder.sub_mean", "encoder.add_mean")):
            continue
        if key.startswith("encoder."):
            state[key] = value
        elif key.startswith("imnet.layers."):
            index, kind = key[len("imnet.layers."):].split(".")
            layer = int(index) // 2  # Linear layers sit at 0, 2, 4, ... with ReLUs between
            name = f"decoder.out.{kind}" if layer == len(hidden) else f"decoder.layers.{layer}.{kind}"
            state[name] = value
        else:
            raise ValueError(f"unexpected tensor {key!r} in {path}")
    model.load_state_dict(state)
    return model
