"""Training: Charbonnier loss on random query pixels of whole aligned faces.

    python -m arasfsr train --model arasfsr --preset small --data data/faces --steps 3000 --out runs/arasfsr_small

One step: a batch of HR masters -> (one LR size per batch, a scale per face, N random HR pixels
per face) -> loss = mean(sqrt((pred - gt)^2 + 1e-6)) in normalised units (+ kl_weight * KL).
Batch k is a pure function of (seed, rank, k), built in DataLoader workers or in the main process
with the same bytes, so a run killed at any point and resumed from its last checkpoint (written
atomically, loaded with `weights_only=True`) continues exactly where it was.
`torchrun --nproc_per_node N` runs data-parallel (DDP; NCCL on GPUs, gloo on CPUs).
Distillation (`--teacher FILE`, e.g. arasfsr-fast): the student takes the teacher's encoder and LFE,
frozen; each step encodes once with them, and the loss compares the student's output with the
teacher's at the same random coordinates and scales instead of with the ground truth.

Stability (see the model card): the global gradient norm is clipped, an exponential moving
average (EMA) of the weights is kept and exported when it validates better, and a guard stops the
run, without saving, when the loss, the gradients or the weights stop being finite or explode.
A collapse that stays finite (a hidden layer of the decoder dies: every ReLU unit negative for
every input, and the model falls back to its bilinear skip, 22.30 dB on our validation faces)
is caught by validation: when it falls more than `rollback_drop` dB below the best so far, the
run returns to the best weights (and optimiser state) and continues with half the learning rate.
Every 10 steps the log holds the loss per scale band, the gradient norm before clipping and the
range of the LFE's log-variance: the quantities that tell why a run went wrong.

Where each part lives:
    arasfsr/train.py          the run: `TrainConfig`, the data, `Trainer` (setup and resume in its
                              constructor, then `run`: `step`, `validate`, rollback check,
                              selection, `checkpoint`, `export`); `train()` = `Trainer(...).run()`
    arasfsr/checkpoints.py    atomic save, safe load, the exploded-weights check, the EMA update and
                              `WeightKeeper` (the best state and the rollback to it)
    arasfsr/training_log.py   log.jsonl (rows, trimming on resume), the scale bands, curves.png
    arasfsr/cli.py            the `train` command line (`add_train_arguments`, `cmd_train`)
"""
from __future__ import annotations

import copy
import dataclasses
import json
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from .checkpoints import (
    WeightKeeper,
    cuda_rng_state,
    ema_update,
    load_checkpoint,
    restore_cuda_rng_state,
    save_atomic,
    weights_problem,
)
from .model import create_model, grow_state_dict
from .training_log import TrainingLog, band_losses, plot_curves

# The default learning rate per preset when none is given. The paper preset takes the authors'
# LIIF recipe (1e-4): at 4e-4 two of five GPU runs collapsed (a decoder layer died, the model fell
# back to its bilinear skip). The small presets were trained at 4e-4 without a collapse.
PRESET_LEARNING_RATES = {"paper": 1e-4, "small": 4e-4, "tiny": 4e-4}
# Settings that define what is trained; a resumed run must keep them.
FIXED_ON_RESUME = ("model", "preset")
# Settings of the machine, not of the run (and init_from, which only matters at step 0): never
# compared on resume.
RUNTIME_SETTINGS = ("out", "threads", "device", "workers", "data", "data_description", "compile", "init_from",
                    "select_data", "val_input_size", "recipe")


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
    teacher: str = ""                   # distil: copy and freeze this model's encoder (and LFE), and learn its
                                        # output at the same coordinates (arasfsr-fast; see `Trainer.step`)
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
    recipe: str = ""                     # one name for the whole schedule, legs included (in the metadata)


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6, dim=None) -> torch.Tensor:
    """The training loss: mean of sqrt((pred - target)^2 + eps), over `dim` (None: everything)."""
    error = torch.sqrt((pred - target) ** 2 + eps)
    return error.mean() if dim is None else error.mean(dim=dim)


def _same_tensors(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    """Whether two modules hold the same parameters and buffers, exactly."""
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


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


@contextmanager
def _stop_without_saving(ckpt_path: Path, advice: str):
    """A FloatingPointError (the guard) becomes one that says the run stopped and where its last
    good checkpoint is."""
    try:
        yield
    except FloatingPointError as err:
        raise FloatingPointError(f"{err}: stopping without saving (the last good checkpoint, if any, is "
                                 f"{ckpt_path}); {advice}") from None


class Trainer:
    """One training run: `Trainer(cfg, resume=...)` sets it up (process group, model, optimiser,
    the checkpoint it resumes from, the data), `run()` trains it to `cfg.steps` and exports."""

    def __init__(self, cfg: TrainConfig, progress: bool = True, *, resume: bool = False):
        self.cfg, self.progress = cfg, progress
        self._setup_process()
        self._setup_model()
        if resume:
            self._resume()
        self._load_data()

    # ---- setup ---------------------------------------------------------------------------
    def _setup_process(self) -> None:
        cfg = self.cfg
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

    def _setup_model(self) -> None:
        cfg = self.cfg
        torch.manual_seed(cfg.seed + self.rank)
        self.model = create_model(cfg.model, preset=cfg.preset).to(self.device)
        self.init_info = self._init_from(cfg.init_from) if cfg.init_from else None
        self.teacher, self.teacher_info = self._teacher(cfg.teacher) if cfg.teacher else (None, None)
        self.ema = None
        if cfg.ema_decay > 0:
            self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, lr=cfg.learning_rate)
        self.step_index, self.elapsed = 0, 0.0
        self.last_val = {"val_psnr": float("nan"), "ema_val_psnr": float("nan")}  # of the weights in use
        self.keeper = WeightKeeper(cfg.rollback_drop)  # the best state so far, for rollbacks
        self.best_select: dict | None = None  # step and score of the best state on --select-data

    def _init_from(self, path: str) -> dict:
        from .weights import load_model
        source = load_model(path)
        if source.config.name != self.model.config.name:
            raise ValueError(f"--init-from {path} holds a {source.config.name} model, not {self.model.config.name}")
        grown = None
        try:
            self.model.load_state_dict(source.state_dict())
        except RuntimeError as err:
            try:  # a student grown into more pixel-network capacity (model.grow_state_dict)
                grown = grow_state_dict(self.model, source)
            except (ValueError, KeyError, RuntimeError):
                raise ValueError(f"--init-from {path} does not fit {self.cfg.model}/{self.cfg.preset}: "
                                 f"{str(err).splitlines()[0]}") from None
        info = source.training_info
        out = {"file": Path(path).name, "steps": info.get("steps"),
               "total_steps": info.get("total_steps", info.get("steps")), "recipe": info.get("recipe"),
               "lfe_activation": source.config.lfe_activation}
        if grown is not None:
            out["grown"] = grown
        return out

    def _teacher(self, path: str):
        """Distillation: the teacher (frozen, eval mode) and its facts. The student takes the
        teacher's encoder and LFE as they are and keeps them frozen, so both read the same latent
        grid and only the decoder learns (no more faces are needed than the encoder saw). Any
        family may teach a LIIF-style student (arasfsr-fast from arasfsr, natural-fast from the
        LTE `natural`) whose encoder and LFE settings are the teacher's."""
        from .weights import load_model
        if self.distributed:
            raise ValueError("--teacher runs in one process (the decoder it trains is small); drop torchrun")
        teacher = load_model(path, device=self.device).eval().requires_grad_(False)
        mine, theirs = self.model.config.to_dict(), teacher.config.to_dict()
        shared = [k for k in mine if k.startswith(("encoder", "rdn_", "lfe_", "use_lfe", "norm_"))]
        differ = [f"{k} {theirs[k]} vs {mine[k]}" for k in shared if mine[k] != theirs[k]]
        if self.model.config.name == "lte" or differ:
            raise ValueError(f"--teacher {path}: its encoder must be the student's ({teacher.config.name} teacher, "
                             f"{self.model.config.name} student" + (f"; {', '.join(differ)})" if differ else ")"))
        for part in ("encoder", "lfe"):
            module = getattr(self.model, part)
            if module is not None:
                if self.init_info is not None and not _same_tensors(module, getattr(teacher, part)):
                    # --init-from continues a student: its decoder learned to read this teacher's latents
                    raise ValueError(f"--init-from {self.init_info['file']}: its {part} is not the teacher's "
                                     f"({Path(path).name}), so its decoder learned another latent grid")
                module.load_state_dict(getattr(teacher, part).state_dict())
                module.requires_grad_(False)
        info = teacher.training_info
        return teacher, {"file": Path(path).name, "steps": info.get("steps"),
                         "total_steps": info.get("total_steps", info.get("steps")), "recipe": info.get("recipe")}

    def _resume(self) -> None:
        """Continue from `last.pt` (read with weights_only=True: a checkpoint from someone else
        cannot run code). Changed settings are applied and named, except those that define what
        is trained (model, preset), which are refused."""
        cfg = self.cfg
        if not self.ckpt_path.exists():
            if self.rank == 0:
                print(f"no checkpoint in {self.out}: starting from step 0", file=sys.stderr)
            return
        state = load_checkpoint(self.ckpt_path)
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
        self.keeper.load_state_dict(state)
        if state.get("config", {}).get("select_data") == cfg.select_data:  # a new selection set starts afresh
            self.best_select = state.get("best_select")
        rngs = state["rng"]
        torch.set_rng_state(rngs[self.rank] if self.rank < len(rngs) else rngs[0])
        # the CUDA generators (the LFE samples its latent on the GPU): absent from older checkpoints
        # and from those written without CUDA; such a checkpoint still resumes, with a note
        cuda_rngs = state.get("cuda_rng") or [None]
        note = restore_cuda_rng_state(cuda_rngs[self.rank] if self.rank < len(cuda_rngs) else cuda_rngs[0])
        if note and self.rank == 0:
            print(note, file=sys.stderr)

    def _load_data(self) -> None:
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

    def _network(self):
        """The model as the steps call it: wrapped for DDP, compiled if asked."""
        net = self.model
        if self.distributed:
            net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        if self.cfg.compile:
            net = torch.compile(net)
        return net

    # ---- the loop ------------------------------------------------------------------------
    def run(self) -> Path:
        """Train from the current step to `cfg.steps`; returns the exported `.safetensors` path."""
        from tqdm import tqdm
        cfg = self.cfg
        net = self._network()
        self.model.train()
        bar = tqdm(total=cfg.steps, initial=self.step_index, disable=not self.progress or self.rank != 0,
                   desc=f"train {cfg.model}", unit="step", dynamic_ncols=True)
        window: list[dict] = []  # the statistics of the steps since the last log row
        with bar, TrainingLog(self.log_path, self.step_index, enabled=self.rank == 0) as log:
            t0 = time.perf_counter()
            for batch in batch_loader(self.batches, self.step_index, cfg.workers):
                batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
                with _stop_without_saving(self.ckpt_path, "lower --learning-rate or check the data"):
                    stats = self.step(net, batch)
                now = time.perf_counter()
                self.elapsed += now - t0
                t0 = now
                window.append(stats)
                bar.update(1)
                step = self.step_index
                if step % 10 == 0 or step == cfg.steps:
                    log.training(step, window, self.elapsed)
                    window = []
                if self.rank == 0 and self.val_pairs and (step % cfg.val_every == 0 or step == cfg.steps):
                    val = self.validate()
                    rolled_back = self.keeper.observe(step, val, self.model, self.optimizer, self.ema)
                    self.last_val = dict(self.keeper.best["result"]) if rolled_back else val  # of the weights in use
                    self.select(val)
                    log.validation(step, val, self.bicubic_val)
                    plot_curves(self.log_path, self.out / "curves.png")
                    t0 = time.perf_counter()  # validation time is not training time
                bar.set_postfix(loss=f"{stats['loss']:.4f}", val_psnr=f"{self.last_val['val_psnr']:.2f}")
                if step % cfg.ckpt_every == 0 or step == cfg.steps:
                    log.flush()
                    with _stop_without_saving(self.ckpt_path, "lower --learning-rate"):
                        self.checkpoint()
        export = None
        if self.rank == 0:
            plot_curves(self.log_path, self.out / "curves.png")
            export = self.export()
        if self.distributed:
            dist.barrier()
        return export or self.out / f"{cfg.model}_{cfg.preset}.safetensors"

    # ---- one optimisation step -----------------------------------------------------------
    def step(self, net, batch: dict) -> dict:
        """Forward, loss, backward, clip, update, EMA; returns the step's statistics."""
        cfg, model = self.cfg, self.model
        rate = learning_rate_at(cfg, self.step_index) * self.keeper.lr_scale
        for group in self.optimizer.param_groups:
            group["lr"] = rate
        target = batch["gt"]
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.amp and self.device.type == "cuda"):
            if self.teacher is None:
                pred, features = net(batch["lr"], batch["coord"], batch["cell"], with_features=True)
            else:  # distillation: one encoding (the shared frozen encoder), the teacher's output is the target
                with torch.no_grad():
                    features = self.teacher.encode(batch["lr"], sample=False)
                    target = self.teacher.query(features, batch["coord"], batch["cell"]).float()
                pred = model.query(dataclasses.replace(features, projection=None), batch["coord"], batch["cell"])
        std = model.config.norm_std  # the loss in normalised units, as in the paper: (x - mean) / std
        per_sample = charbonnier(pred.float() / std, target / std, dim=(1, 2))  # (B,)
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
            ema_update(self.ema, model, cfg.ema_decay, self.step_index)
        self.step_index += 1
        stats = {"loss": loss.item(), "grad_norm": grad_norm.item(), "lr": rate,
                 **band_losses(per_sample, batch["scale"])}
        if features.logvar is not None:
            stats["logvar_min"] = features.logvar.detach().min().item()
            stats["logvar_max"] = features.logvar.detach().max().item()
        return stats

    # ---- validation, selection, checkpoints, export --------------------------------------
    def validate(self) -> dict:
        """Y-PSNR of the raw weights (and the EMA's) on the validation faces. Measures only: the
        rollback is `self.keeper.observe`, called by `run`."""
        result = {"val_psnr": validate(self.model, self.val_pairs)}
        if self.ema is not None:
            result["ema_val_psnr"] = validate(self.ema, self.val_pairs)
        return result

    def select(self, result: dict) -> None:
        """With --select-data: score raw and EMA weights on the faces from elsewhere (added to
        `result`) and export the best state so far as MODEL_PRESET.selected.safetensors."""
        if not self.select_pairs:
            return
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

    def checkpoint(self) -> None:
        """Write `last.pt` (rank 0; every rank's CPU RNG state and, with CUDA, its CUDA RNG states),
        refusing non-finite or exploded weights."""
        problem = weights_problem(self.model)
        if problem:  # never keep poisoned weights as "the last good checkpoint"
            raise FloatingPointError(f"{problem} at step {self.step_index}")
        rngs, cuda_rngs = [torch.get_rng_state()], [cuda_rng_state()]
        if self.distributed:
            gathered = [None] * self.world
            dist.all_gather_object(gathered, (rngs[0], cuda_rngs[0]))
            rngs, cuda_rngs = [g[0] for g in gathered], [g[1] for g in gathered]
        if all(c is None for c in cuda_rngs):
            cuda_rngs = None  # no CUDA: nothing to keep (a resume on a GPU then restarts its stream)
        if self.rank == 0:
            save_atomic({"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                         "ema": self.ema.state_dict() if self.ema is not None else None,
                         "step": self.step_index, "elapsed": self.elapsed, "rng": rngs, "cuda_rng": cuda_rngs,
                         **self.keeper.state_dict(), "best_select": self.best_select,  # "best", "lr_scale"
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
        before = (self.init_info or {}).get("total_steps") or 0  # steps of the legs this run continues
        save_model(chosen, export, training={
            "model": cfg.model, "preset": cfg.preset, "steps": self.step_index, "wall_time_s": round(self.elapsed, 1),
            "recipe": cfg.recipe or None, "total_steps": before + self.step_index, "seed": cfg.seed,
            "batch_size": cfg.batch_size * self.world, "num_queries": cfg.num_queries,
            "learning_rate": cfg.learning_rate, "warmup_steps": cfg.warmup_steps, "grad_clip": cfg.grad_clip,
            "ema_decay": cfg.ema_decay, "exported": exported,
            "rollbacks": self.keeper.rollbacks,
            "input_sizes": list(cfg.input_sizes), "scale_range": list(cfg.scale_range),
            "degradation": cfg.degradation, "hflip": cfg.hflip, "kl_weight": cfg.kl_weight,
            "photometric": cfg.photometric, "geometric": cfg.geometric, "crop": cfg.crop, **extra,
            "init_from": self.init_info, "teacher": self.teacher_info, "data": cfg.data_description or Path(cfg.data).name,
            f"val_psnr_{cfg.val_input_size}_to_{4 * cfg.val_input_size}_{val_kind}": round(max(self.last_val["val_psnr"],
                                                       self.last_val.get("ema_val_psnr", float("-inf"))), 3),
            "world_size": self.world})
        return export


def _plain(value):
    """Tuples as lists, so configs compare and store as plain JSON-like types."""
    return list(value) if isinstance(value, tuple) else value


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Run (or resume) a training run; returns the exported `.safetensors` path."""
    return Trainer(cfg, progress=progress, resume=resume).run()
