"""Weight files that describe themselves.

`.safetensors` files hold the tensors plus, in their string metadata: the format version, the
model config (which includes the normalisation), and what the model was trained on (scale
range, input sizes, data description, steps). Loading runs no code and rebuilds the model from
the file alone. `load_model` also imports a published LIIF checkpoint (`.pth`).

Before anything is allocated, a file is checked from its header alone (torch-free): the header
must be well formed and fit the file (a truncated or random file is named and refused), the
metadata must parse, and the config must describe exactly the tensors the file holds (the shapes
a config implies are built on torch's `meta` device, which allocates nothing). A 1.9 MB file whose
config claims hidden_dim 40000 is refused with the first tensor that disagrees.

Shipped weights are found, in order: in the folder `ARASFSR_WEIGHTS_DIR` names; inside the
installed package (`arasfsr/shipped_weights/`, where a wheel or `pip install .` puts them); in the
repository's `weights/` folder (a source checkout). Every problem is a `WeightFileError` (a
ValueError) or a FileNotFoundError whose message is one line naming the file.
"""
from __future__ import annotations

import json
import math
import os
import struct
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

    from .model import ModelConfig, SRModel

FORMAT_VERSION = "2"
# Format 1 (arasfsr 0.1): LFE residual blocks with LeakyReLU(0.01), `kl_weight` (a loss weight)
# inside the model config. Such files still load, as the network they were trained as.
READABLE_VERSIONS = ("1", "2")
KNOWN_METADATA = {"format", "format_version", "config", "training"}
ENV_WEIGHTS_DIR = "ARASFSR_WEIGHTS_DIR"
MAX_HEADER_BYTES = 100 * 2 ** 20     # safetensors' own bound on the JSON header
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1, "U8": 1,
               "BOOL": 1}


class WeightFileError(ValueError):
    """A weight file that cannot be used; the message names the file and the reason."""


def _find_weights_dir() -> Path:
    env = os.environ.get(ENV_WEIGHTS_DIR)
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    installed = here / "shipped_weights"      # the wheel maps the repository's weights/ here
    return installed if installed.is_dir() else here.parent / "weights"


# Read once at import; tests and apps may patch it.
WEIGHTS_DIR = _find_weights_dir()
DEFAULT_WEIGHTS = {
    "arasfsr": "arasfsr_small.safetensors",
    "liif": "liif_small.safetensors",
    "lte": "lte_small.safetensors",
    "arasfsr-no-lfe": "arasfsr-no-lfe_small.safetensors",
    "arasfsr-no-gcm": "arasfsr-no-gcm_small.safetensors",
    "arasfsr-real": "arasfsr-real_small.safetensors",   # ARASFSR for ordinary photos: clean, JPEG, noise, blur
    "arasfsr-heavy": "arasfsr-heavy_small.safetensors", # ARASFSR for badly compressed inputs (JPEG 25-70)
    "natural": "natural_small.safetensors",             # LTE on natural photographs: anything but faces
    "arasfsr-fast": "arasfsr-fast_small.safetensors",   # ARASFSR distilled: a small decoder, about 5x faster to render
                                                        # (family arasfsr-fast-blend since release 0.9)
    "natural-fast": "natural-fast_small.safetensors",   # `natural` distilled the same way: the whole-photo background
}
# The like-for-like comparison (MODEL_CARD.md, "Reproduction table"): every family trained from
# scratch with one recipe (`recipe` "compare-1000" in each file's training record, seed 0; the
# second seed is a command in scripts/train_shipped.sh). For ablations and baselines, not for use:
# the files above are better trained, and differently, so only these five compare like with like.
COMPARISON_FAMILIES = ("arasfsr", "arasfsr-no-lfe", "arasfsr-no-gcm", "liif", "lte")
DEFAULT_WEIGHTS.update({f"compare-{family}": f"compare-{family}_small.safetensors"
                        for family in COMPARISON_FAMILIES})


def background_name() -> str | None:
    """The weights that draw whole photos' backgrounds by default: `natural-fast` (the natural-photo
    model distilled: about half its time on the OOD whole photos, -0.06 dB there; MODEL_CARD.md,
    "Unreleased") when installed, else `natural`, else None (bicubic)."""
    for name in ("natural-fast", "natural"):
        if default_weights_path(name).is_file():
            return name
    return None


def list_models() -> list[str]:
    """The names `load_model` / `SRModel.from_pretrained` / `torch.hub.load` accept (shipped weights)."""
    return list(DEFAULT_WEIGHTS)


def default_weights_path(name: str = "arasfsr") -> Path:
    """Where the shipped weights of `name` live (see the module docstring); the file may be absent."""
    if name not in DEFAULT_WEIGHTS:
        raise ValueError(f"no shipped weights for {name!r}; shipped: {tuple(DEFAULT_WEIGHTS)} "
                         "(pass a weight file path instead)")
    return WEIGHTS_DIR / DEFAULT_WEIGHTS[name]


def resolve_weights(name_or_path: str | os.PathLike | None = None) -> Path:
    """A shipped model name (see `list_models`) or a path -> an existing weight file.

    A string that is a shipped name means the shipped weights, anything else is a path.
    Raises FileNotFoundError with a one-line message saying where it looked and what to do.
    """
    if name_or_path is None:
        name_or_path = "arasfsr"
    if isinstance(name_or_path, str) and name_or_path in DEFAULT_WEIGHTS:
        path = default_weights_path(name_or_path)
        if not path.is_file():
            raise FileNotFoundError(
                f"shipped weights for {name_or_path!r} not found at {path}: this install has no weight files "
                f"there; set {ENV_WEIGHTS_DIR} to a folder holding {DEFAULT_WEIGHTS[name_or_path]}, "
                "or pass the path of a weight file")
        return path
    path = Path(name_or_path)
    if not path.is_file():
        hint = f"; shipped model names: {list_models()}" if not path.suffix else ""
        raise FileNotFoundError(f"weight file not found: {path}{hint}")
    return path


def save_model(model: SRModel, path: str | os.PathLike, training: dict | None = None) -> Path:
    """Write `model` to a `.safetensors` file with its config and training description.

    Args:
        model: the model to save.
        path: destination, ending in `.safetensors`.
        training: JSON-serialisable facts, e.g. {"scale_range": [1, 8], "input_sizes": [16, 64],
            "data": "...", "steps": 3000}; also set as `model.training_info`.
    Returns:
        The path written. The file is written next to its destination, then renamed, so a crash
        never leaves half a file.
    """
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        raise ValueError(f"weights are saved as .safetensors, got {path.name!r}")
    training = dict(training or {})
    metadata = {"format": "arasfsr", "format_version": FORMAT_VERSION,
                "config": json.dumps(model.config.to_dict()), "training": json.dumps(training)}
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    save_file(tensors, str(tmp), metadata=metadata)
    os.replace(tmp, path)
    model.training_info = training
    return path


def read_header(path: str | os.PathLike) -> tuple[dict[str, dict], dict[str, str]]:
    """The header of a `.safetensors` file, checked against the file's size, without torch.

    Returns:
        ({tensor name: {"dtype", "shape", "data_offsets"}}, string metadata).
    Raises:
        WeightFileError naming the file when it is truncated, random or malformed.
    """
    path = Path(path)
    size = path.stat().st_size
    bad = f"{path}: not a valid .safetensors file"
    with open(path, "rb") as f:
        prefix = f.read(8)
        if len(prefix) < 8:
            raise WeightFileError(f"{bad} (only {size} bytes); the file is truncated or not a weight file")
        length = struct.unpack("<Q", prefix)[0]  # little-endian u64: bytes of JSON that follow
        if length > min(size - 8, MAX_HEADER_BYTES):
            raise WeightFileError(f"{bad} (its header claims {length} bytes, the file has {size}); "
                                  "the file is truncated or not a weight file")
        raw = f.read(length)
    try:
        header = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise WeightFileError(f"{bad} (its header is not JSON: {err})") from None
    if not isinstance(header, dict):
        raise WeightFileError(f"{bad} (its header is not a JSON object)")
    metadata = header.pop("__metadata__", None) or {}
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise WeightFileError(f"{bad} (its __metadata__ must map names to strings)")
    data_bytes = size - 8 - length
    for name, info in header.items():
        try:
            dtype, shape, (start, end) = info["dtype"], list(info["shape"]), info["data_offsets"]
            valid = dtype in DTYPE_BYTES and all(isinstance(n, int) and n >= 0 for n in shape) \
                and isinstance(start, int) and isinstance(end, int) and 0 <= start <= end
        except (KeyError, TypeError, ValueError):
            valid = False
        if not valid:
            raise WeightFileError(f"{bad} (tensor {name!r} has a malformed entry {info!r})")
        if end > data_bytes:
            raise WeightFileError(f"{path}: truncated: tensor {name!r} ends at byte {end} of the data, "
                                  f"the file holds {data_bytes} bytes of data")
        if end - start != math.prod(shape) * DTYPE_BYTES[dtype]:
            raise WeightFileError(f"{bad} (tensor {name!r}: {end - start} bytes for shape {shape} {dtype})")
    return header, metadata


def _parse_json(path: Path, meta: dict, key: str, default: str | None = None):
    text = meta.get(key, default)
    try:
        return json.loads(text)
    except (TypeError, json.JSONDecodeError) as err:
        raise WeightFileError(f"{path}: metadata {key!r} is not valid JSON ({err}); the file is damaged "
                              "or was edited by hand") from None


def read_metadata(path: str | os.PathLike) -> dict:
    """The parsed metadata of an arasfsr weight file: {"format_version", "config", "training"}.

    Torch-free (reads the header only). Format-1 configs are upgraded to format 2.
    """
    return _read_checked(Path(path))[1]


def _read_checked(path: Path) -> tuple[dict[str, dict], dict]:
    """(tensor header, parsed metadata) of an arasfsr weight file, from one read of its header."""
    header, meta = read_header(path)
    if meta.get("format") != "arasfsr":
        raise WeightFileError(f"{path} is not an arasfsr weight file (no 'format: arasfsr' in its metadata)")
    version = meta.get("format_version")
    if version not in READABLE_VERSIONS:
        raise WeightFileError(f"{path} has weight format version {version!r}; this arasfsr "
                              f"reads versions {READABLE_VERSIONS}: upgrade arasfsr or re-export the weights")
    unknown = sorted(set(meta) - KNOWN_METADATA)
    if unknown:
        raise WeightFileError(f"{path} has unknown metadata keys {unknown}")
    config = _parse_json(path, meta, "config")
    training = _parse_json(path, meta, "training", "{}")
    if not isinstance(config, dict) or not isinstance(training, dict):
        raise WeightFileError(f"{path}: metadata 'config' and 'training' must be JSON objects")
    if version == "1":
        config = upgrade_config_v1(config)
    return header, {"format_version": version, "config": config, "training": training}


def upgrade_config_v1(config: dict) -> dict:
    """A format-1 model config as a format-2 one describing the same network."""
    config = dict(config)
    config.pop("kl_weight", None)  # a training setting, now in TrainConfig
    config.setdefault("lfe_activation", "leaky_relu")
    return config


def family_of(config: dict) -> str | None:
    """The `arasfsr.model.FAMILIES` name a config dict belongs to (e.g. "lte"), or None."""
    from .presets import FAMILIES

    defaults = {"projection_hidden": 0, "pixel_modulation": False, "projection_blocks": 0,
                "rel_frequencies": 0, "blend_hidden": False}  # keys older files lack
    for family, switches in sorted(FAMILIES.items(), key=lambda item: -len(item[1])):  # the most specific first
        if all(config.get(key, defaults.get(key)) == value for key, value in switches.items()):
            return family
    return None


def _check_config_bounds(path: Path, config: dict, header: dict[str, dict]) -> None:
    """Cheap bounds before the config is even built on `meta`: a count of blocks or layers cannot
    exceed the number of tensors in the file, and no width can exceed its largest tensor."""
    counts = len(header)
    largest = max((math.prod(info["shape"]) for info in header.values()), default=0)
    for key, value in config.items():
        if not isinstance(value, int) or isinstance(value, bool):
            continue
        bound = counts if key.endswith(("_blocks", "_layers")) else largest
        if not 0 <= value <= bound:
            raise WeightFileError(f"{path}: config {key}={value} cannot describe this file ({counts} tensors, "
                                  f"the largest of {largest} values); the config was tampered with or damaged")


def check_config_matches(path: str | os.PathLike, config: ModelConfig, header: dict[str, dict]) -> None:
    """Refuse a config whose model would not have exactly the file's tensor names and shapes.

    The expected shapes come from building the model on torch's `meta` device: no memory is
    allocated however large the config claims the model to be.
    """
    import torch

    from .model import SRModel

    with torch.device("meta"):
        expected = {k: tuple(v.shape) for k, v in SRModel(config).state_dict().items()}
    found = {k: tuple(info["shape"]) for k, info in header.items()}
    missing, extra = sorted(set(expected) - set(found)), sorted(set(found) - set(expected))
    if missing or extra:
        raise WeightFileError(f"{path}: its config does not match its tensors: missing {missing[:3]}, "
                              f"unexpected {extra[:3]} ({len(missing)} missing, {len(extra)} unexpected)")
    for key, shape in expected.items():
        if found[key] != shape:
            raise WeightFileError(f"{path}: its config does not match its tensors: {key} is {found[key]} in "
                                  f"the file but the config implies {shape}")


def load_model(name_or_path: str | os.PathLike | None = None, device: str | torch.device = "auto") -> SRModel:
    """Load a model in eval mode, every check made before any tensor is allocated.

    Args:
        name_or_path: a shipped model name (see `list_models()`: "arasfsr", "liif", "lte", ...),
            an arasfsr `.safetensors` file, a published LIIF `.pth` checkpoint, or None for the
            shipped ARASFSR weights.
        device: "auto" (CUDA when available, as `upscale`), "cpu", "cuda", ...
    Returns:
        The model in eval mode on `device`, with `.training_info` (dict) from the file.
    Raises:
        FileNotFoundError or WeightFileError (a ValueError), each with a one-line message.
    """
    from .model import ModelConfig
    from .threads import resolve_device

    path = resolve_weights(name_or_path)
    if path.suffix in (".pth", ".pt"):
        model, info = import_liif_checkpoint(path), {"source": f"published LIIF checkpoint {path.name}"}
    else:
        header, meta = _read_checked(path)
        values = meta["config"]
        _check_config_bounds(path, values, header)
        check_normalisation(path, values)
        try:
            config = ModelConfig.from_dict(values)
            check_config_matches(path, config, header)
        except WeightFileError:
            raise
        except (TypeError, ValueError, RuntimeError) as err:  # e.g. a string where a width belongs
            raise WeightFileError(f"{path}: invalid model config ({err})") from None
        model = _load_tensors(path, config)
        info = meta["training"]
    model.training_info = info
    return model.to(resolve_device(device)).eval()


def _load_tensors(path: Path, config: ModelConfig) -> SRModel:
    from safetensors import SafetensorError, safe_open

    from .model import SRModel

    model = SRModel(config)
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    except SafetensorError as err:
        raise WeightFileError(f"{path}: cannot read its tensors ({err})") from None
    check_finite(path, state)
    model.load_state_dict(state)  # strict: names and shapes were checked above
    return model


def check_finite(path, state: dict) -> None:
    """Refuse tensors holding NaN or infinity: such a model writes a garbage image without an error."""
    import torch

    for key, value in state.items():
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise WeightFileError(f"{path}: tensor {key} holds NaN or infinite values; the file is damaged")


def check_normalisation(path, config: dict) -> None:
    """norm_mean and norm_std must be finite numbers, the std positive (the image is divided by it)."""
    for key in ("norm_mean", "norm_std"):
        if key not in config:
            continue
        value = config[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise WeightFileError(f"{path}: config {key}={value!r} must be a finite number")
        if key == "norm_std" and value <= 0:
            raise WeightFileError(f"{path}: config norm_std={value!r} must be positive (images are divided by it)")


def import_liif_checkpoint(path: str | os.PathLike) -> SRModel:
    """Rebuild a published EDSR-baseline LIIF checkpoint as our `liif` model.

    The checkpoint is read with `weights_only=True` (no code runs). Its MLP input layout
    [unfolded latent (channel-major 3x3), rel coord, rel cell] is ours, so the linear layers map
    one to one; the EDSR mean-shift tensors are unused by the baseline encoder and dropped.
    """
    import pickle

    import torch

    from .model import ModelConfig, SRModel

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise WeightFileError(f"{path}: cannot read it as a torch checkpoint ({reason})") from None
    spec = ckpt.get("model") if isinstance(ckpt, dict) else None
    if not isinstance(spec, dict) or "sd" not in spec or "args" not in spec:
        raise WeightFileError(f"{path} is not a LIIF checkpoint (expected a dict with model = {{name, args, sd}})")
    if spec.get("name") != "liif":
        raise WeightFileError(f"{path} holds model {spec.get('name')!r}; only 'liif' checkpoints can be imported")
    args, sd = spec["args"], spec["sd"]
    if not isinstance(args, dict) or not isinstance(args.get("encoder_spec", {}), dict):
        raise WeightFileError(f"{path}: its model args must be a dict with an encoder_spec dict, got "
                              f"{type(args).__name__}; not a LIIF checkpoint this can import")
    if not isinstance(args.get("imnet_spec", {}), dict) or not isinstance(args.get("imnet_spec", {}).get("args", {}), dict):
        raise WeightFileError(f"{path}: its imnet_spec must be a dict; not a LIIF checkpoint this can import")
    encoder = args.get("encoder_spec", {}).get("name")
    if encoder != "edsr-baseline":
        raise WeightFileError(f"{path}: only EDSR-baseline LIIF checkpoints can be imported, this one uses {encoder!r}")
    for flag in ("local_ensemble", "feat_unfold", "cell_decode"):
        if not args.get(flag, True):
            raise WeightFileError(f"{path}: LIIF checkpoints with {flag}=False are not supported")
    hidden = args.get("imnet_spec", {}).get("args", {}).get("hidden_list", [256, 256, 256, 256])
    if not isinstance(hidden, list) or not hidden or not all(isinstance(h, int) and h > 0 for h in hidden):
        raise WeightFileError(f"{path}: imnet hidden_list must be a list of positive widths, got {hidden!r}")
    if len(set(hidden)) != 1:
        raise WeightFileError(f"{path}: LIIF MLPs with unequal hidden widths {hidden} are not supported")
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()) \
            or "encoder.head.0.weight" not in sd:
        raise WeightFileError(f"{path}: its state dict 'sd' is not an EDSR-baseline LIIF state dict")
    blocks = sum(1 for k in sd if k.startswith("encoder.body.") and k.endswith(".body.0.weight"))
    channels = sd["encoder.head.0.weight"].shape[0]
    config = ModelConfig(name="liif", encoder_channels=channels, encoder_blocks=blocks, hidden_dim=hidden[0],
                         hidden_layers=len(hidden), use_lfe=False, use_gcm=False, use_skip=False)
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
            raise WeightFileError(f"{path}: unexpected tensor {key!r}")
    # the arguments' widths against the tensors, on `meta`, before the model is allocated
    check_config_matches(path, config, {k: {"shape": list(v.shape)} for k, v in state.items()})
    check_finite(path, state)
    model = SRModel(config)
    model.load_state_dict(state)
    return model
