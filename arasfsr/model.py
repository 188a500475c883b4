"""ARASFSR, LIIF and LTE assembled from one frozen config.

    lr (B,3,h,w) in [0,1] --normalise--> u
      encoder(u) -> F_e (B,C,h,w)            [encoder.py]
      LFE(u)     -> F_f (B,8,h,w)            [lfe.py]     (ARASFSR)
      F = [F_e; F_f]
    query(F, coord, cell):
      local ensemble of an implicit MLP      [decoder.py] (+ GCM sine stream, gcm.py)
      + bilinear skip from u                 (ARASFSR, LTE)
      -> rgb (B,N,3) in [0,1] (not clamped)

The API is stateless: `encode` returns a `Features` object and `query` reads it, so one encoding
serves any number of query chunks, threads or output sizes.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .coords import sample_at
from .decoder import Frame, LocalImplicitDecoder, LTEDecoder
from .encoder import ENCODERS
from .lfe import BLOCK_ACTIVATIONS, LocalFrequencyEstimator, kl_divergence
from .presets import FAMILIES, MODEL_NAMES, PRESETS  # noqa: F401 (re-exported; torch-free for the CLI)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a model; stored inside every weight file."""
    name: str = "arasfsr"            # arasfsr | liif | lte (decoder family)
    encoder: str = "edsr-baseline"   # edsr-baseline | rdn
    encoder_channels: int = 64
    encoder_blocks: int = 16
    rdn_growth: int = 64             # RDN only
    rdn_layers: int = 8              # RDN only
    hidden_dim: int = 256
    hidden_layers: int = 4
    projection_hidden: int = 0       # > 0: a per-LR-pixel network (3x3 conv to this width, ReLU, 1x1) feeds
                                     # the first layer, which then reads only the query (arasfsr-fast)
    pixel_modulation: bool = False   # the pixel network also adds a term to every later hidden layer (LMF)
    projection_blocks: int = 0       # residual blocks (3x3 conv, ReLU, 1x1) inside the pixel network
    rel_frequencies: int = 0         # Fourier features of the query's offset for the first layer (fast decoder)
    blend_hidden: bool = False       # blend the four corners after the first hidden layer: the rest of the MLP
                                     # runs once per query, not once per corner (fast decoder)
    use_lfe: bool = True
    lfe_channels: int = 64
    lfe_blocks: int = 4
    lfe_latent_channels: int = 64
    lfe_out_channels: int = 8
    lfe_activation: str = "relu"     # inside the LFE's residual blocks (format-1 files: "leaky_relu")
    use_gcm: bool = True
    gcm_frequencies: int = 10
    use_skip: bool = True
    norm_mean: float = 0.5           # the network sees (img - mean) / std
    norm_std: float = 0.5

    def __post_init__(self):
        if self.name not in MODEL_NAMES:
            raise ValueError(f"unknown model name {self.name!r}; choose one of {MODEL_NAMES}")
        if self.encoder not in ENCODERS:
            raise ValueError(f"unknown encoder {self.encoder!r}; choose one of {tuple(ENCODERS)}")
        if self.lfe_activation not in BLOCK_ACTIVATIONS:
            raise ValueError(f"unknown lfe_activation {self.lfe_activation!r}; choose one of {tuple(BLOCK_ACTIVATIONS)}")
        if self.name == "lte" and self.projection_hidden:
            raise ValueError("LTE has no projection_hidden: its per-pixel terms are its amplitude and frequency convs")
        if self.projection_hidden < 0:
            raise ValueError(f"projection_hidden must be 0 or positive, got {self.projection_hidden}")
        if self.projection_blocks < 0 or self.rel_frequencies < 0:
            raise ValueError("projection_blocks and rel_frequencies must be 0 or positive")
        if (self.pixel_modulation or self.projection_blocks or self.rel_frequencies or self.blend_hidden) \
                and not self.projection_hidden:
            raise ValueError("pixel_modulation, projection_blocks, rel_frequencies and blend_hidden need a pixel "
                             "network: set projection_hidden > 0")
        if self.blend_hidden and self.pixel_modulation:
            raise ValueError("blend_hidden and pixel_modulation do not combine: the later layers run once per "
                             "query, so they have no corner's pixel term to add")
        if self.name == "lte" and (self.use_lfe or self.use_gcm):
            raise ValueError("LTE has no LFE or GCM: set use_lfe=False and use_gcm=False")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "ModelConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}: this file was written by a newer or "
                             f"different version of arasfsr (known keys: {sorted(known)})")
        return cls(**values)


@dataclass
class Features:
    """What `encode` computes once per LR image and `query` reads for every chunk."""
    latent: torch.Tensor              # (B, C, h, w) F = [F_e; F_f]
    lr_norm: torch.Tensor             # (B, 3, h, w) normalised input, for the skip
    projection: torch.Tensor | None   # (B, h*w, D) per-LR-pixel decoder terms (fast path)
    mu: torch.Tensor | None = None    # (B, latent, h, w) LFE mean
    logvar: torch.Tensor | None = None
    frame: Frame | None = None        # a tile of a larger image: its place there (decoder.tile_frame)

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.latent.shape[-2:])

    def kl(self) -> torch.Tensor:
        if self.mu is None:
            return self.latent.new_zeros(())
        return kl_divergence(self.mu, self.logvar)


class SRModel(nn.Module):
    """An implicit-representation super-resolution model (ARASFSR, LIIF or LTE)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        # what the weights were trained on (scale range, data, steps); set by load and save
        self.training_info: dict = {}
        c = config
        if c.encoder == "rdn":
            self.encoder = ENCODERS["rdn"](c.encoder_channels, c.encoder_blocks, c.rdn_growth, c.rdn_layers)
        else:
            self.encoder = ENCODERS[c.encoder](c.encoder_channels, c.encoder_blocks)
        self.lfe = LocalFrequencyEstimator(c.lfe_channels, c.lfe_blocks, c.lfe_latent_channels,
                                           c.lfe_out_channels, c.lfe_activation) if c.use_lfe else None
        latent_channels = c.encoder_channels + (c.lfe_out_channels if c.use_lfe else 0)
        if c.name == "lte":
            self.decoder = LTEDecoder(latent_channels, c.hidden_dim, c.hidden_layers)
        else:
            self.decoder = LocalImplicitDecoder(latent_channels, c.hidden_dim, c.hidden_layers,
                                                c.use_gcm, c.gcm_frequencies, c.projection_hidden,
                                                c.pixel_modulation, c.projection_blocks, c.rel_frequencies,
                                                c.blend_hidden)

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike | None = None,
                        device: str | torch.device = "auto") -> "SRModel":
        """`arasfsr.load_model`: a shipped name ("arasfsr", "liif", "lte", ...) or a weight file."""
        from .weights import load_model
        return load_model(name_or_path, device=device)

    def save_pretrained(self, path: str | os.PathLike, training: dict | None = None) -> Path:
        """`arasfsr.save_model`: a `.safetensors` file with the config and `training` facts."""
        from .weights import save_model
        return save_model(self, path, training=training)

    def encode(self, lr_image: torch.Tensor, sample: bool | None = None,
               generator: torch.Generator | None = None, project: bool = True,
               frame: Frame | None = None) -> Features:
        """Encode an LR image.

        Args:
            lr_image: (B, 3, h, w) in [0, 1].
            sample: draw the LFE latent z = mu + eps * sigma (default: only in training mode);
                otherwise z = mu, which makes inference deterministic.
            generator: random source for sampling (seed it for reproducible samples).
            project: precompute the per-LR-pixel decoder terms used by the fast query.
            frame: `lr_image` is a tile of a larger image, placed there by this frame
                (`decoder.tile_frame`); queries are then given in the tile's [-1, 1] frame, and
                GCM reads the position in the whole image. None: the whole image.
        """
        if lr_image.ndim != 4 or lr_image.shape[1] != 3:
            raise ValueError(f"lr_image must be (B, 3, h, w), got {tuple(lr_image.shape)}")
        lr_norm = (lr_image - self.config.norm_mean) / self.config.norm_std
        latent = self.encoder(lr_norm)
        mu = logvar = None
        if self.lfe is not None:
            sample = self.training if sample is None else sample
            f_f, mu, logvar = self.lfe(lr_norm, sample=sample, generator=generator)
            latent = torch.cat([latent, f_f], dim=1)  # (B, C + 8, h, w)
        projection = self.decoder.project(latent, frame) if project else None
        return Features(latent, lr_norm, projection, mu, logvar, frame)

    def query(self, features: Features, coord: torch.Tensor, cell: torch.Tensor,
              fast: bool = True) -> torch.Tensor:
        """RGB at continuous coordinates.

        Args:
            coord: (B, N, 2) (row, col) in [-1, 1].
            cell: (B, N, 2) output pixel size, (2 / H, 2 / W) for an H x W output.
            fast: use the precomputed projection (same numbers as the straightforward path).
        Returns:
            (B, N, 3) in [0, 1] units, not clamped (clamp when making an image).
        """
        if coord.shape[:-1] != cell.shape[:-1] or coord.shape[-1] != 2 or cell.shape[-1] != 2:
            raise ValueError(f"coord and cell must both be (B, N, 2), got {tuple(coord.shape)} and {tuple(cell.shape)}")
        if fast:
            projection = features.projection
            if projection is None:
                projection = self.decoder.project(features.latent, features.frame)
            pred = self.decoder.forward_fast(projection, features.shape, coord, cell, features.frame)
        else:
            pred = self.decoder.forward_reference(features.latent, coord, cell, features.frame)
        if self.config.use_skip:
            pred = pred + sample_at(features.lr_norm, coord, mode="bilinear", padding_mode="border")
        return pred * self.config.norm_std + self.config.norm_mean

    def forward(self, lr_image: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor,
                with_kl: bool = False, with_features: bool = False):
        """encode + query in one call (the path DistributedDataParallel wraps).

        Returns (B, N, 3); ((B, N, 3), KL scalar) when with_kl; ((B, N, 3), Features) when
        with_features (the trainer reads the LFE's log-variance from them).
        """
        features = self.encode(lr_image)
        pred = self.query(features, coord, cell)
        if with_features:
            return pred, features
        return (pred, features.kl()) if with_kl else pred


def grow_state_dict(model: SRModel, source: SRModel) -> list[str]:
    """Load `source`'s weights into `model`, a grown copy of it: the same config except more
    capacity, each new part starting so that `model` computes what `source` computes:

    - fast decoder: pixel_modulation switched on, more projection_blocks, rel_frequencies where
      there were none (the new parts' last weights start at zero);
    - EDSR-baseline encoder: more encoder_blocks (the new blocks go before the body's last conv;
      their last conv starts at zero, so each is the identity), and for LTE more encoder_channels
      (new channels start random; every old output, and LTE's amplitude and frequency convs, reads
      them through weights that start at zero, so they are computed but not yet used).

    Returns the names of the tensors that were grown or are new. Raises ValueError when `model`
    is not a grown `source` (any other config difference, or a shape that cannot be grown).
    """
    mine, theirs = model.config.to_dict(), source.config.to_dict()
    grows = {"pixel_modulation": lambda old, new: not old and new,
             "projection_blocks": lambda old, new: new > old,
             "rel_frequencies": lambda old, new: old == 0 and new > 0,
             "encoder_blocks": lambda old, new: new > old,
             "encoder_channels": lambda old, new: new > old}
    for key in mine:
        if mine[key] != theirs[key] and not (key in grows and grows[key](theirs[key], mine[key])):
            raise ValueError(f"cannot grow a {key}={theirs[key]!r} model into {key}={mine[key]!r}")
    if mine["encoder"] != "edsr-baseline" and (mine["encoder_blocks"], mine["encoder_channels"]) != \
            (theirs["encoder_blocks"], theirs["encoder_channels"]):
        raise ValueError(f"cannot grow a {mine['encoder']} encoder: only edsr-baseline grows")
    if mine["encoder_channels"] != theirs["encoder_channels"] and mine["name"] != "lte":
        # other decoders read the latent through layouts (LFE channels after the encoder's, LIIF's
        # 3x3 unfold) that wider encoders would shift
        raise ValueError(f"cannot grow encoder_channels of a {mine['name']} model: only LTE's grow")
    old_blocks, new_blocks = theirs["encoder_blocks"], mine["encoder_blocks"]

    def rename(name: str) -> str:  # the body's last conv moves behind the new blocks
        last = f"encoder.body.{old_blocks}."
        return f"encoder.body.{new_blocks}." + name[len(last):] if name.startswith(last) else name

    state, grown, seen = model.state_dict(), [], set()
    for name, tensor in source.state_dict().items():
        name = rename(name)
        seen.add(name)
        target = state[name]
        if target.shape == tensor.shape:
            target.copy_(tensor)
            continue
        if target.ndim != tensor.ndim or any(t < s for t, s in zip(target.shape, tensor.shape)):
            raise ValueError(f"cannot grow {name} from {tuple(tensor.shape)} to {tuple(target.shape)}")
        target[tuple(slice(0, n) for n in tensor.shape)] = tensor  # new rows keep their fresh init
        if target.ndim > 1:  # the old outputs do not read the new inputs (yet)
            target[:tensor.shape[0], tensor.shape[1]:] = 0
        grown.append(name)
    for i in range(old_blocks, new_blocks):  # new residual blocks start as the identity
        state[f"encoder.body.{i}.body.2.weight"].zero_()
        state[f"encoder.body.{i}.body.2.bias"].zero_()
    grown += sorted(set(state) - seen)
    model.load_state_dict(state)
    return grown


def create_model(name: str = "arasfsr", preset: str = "small", pretrained: bool = False,
                 **overrides) -> SRModel:
    """Build a randomly initialised model, or (pretrained=True) load the shipped weights of `name`.

    Args:
        name: arasfsr, liif, lte, or an ablation: arasfsr-no-lfe, arasfsr-no-gcm, arasfsr-no-skip.
        preset: paper, small or tiny (sizes only; same structure).
        pretrained: the shipped weights (as timm's `create_model`); they are `small` models, so
            another preset or any override is an error rather than silently ignored.
        overrides: any `ModelConfig` field, e.g. encoder="rdn".
    """
    if pretrained:
        from .weights import load_model
        model = load_model(name, device="cpu")
        if preset != model.training_info.get("preset", preset) or overrides:
            raise ValueError(f"the shipped {name!r} weights are a {model.training_info.get('preset')!r} model with "
                             f"their own config: drop preset={preset!r} / {sorted(overrides)} or pretrained=True")
        return model
    if name not in FAMILIES:
        raise ValueError(f"unknown model {name!r}; choose one of {tuple(FAMILIES)}")
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {tuple(PRESETS)}")
    values = {**PRESETS[preset], **FAMILIES[name], **overrides}
    return SRModel(ModelConfig.from_dict(values))
