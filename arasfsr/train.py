"""Training: Charbonnier loss on random query pixels of whole aligned faces.

    python -m arasfsr train --model arasfsr --preset small --data data/faces --steps 3000 --out runs/arasfsr_small

One step: a batch of HR masters -> (one LR size per batch, a scale per face, N random HR pixels
per face) -> loss = mean(sqrt((pred - gt)^2 + 1e-6)) in normalised units (+ kl_weight * KL).
Batch k is a pure function of (seed, rank, k), built in DataLoader workers or in the main process
with the same bytes, so a run killed at any point and resumed from its last checkpoint (written
atomically, loaded with `weights_only=True`) continues exactly where it was.
`torchrun --nproc_per_node N` runs data-parallel (DDP; NCCL on GPUs, gloo on CPUs).

Stability (see the model card): the global gradient norm is clipped, an exponential moving
average (EMA) of the weights is kept and exported when it validates better, and a guard stops the
run, without saving, when the loss, the gradients or the weights stop being finite or explode.
A collapse that stays finite (a hidden layer of the decoder dies: every ReLU unit negative for
every input, and the model falls back to its bilinear skip, 22.30 dB on our validation faces)
is caught by validation: when it falls more than `rollback_drop` dB below the best so far, the
run returns to the best weights (and optimiser state) and continues with half the learning rate.
Every 10 steps the log holds the loss per scale band, the gradient norm before clipping and the
range of the LFE's log-variance: the quantities that tell why a run went wrong.

The `Trainer` reads as the steps of a run: setup (model, optimiser, data), `resume`, `step`,
`validate`, `checkpoint`, `export`; `train()` drives them.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from .model import FAMILIES, PRESETS, create_model

# A weight this large (in absolute value) means the run has exploded: such weights are never
# saved as "the last good checkpoint". Healthy runs stay below 10 (measured on the shipped runs).
MAX_PARAMETER_ABS = 1e4
# The default learning rate per preset when none is given. The paper preset takes the authors'
# LIIF recipe (1e-4): at 4e-4 two of five GPU runs collapsed (a decoder layer died, the model fell
# back to its bilinear skip). The small presets were trained at 4e-4 without a collapse.
PRESET_LEARNING_RATES = {"paper": 1e-4, "small": 4e-4, "tiny": 4e-4}
# Settings that define what is trained; a resumed run must keep them.
FIXED_ON_RESUME = ("model", "preset")
# Settings of the machine, not of the run (and init_from, which only matters at step 0): never
# compared on resume.
RUNTIME_SETTINGS = ("out", "threads", "device", "workers", "data", "data_description", "compile", "init_from",
                    "select_data", "val_input_size")
SCALE_BANDS = ((1.0, 2.0), (2.0, 4.0), (4.0, float("inf")))  # for the per-scale loss log


@dataclass
class TrainConfig:
    model: str = "arasfsr"
    preset: str = "small"
    data: str = "data/faces"
    out: str = "runs/train"
    steps: int = 2000
    batch_size: int = 8
    num_queries: int = 1024
    learning_rate: float = 4e-4
    lr_decay_at: float = 0.8            # multiply the learning rate by 0.1 after this fraction of steps
    warmup_steps: int = 100             # linear learning-rate warm-up
    grad_clip: float = 1.0              # max global gradient norm (0: no clipping)
    ema_decay: float = 0.999            # EMA of the weights (0: none)
    rollback_drop: float = 0.5          # validation this many dB below the best: roll back, halve the lr (0: off)
    input_sizes: tuple[int, int] = (16, 64)
    scale_range: tuple[float, float] = (1.0, 8.0)
    degradation: str = "bicubic"        # bicubic | nn_jpeg | realistic | mixed | heavy | jpegQ
    hflip: bool = True                  # random horizontal flips
    photometric: float = 0.0            # probability of a random colour cast / gamma / contrast / saturation
    geometric: float = 0.0              # probability of a random roll (<= 10 deg), zoom and shift
    select_data: str = ""               # faces from elsewhere (their val split): pick the exported weights by them
    kl_weight: float = 0.0              # the authors define a KL term and train with weight 0
    init_from: str = ""                 # start from these weights (.safetensors), e.g. to fine-tune
    val_every: int = 250
    crop: bool = False                  # HR patches at native pixels (photographs), not whole faces resized
    val_input_size: int = 16            # validation LR side (x4): 16 for faces, 64 for 512 px photo tiles
    ckpt_every: int = 250
    seed: int = 0
    threads: int = 0                     # torch threads on the CPU (0: torch's default)
    workers: int = 0                     # DataLoader worker processes building batches
    device: str = "auto"
    amp: bool = False                    # bfloat16 autocast, CUDA only
    compile: bool = False                # torch.compile
    data_description: str = ""


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6, dim=None) -> torch.Tensor:
    """The training loss: mean of sqrt((pred - target)^2 + eps), over `dim` (None: everything)."""
    error = torch.sqrt((pred - target) ** 2 + eps)
    return error.mean() if dim is None else error.mean(dim=dim)


def learning_rate_at(cfg: TrainConfig, step: int) -> float:
    """Linear warm-up over `warmup_steps`, then constant, x0.1 from `lr_decay_at` of the run."""
    lr = cfg.learning_rate
    if step >= max(1, int(cfg.steps * cfg.lr_decay_at)):
        lr *= 0.1
    if cfg.warmup_steps > 0:
        lr *= min(1.0, (step + 1) / cfg.warmup_steps)
    return lr


def _rank() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


class Batches(torch.utils.data.Dataset):
    """Item k = batch k: the faces and every random choice drawn from a generator seeded with
    (seed, rank, k), so any process (a DataLoader worker or the main one) makes the same bytes."""

    def __init__(self, masters, collate, batch_size: int, seed: int, rank: int, steps: int):
        if len(masters) < batch_size:
            raise ValueError(f"the training split has {len(masters)} images, fewer than batch_size={batch_size}")
        self.masters, self.collate, self.batch_size = masters, collate, batch_size
        self.seed, self.rank, self.steps = seed, rank, steps

    def __len__(self) -> int:
        return self.steps

    def __getitem__(self, step: int) -> dict:
        rng = np.random.default_rng([self.seed, self.rank, step])
        index = rng.choice(len(self.masters), self.batch_size, replace=False)
        return self.collate([self.masters[i] for i in index], rng=rng)


def batch_loader(batches: Batches, start: int, workers: int):
    """Batches start, start+1, ... in order; `workers` processes build them ahead of the GPU."""
    return torch.utils.data.DataLoader(
        batches, batch_size=None, sampler=range(start, len(batches)), num_workers=workers,
        prefetch_factor=4 if workers else None, persistent_workers=False,
        pin_memory=torch.cuda.is_available(),
        # the loader draws a seed when it starts: from its own generator, not the global one
        # that the LFE's sampling uses, so a resumed run draws the same noise as an unbroken one
        generator=torch.Generator().manual_seed(batches.seed))


def training_masters(data: str) -> list:
    """The training faces: the manifest's train split, else every image in the folder."""
    from .data import FaceFolder
    folder = FaceFolder.for_split(data, "train")
    return [folder[i] for i in range(len(folder))]  # small aligned faces: keep them in memory


def validation_set(data: str, input_size: int = 16, scale: float = 4.0, limit: int = 16,
                   degradation: str = "bicubic"):
    """LR/HR pairs from the val split (authors' protocol: both from the master)."""
    from .data import FaceFolder, make_eval_pair
    manifest = Path(data) / "manifest.json"
    if not manifest.exists() or not any(e["split"] == "val" for e in json.loads(manifest.read_text())["files"]):
        return []  # no held-out faces: train without validation
    folder = FaceFolder(data, split="val")
    pairs = []
    for i in range(min(limit, len(folder))):
        master = folder[i]
        if master.size[0] >= round(input_size * scale):
            pairs.append(make_eval_pair(master, input_size, scale, degradation))
    return pairs


def validation_kinds(degradation: str) -> tuple[str, ...]:
    """The LR operators a run is validated on: its own, JPEG q40 for `realistic`, clean and q40 for `mixed`."""
    return {"realistic": ("jpeg40",), "mixed": ("bicubic", "jpeg40"), "heavy": ("jpeg40",)}.get(degradation, (degradation,))


def validate(model, pairs) -> float:
    """Mean Y-PSNR of a model (or "bicubic") over (lr, hr) pairs; NaN without pairs."""
    from .inference import upscale
    from .metrics import psnr_y
    if not pairs:
        return float("nan")
    if isinstance(model, str):
        return float(np.mean([psnr_y(upscale(model, lr, size=hr.size[::-1]), hr) for lr, hr in pairs]))
    was_training = model.training
    device = next(model.parameters()).device
    psnr = float(np.mean([psnr_y(upscale(model, lr, size=hr.size[::-1], device=device), hr) for lr, hr in pairs]))
    model.train(was_training)
    return psnr


def weights_problem(model: torch.nn.Module) -> str | None:
    """Why these weights must not be saved as good (non-finite or exploded), or None."""
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            return f"parameter {name} is not finite"
        peak = p.detach().abs().max().item()
        if peak > MAX_PARAMETER_ABS:
            return f"parameter {name} reached |w| = {peak:.3g} (limit {MAX_PARAMETER_ABS:g}): the run exploded"
    return None


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoint intact


def _plot_curves(log_path: Path, png_path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    train = [r for r in rows if "loss" in r]
    val = [r for r in rows if "val_psnr" in r]
    fig = Figure(figsize=(13, 3.4))
    ax = fig.subplots(1, 3)
    steps = [r["step"] for r in train]
    ax[0].plot(steps, [r["loss"] for r in train], lw=0.8, label="all")
    for band in SCALE_BANDS:
        key = _band_name(band)
        ax[0].plot(steps, [r.get("loss_" + key, float("nan")) for r in train], lw=0.6, label=key)
    ax[0].set(xlabel="step", ylabel="Charbonnier loss", yscale="log", title="training loss (per scale band)")
    ax[0].legend(fontsize=7)
    ax[1].plot(steps, [r.get("grad_norm", float("nan")) for r in train], lw=0.8, label="gradient norm")
    if any("logvar_max" in r for r in train):
        ax[1].plot(steps, [r.get("logvar_max", float("nan")) for r in train], lw=0.8, label="LFE log-var max")
        ax[1].plot(steps, [r.get("logvar_min", float("nan")) for r in train], lw=0.8, label="LFE log-var min")
    ax[1].set(xlabel="step", yscale="symlog", title="what tells")
    ax[1].legend(fontsize=7)
    if val:
        ax[2].plot([r["step"] for r in val], [r["val_psnr"] for r in val], "o-", label="model")
        if any("ema_val_psnr" in r for r in val):
            ax[2].plot([r["step"] for r in val], [r.get("ema_val_psnr", float("nan")) for r in val], "s-", label="EMA")
        if "bicubic_psnr" in val[0]:
            ax[2].axhline(val[0]["bicubic_psnr"], color="gray", ls="--", label="bicubic")
        ax[2].legend(fontsize=7)
    ax[2].set(xlabel="step", ylabel="Y-PSNR (dB)", title="validation")
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)


def _band_name(band) -> str:
    lo, hi = band
    return f"x{lo:g}-{hi:g}" if np.isfinite(hi) else f"x{lo:g}+"


class Trainer:
    """One training run. Methods in the order a run uses them."""

    def __init__(self, cfg: TrainConfig, progress: bool = True):
        self.cfg, self.progress = cfg, progress
        self.distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
        if self.distributed and not dist.is_initialized():
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
        self.rank, self.world = _rank()
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        from .threads import resolve_device
        self.device = resolve_device(cfg.device)
        if self.device.type == "cuda" and self.distributed:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        self.out = Path(cfg.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.ckpt_path, self.log_path = self.out / "last.pt", self.out / "log.jsonl"

        torch.manual_seed(cfg.seed + self.rank)
        self.model = create_model(cfg.model, preset=cfg.preset).to(self.device)
        self.init_info = self._init_from(cfg.init_from) if cfg.init_from else None
        self.ema = None
        if cfg.ema_decay > 0:
            self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.learning_rate)
        self.step_index, self.elapsed = 0, 0.0
        self.last_val = {"val_psnr": float("nan"), "ema_val_psnr": float("nan")}
        self.best: dict | None = None   # the best-validating state so far, for rollbacks
        self.best_select: dict | None = None  # step and score of the best state on --select-data
        self.lr_scale = 1.0             # halved at every rollback

    # ---- setup ---------------------------------------------------------------------------
    def _init_from(self, path: str) -> dict:
        from .weights import load_model
        source = load_model(path)
        if source.config.name != self.model.config.name:
            raise ValueError(f"--init-from {path} holds a {source.config.name} model, not {self.model.config.name}")
        try:
            self.model.load_state_dict(source.state_dict())
        except RuntimeError as err:
            raise ValueError(f"--init-from {path} does not fit {self.cfg.model}/{self.cfg.preset}: "
                             f"{str(err).splitlines()[0]}") from None
        return {"file": Path(path).name, "steps": source.training_info.get("steps"),
                "lfe_activation": source.config.lfe_activation}

    def data(self):
        from .data import SRBatchCollate
        cfg = self.cfg
        collate = SRBatchCollate(cfg.input_sizes, cfg.scale_range, cfg.num_queries, cfg.degradation,
                                 seed=cfg.seed, hflip=cfg.hflip, photometric=cfg.photometric, geometric=cfg.geometric,
                                 crop=cfg.crop)
        self.batches = Batches(training_masters(cfg.data), collate, cfg.batch_size, cfg.seed, self.rank, cfg.steps)
        # validation on the training degradation (so real-world weights are judged on real-world inputs;
        # a mixed model on clean and JPEG q40 inputs both)
        kinds = validation_kinds(cfg.degradation)
        self.val_pairs = ([p for k in kinds for p in validation_set(cfg.data, cfg.val_input_size, degradation=k)]
                          if self.rank == 0 else [])
        self.bicubic_val = validate("bicubic", self.val_pairs)
        # faces from elsewhere: the export is the state that scored best on them
        self.select_pairs = []
        if cfg.select_data and self.rank == 0:
            self.select_pairs = [p for k in kinds for p in validation_set(cfg.select_data, degradation=k, limit=64)]
            if not self.select_pairs:
                raise ValueError(f"--select-data {cfg.select_data}: no val-split faces of 64 px or more there")
        self.bicubic_select = validate("bicubic", self.select_pairs)

    # ---- resume --------------------------------------------------------------------------
    def resume(self) -> None:
        """Continue from `last.pt`. The file is read with weights_only=True: a checkpoint from
        someone else cannot run code. Changed settings are applied and named, except those that
        define what is trained (model, preset), which are refused."""
        cfg = self.cfg
        if not self.ckpt_path.exists():
            if self.rank == 0:
                print(f"no checkpoint in {self.out}: starting from step 0", file=sys.stderr)
            return
        try:
            state = torch.load(self.ckpt_path, map_location="cpu", weights_only=True)
        except Exception as err:  # noqa: BLE001 (the unpickler's refusals have many types; re-raised as one)
            raise ValueError(f"{self.ckpt_path} cannot be resumed safely ({type(err).__name__}: "
                             f"{str(err).splitlines()[0]}); it is not a checkpoint written by arasfsr") from None
        saved = state["config"]
        for key in FIXED_ON_RESUME:
            if saved[key] != getattr(cfg, key):
                raise ValueError(f"{self.ckpt_path} is a {saved['model']}/{saved['preset']} run; it cannot be "
                                 f"resumed as {cfg.model}/{cfg.preset} ({key} differs)")
        changed = [f"{f.name} {_plain(saved.get(f.name))} -> {_plain(getattr(cfg, f.name))}" for f in fields(cfg)
                   if f.name not in RUNTIME_SETTINGS + FIXED_ON_RESUME
                   and _plain(saved.get(f.name)) != _plain(getattr(cfg, f.name))]
        if changed and self.rank == 0:
            print("resume: applying changed settings: " + "; ".join(changed), file=sys.stderr)
        self.model.load_state_dict(state["model"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"] if state.get("ema") is not None else state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step_index, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.best, self.lr_scale = state.get("best"), float(state.get("lr_scale", 1.0))
        if state.get("config", {}).get("select_data") == cfg.select_data:  # a new selection set starts afresh
            self.best_select = state.get("best_select")
        rngs = state["rng"]
        torch.set_rng_state(rngs[self.rank] if self.rank < len(rngs) else rngs[0])
        if self.rank == 0 and self.log_path.exists():  # drop log lines written after the checkpoint
            rows = [line for line in self.log_path.read_text().splitlines() if line.strip()]
            self.log_path.write_text("".join(line + "\n" for line in rows if json.loads(line)["step"] <= self.step_index))

    # ---- one optimisation step -----------------------------------------------------------
    def step(self, net, batch: dict) -> dict:
        """Forward, loss, backward, clip, update, EMA; returns the step's statistics."""
        cfg, model = self.cfg, self.model
        lr = learning_rate_at(cfg, self.step_index) * self.lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.amp and self.device.type == "cuda"):
            pred, features = net(batch["lr"], batch["coord"], batch["cell"], with_features=True)
        std = model.config.norm_std  # the loss in normalised units, as in the paper: (x - mean) / std
        per_sample = charbonnier(pred.float() / std, batch["gt"] / std, dim=(1, 2))  # (B,)
        loss = per_sample.mean()
        if cfg.kl_weight:
            loss = loss + cfg.kl_weight * features.kl().float()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {self.step_index}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in model.parameters() if p.grad is not None]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip if cfg.grad_clip > 0 else float("inf"))
        if not torch.isfinite(grad_norm):
            raise FloatingPointError(f"gradient norm is {grad_norm.item()} at step {self.step_index}")
        self.optimizer.step()
        if self.ema is not None:
            # the EMA follows the weights closely at first, then averages over ~1/(1-decay) steps
            decay = min(cfg.ema_decay, (1 + self.step_index) / (10 + self.step_index))
            with torch.no_grad():
                for e, p in zip(self.ema.parameters(), model.parameters()):
                    e.lerp_(p, 1 - decay)
        self.step_index += 1
        stats = {"loss": loss.item(), "grad_norm": grad_norm.item(), "lr": lr}
        scales = batch["scale"]
        for band in SCALE_BANDS:
            inside = (scales >= band[0]) & (scales < band[1])
            if inside.any():
                stats["loss_" + _band_name(band)] = per_sample.detach()[inside].mean().item()
        if features.logvar is not None:
            stats["logvar_min"] = features.logvar.detach().min().item()
            stats["logvar_max"] = features.logvar.detach().max().item()
        return stats

    # ---- validation, checkpoints, export -------------------------------------------------
    def validate(self) -> dict:
        result = {"val_psnr": validate(self.model, self.val_pairs)}
        if self.ema is not None:
            result["ema_val_psnr"] = validate(self.ema, self.val_pairs)
        self.last_val = result
        self._keep_best_or_roll_back(result)
        if self.select_pairs:
            self._select(result)
        return result

    def _select(self, result: dict) -> None:
        """Score raw and EMA weights on the faces from elsewhere; export the best state so far."""
        scores = {"raw": validate(self.model, self.select_pairs)}
        if self.ema is not None:
            scores["ema"] = validate(self.ema, self.select_pairs)
        which = max(scores, key=scores.get)
        result.update({f"select_{k}_psnr": v for k, v in scores.items()})
        result["select_bicubic_psnr"] = self.bicubic_select
        best = self.best_select or {}
        if scores[which] > best.get("psnr", float("-inf")):
            self.best_select = {"psnr": scores[which], "step": self.step_index, "exported": which}
            self.export(self.ema if which == "ema" else self.model, which,
                        self.out / f"{self.cfg.model}_{self.cfg.preset}.selected.safetensors")

    def _state(self) -> dict:
        """Model, optimiser and EMA state, copied to the CPU."""
        def cpu(sd):
            return copy.deepcopy({k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in sd.items()})
        return {"model": cpu(self.model.state_dict()), "optimizer": copy.deepcopy(self.optimizer.state_dict()),
                "ema": cpu(self.ema.state_dict()) if self.ema is not None else None}

    def _keep_best_or_roll_back(self, result: dict) -> None:
        finite = [v for v in result.values() if np.isfinite(v)]
        if not finite or self.cfg.rollback_drop <= 0:
            return
        score = max(finite)  # the better of the raw and the EMA weights
        if self.best is None or score > self.best["val"]:
            self.best = {"val": score, "step": self.step_index, "result": dict(result), **self._state()}
        elif score < self.best["val"] - self.cfg.rollback_drop:
            self.model.load_state_dict(self.best["model"])
            self.optimizer.load_state_dict(self.best["optimizer"])
            if self.ema is not None and self.best["ema"] is not None:
                self.ema.load_state_dict(self.best["ema"])
            self.lr_scale *= 0.5
            result["rolled_back_to"] = self.best["step"]
            result["lr_scale"] = self.lr_scale
            self.last_val = dict(self.best["result"])  # what the weights now in use scored
            print(f"step {self.step_index}: validation {score:.2f} dB is {self.best['val'] - score:.2f} dB below the "
                  f"best ({self.best['val']:.2f} dB at step {self.best['step']}): rolled back to those weights, "
                  f"learning rate x{self.lr_scale:g}", file=sys.stderr)

    def checkpoint(self) -> None:
        problem = weights_problem(self.model)
        if problem:  # never keep poisoned weights as "the last good checkpoint"
            raise FloatingPointError(f"{problem} at step {self.step_index}")
        rngs = [torch.get_rng_state()]
        if self.distributed:
            gathered = [None] * self.world
            dist.all_gather_object(gathered, rngs[0])
            rngs = gathered
        if self.rank == 0:
            _save_atomic({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                          "ema": self.ema.state_dict() if self.ema is not None else None,
                          "step": self.step_index, "elapsed": self.elapsed, "rng": rngs,
                          "best": self.best, "lr_scale": self.lr_scale, "best_select": self.best_select,
                          "config": {k: _plain(v) for k, v in asdict(self.cfg).items()}}, self.ckpt_path)

    def export(self, chosen=None, exported: str = "", export: Path | None = None) -> Path:
        """Write the better of the raw and EMA weights (by the last validation) as .safetensors
        (or `chosen`, labelled `exported`, to `export`)."""
        from .weights import save_model
        cfg = self.cfg
        if chosen is None:
            raw_better = self.last_val["val_psnr"] > self.last_val.get("ema_val_psnr", float("nan"))
            use_ema = self.ema is not None and not raw_better
            chosen, exported = (self.ema, "ema") if use_ema else (self.model, "raw")
        problem = weights_problem(chosen)
        if problem:
            raise FloatingPointError(f"{problem}: not exported")
        export = export or self.out / f"{cfg.model}_{cfg.preset}.safetensors"
        val_kind = "+".join(validation_kinds(cfg.degradation))
        extra = {}
        if self.best_select:
            extra = {"selected_on": Path(cfg.select_data).name,
                     "selected_psnr_16_to_64": round(self.best_select["psnr"], 3),
                     "selected_step": self.best_select["step"]}
        save_model(chosen, export, training={
            "model": cfg.model, "preset": cfg.preset, "steps": self.step_index, "wall_time_s": round(self.elapsed, 1),
            "batch_size": cfg.batch_size * self.world, "num_queries": cfg.num_queries,
            "learning_rate": cfg.learning_rate, "warmup_steps": cfg.warmup_steps, "grad_clip": cfg.grad_clip,
            "ema_decay": cfg.ema_decay, "exported": exported,
            "rollbacks": round(-np.log2(self.lr_scale)),
            "input_sizes": list(cfg.input_sizes), "scale_range": list(cfg.scale_range),
            "degradation": cfg.degradation, "hflip": cfg.hflip, "kl_weight": cfg.kl_weight,
            "photometric": cfg.photometric, "geometric": cfg.geometric, "crop": cfg.crop, **extra,
            "init_from": self.init_info, "data": cfg.data_description or Path(cfg.data).name,
            f"val_psnr_{cfg.val_input_size}_to_{4 * cfg.val_input_size}_{val_kind}": round(max(self.last_val["val_psnr"],
                                                       self.last_val.get("ema_val_psnr", float("-inf"))), 3),
            "world_size": self.world})
        return export

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> Path:
        from tqdm import tqdm
        cfg = self.cfg
        net = self.model
        if self.distributed:
            net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if cfg.compile:
            net = torch.compile(net)
        if self.rank == 0 and self.step_index == 0 and self.log_path.exists():
            self.log_path.unlink()
        self.model.train()
        bar = tqdm(total=cfg.steps, initial=self.step_index, disable=not self.progress or self.rank != 0,
                   desc=f"train {cfg.model}", unit="step", dynamic_ncols=True)
        log = open(self.log_path, "a") if self.rank == 0 else None
        window: list[dict] = []
        try:
            t0 = time.perf_counter()
            for batch in batch_loader(self.batches, self.step_index, cfg.workers):
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                try:
                    stats = self.step(net, batch)
                except FloatingPointError as err:
                    raise FloatingPointError(
                        f"{err}: stopping without saving (the last good checkpoint, if any, is {self.ckpt_path}); "
                        "lower --learning-rate or check the data") from None
                now = time.perf_counter()
                self.elapsed += now - t0
                t0 = now
                window.append(stats)
                bar.update(1)
                step = self.step_index
                if log is not None and (step % 10 == 0 or step == cfg.steps):
                    log.write(json.dumps({"step": step, **_summarise(window), "elapsed_s": round(self.elapsed, 1)}) + "\n")
                    window = []
                if self.rank == 0 and self.val_pairs and (step % cfg.val_every == 0 or step == cfg.steps):
                    val = self.validate()
                    log.write(json.dumps({"step": step, **{k: round(v, 3) for k, v in val.items()},
                                          "bicubic_psnr": round(self.bicubic_val, 3)}) + "\n")
                    log.flush()
                    _plot_curves(self.log_path, self.out / "curves.png")
                    t0 = time.perf_counter()  # validation time is not training time
                bar.set_postfix(loss=f"{stats['loss']:.4f}", val_psnr=f"{self.last_val['val_psnr']:.2f}")
                if step % cfg.ckpt_every == 0 or step == cfg.steps:
                    if log is not None:
                        log.flush()
                    try:
                        self.checkpoint()
                    except FloatingPointError as err:
                        raise FloatingPointError(
                            f"{err}: stopping without saving (the last good checkpoint, if any, is "
                            f"{self.ckpt_path}); lower --learning-rate") from None
        finally:
            bar.close()
            if log is not None:
                log.close()
        export = None
        if self.rank == 0:
            _plot_curves(self.log_path, self.out / "curves.png")
            export = self.export()
        if self.distributed:
            dist.barrier()
        return export or self.out / f"{cfg.model}_{cfg.preset}.safetensors"


def _plain(value):
    """Tuples as lists, so configs compare and store as plain JSON-like types."""
    return list(value) if isinstance(value, tuple) else value


def _summarise(window: list[dict]) -> dict:
    """Log line for the last steps: loss of the last step, means of the rest, extremes of the
    gradient norm and the log-variance (the quantities that spike before a collapse)."""
    last = window[-1]
    row = {"loss": round(last["loss"], 6), "lr": last["lr"],
           "grad_norm": round(max(s["grad_norm"] for s in window), 4)}
    for band in SCALE_BANDS:
        key = "loss_" + _band_name(band)
        values = [s[key] for s in window if key in s]
        if values:
            row[key] = round(float(np.mean(values)), 6)
    if "logvar_max" in last:
        row["logvar_max"] = round(max(s["logvar_max"] for s in window), 3)
        row["logvar_min"] = round(min(s["logvar_min"] for s in window), 3)
    return row


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Run (or resume) a training run; returns the exported `.safetensors` path."""
    trainer = Trainer(cfg, progress=progress)
    if resume:
        trainer.resume()
    trainer.data()
    return trainer.run()


def _pair(kind):
    def parse(text: str):
        values = tuple(kind(v) for v in text.split(","))
        if len(values) != 2:
            raise argparse.ArgumentTypeError(f"expected two comma-separated values, got {text!r}")
        return values
    return parse


def _degradation(text: str) -> str:
    from .degrade import check_kind
    try:
        return check_kind(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    parser.add_argument("--model", default=d.model, choices=list(FAMILIES))
    parser.add_argument("--preset", default=d.preset, choices=list(PRESETS))
    parser.add_argument("--data", default=d.data, help="folder of aligned faces (a manifest.json selects the train split)")
    parser.add_argument("--out", default=None, help="run folder (default: runs/MODEL_PRESET)")
    parser.add_argument("--steps", type=int, default=d.steps)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--num-queries", type=int, default=d.num_queries)
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="Adam learning rate (default per preset: " +
                        ", ".join(f"{k} {v:g}" for k, v in PRESET_LEARNING_RATES.items()) + ")")
    parser.add_argument("--lr-decay-at", type=float, default=d.lr_decay_at)
    parser.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    parser.add_argument("--grad-clip", type=float, default=d.grad_clip, help="max gradient norm (0: off)")
    parser.add_argument("--ema-decay", type=float, default=d.ema_decay, help="EMA of the weights (0: off)")
    parser.add_argument("--rollback-drop", type=float, default=d.rollback_drop,
                        help="roll back to the best weights when validation falls this many dB below them (0: off)")
    parser.add_argument("--input-sizes", type=_pair(int), default=d.input_sizes, help="min,max LR side, e.g. 16,64")
    parser.add_argument("--scale-range", type=_pair(float), default=d.scale_range, help="min,max scale, e.g. 1,8")
    parser.add_argument("--degradation", default=d.degradation, type=_degradation,
                        help="bicubic | nn_jpeg | realistic (random blur, noise, JPEG 30-95) | mixed (clean, light JPEG "
                             "or realistic) | jpegQ")
    parser.add_argument("--no-hflip", dest="hflip", action="store_false", help="no random horizontal flips")
    parser.add_argument("--photometric", type=float, default=d.photometric,
                        help="probability of a random colour cast, gamma, contrast and saturation per face (0: off)")
    parser.add_argument("--geometric", type=float, default=d.geometric,
                        help="probability of a random roll (up to 10 degrees), zoom and shift per face (0: off)")
    parser.add_argument("--select-data", default=d.select_data,
                        help="faces from other sources than the training set (their val split): the weights that "
                             "score best on them are also written as MODEL_PRESET.selected.safetensors")
    parser.add_argument("--kl-weight", type=float, default=d.kl_weight)
    parser.add_argument("--init-from", default=d.init_from, help="start from these weights (fine-tuning)")
    parser.add_argument("--val-every", type=int, default=d.val_every)
    parser.add_argument("--crop", action="store_true",
                        help="train on random HR patches at native pixels (photographs) instead of whole faces")
    parser.add_argument("--val-input-size", type=int, default=d.val_input_size,
                        help="validation LR side in px, judged at x4 (default 16: faces; 64 for photo tiles)")
    parser.add_argument("--ckpt-every", type=int, default=d.ckpt_every)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--threads", type=int, default=d.threads)
    parser.add_argument("--workers", type=int, default=d.workers, help="DataLoader worker processes")
    parser.add_argument("--device", default=d.device)
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile (CPU with a C compiler, or CUDA)")
    parser.add_argument("--data-description", default=d.data_description)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=_main)


def _main(args) -> int:
    names = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    cfg = TrainConfig(**values)
    if args.learning_rate is None:
        cfg.learning_rate = PRESET_LEARNING_RATES[cfg.preset]
    if args.out is None:
        cfg.out = f"runs/{cfg.model}_{cfg.preset}"
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise ValueError("steps and batch_size must be positive")
    if not Path(cfg.data).is_dir():
        raise FileNotFoundError(f"data folder {cfg.data} not found; build the offline faces with "
                                f"`python -m arasfsr.data.offline --out {cfg.data}`")
    try:
        path = train(cfg, resume=args.resume, progress=not args.no_progress)
    except FloatingPointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 3
    if _rank()[0] == 0:
        print(f"exported {path}")
    return 0
