"""Training: Charbonnier loss on random query pixels of whole aligned faces.

    python -m arasfsr train --model arasfsr --preset small --data data/faces --steps 3000 --out runs/arasfsr_small

One step: a batch of HR masters -> (one LR size per batch, a scale per face, N random HR pixels
per face) -> loss = mean(sqrt((pred - gt)^2 + 1e-6)) in normalised units (+ kl_weight * KL).
Batch k is a pure function of (seed, k), so a run killed at any point and resumed from its last
checkpoint (written atomically) continues exactly where it was. `torchrun --nproc_per_node N`
runs data-parallel (DDP; NCCL on GPUs, gloo on CPUs), each rank on its own batches.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from .model import FAMILIES, PRESETS, create_model


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
    input_sizes: tuple[int, int] = (16, 64)
    scale_range: tuple[float, float] = (1.0, 8.0)
    degradation: str = "bicubic"
    kl_weight: float = 0.0
    val_every: int = 250
    ckpt_every: int = 250
    seed: int = 0
    threads: int = 0                     # torch threads on the CPU (0: torch's default)
    device: str = "auto"
    amp: bool = False                    # bfloat16 autocast, CUDA only
    compile: bool = False                # torch.compile, CUDA only
    data_description: str = ""


def charbonnier(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return torch.sqrt((pred - target) ** 2 + eps).mean()


def _rank() -> tuple[int, int]:
    return (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)


class Batches:
    """Batch k = the faces drawn by a generator seeded with (seed, rank, k): resumable anywhere."""

    def __init__(self, masters, collate, batch_size: int, seed: int, rank: int):
        if len(masters) < batch_size:
            raise ValueError(f"the training split has {len(masters)} images, fewer than batch_size={batch_size}")
        self.masters, self.collate, self.batch_size, self.seed, self.rank = masters, collate, batch_size, seed, rank

    def __call__(self, step: int) -> dict:
        rng = np.random.default_rng([self.seed, self.rank, step])
        index = rng.choice(len(self.masters), self.batch_size, replace=False)
        self.collate.calls = step  # the collate's own randomness follows the step too
        return self.collate([self.masters[i] for i in index])


def validation_set(data: str, input_size: int = 16, scale: float = 4.0, limit: int = 16):
    """LR/HR pairs from the val split (authors' protocol: both bicubic from the master)."""
    from .data import FaceFolder, make_eval_pair
    manifest = Path(data) / "manifest.json"
    if not manifest.exists() or not any(e["split"] == "val" for e in json.loads(manifest.read_text())["files"]):
        return []  # no held-out faces: train without validation
    folder = FaceFolder(data, split="val")
    pairs = []
    for i in range(min(limit, len(folder))):
        master = folder[i]
        if master.size[0] >= round(input_size * scale):
            pairs.append(make_eval_pair(master, input_size, scale))
    return pairs


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


def _save_atomic(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoint intact


def _plot_curves(log_path: Path, png_path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    train = [r for r in rows if "loss" in r]
    val = [r for r in rows if "val_psnr" in r]
    fig = Figure(figsize=(9, 3.2))
    ax = fig.subplots(1, 2)
    ax[0].plot([r["step"] for r in train], [r["loss"] for r in train], lw=0.8)
    ax[0].set(xlabel="step", ylabel="Charbonnier loss", yscale="log", title="training loss")
    if val:
        ax[1].plot([r["step"] for r in val], [r["val_psnr"] for r in val], "o-", label="model")
        if "bicubic_psnr" in val[0]:
            ax[1].axhline(val[0]["bicubic_psnr"], color="gray", ls="--", label="bicubic")
        ax[1].legend()
    ax[1].set(xlabel="step", ylabel="Y-PSNR (dB)", title="validation")
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True) -> Path:
    """Run (or resume) a training run; returns the exported `.safetensors` path."""
    from tqdm import tqdm

    from .data import FaceFolder, SRBatchCollate
    from .inference import resolve_device
    from .weights import save_model

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = _rank()
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = resolve_device(cfg.device)
    if device.type == "cuda" and distributed:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path, log_path = out / "last.pt", out / "log.jsonl"

    torch.manual_seed(cfg.seed + rank)
    model = create_model(cfg.model, preset=cfg.preset).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    milestone = max(1, int(cfg.steps * cfg.lr_decay_at))
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, [milestone], gamma=0.1)
    step, elapsed = 0, 0.0
    if resume and ckpt_path.exists():
        state = torch.load(ckpt_path, map_location="cpu", weights_only=False)  # our own file
        if state["config"]["model"] != cfg.model or state["config"]["preset"] != cfg.preset:
            raise ValueError(f"{ckpt_path} is a {state['config']['model']}/{state['config']['preset']} run, "
                             f"not {cfg.model}/{cfg.preset}")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, elapsed = state["step"], state["elapsed"]
        torch.set_rng_state(state["rng"][rank] if rank < len(state["rng"]) else state["rng"][0])
        if rank == 0 and log_path.exists():  # drop log lines written after the checkpoint
            rows = [line for line in log_path.read_text().splitlines() if line.strip()]
            log_path.write_text("".join(line + "\n" for line in rows if json.loads(line)["step"] <= step))
    elif resume and rank == 0:
        print(f"no checkpoint in {out}: starting from step 0", file=sys.stderr)
    elif rank == 0 and log_path.exists():
        log_path.unlink()

    folder = FaceFolder(cfg.data, split="train") if (Path(cfg.data) / "manifest.json").exists() else FaceFolder(cfg.data)
    masters = [folder[i] for i in range(len(folder))]  # small aligned faces: keep them in memory
    collate = SRBatchCollate(cfg.input_sizes, cfg.scale_range, cfg.num_queries, cfg.degradation, seed=cfg.seed)
    batches = Batches(masters, collate, cfg.batch_size, cfg.seed, rank)
    val_pairs = validation_set(cfg.data) if rank == 0 else []
    bicubic_val = validate("bicubic", val_pairs)

    net = model
    if distributed:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    if cfg.compile and device.type == "cuda":
        net = torch.compile(net)
    use_amp = cfg.amp and device.type == "cuda"

    def checkpoint():
        rngs = [torch.get_rng_state()]
        if distributed:
            gathered = [None] * world
            dist.all_gather_object(gathered, rngs[0])
            rngs = gathered
        if rank == 0:
            _save_atomic({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                          "scheduler": scheduler.state_dict(), "step": step, "elapsed": elapsed,
                          "rng": rngs, "config": asdict(cfg)}, ckpt_path)

    model.train()
    bar = tqdm(total=cfg.steps, initial=step, disable=not progress or rank != 0, desc=f"train {cfg.model}",
               unit="step", dynamic_ncols=True)
    log = open(log_path, "a") if rank == 0 else None
    val_psnr = float("nan")
    try:
        while step < cfg.steps:
            t0 = time.perf_counter()
            batch = {k: v.to(device, non_blocking=True) for k, v in batches(step).items()}
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
                pred, kl = net(batch["lr"], batch["coord"], batch["cell"], with_kl=True)
            # the loss in normalised units, as in the paper: (x - mean) / std
            std = model.config.norm_std
            loss = charbonnier(pred.float() / std, batch["gt"] / std) + cfg.kl_weight * kl.float()
            if not torch.isfinite(loss):
                raise FloatingPointError(
                    f"loss is {loss.item()} at step {step}: stopping without saving (the last good checkpoint, "
                    f"if any, is {ckpt_path}); lower --learning-rate or check the data")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            step += 1
            elapsed += time.perf_counter() - t0
            bar.update(1)
            if log is not None and (step % 10 == 0 or step == cfg.steps):
                log.write(json.dumps({"step": step, "loss": round(loss.item(), 6),
                                      "lr": scheduler.get_last_lr()[0], "elapsed_s": round(elapsed, 1)}) + "\n")
            if rank == 0 and val_pairs and (step % cfg.val_every == 0 or step == cfg.steps):
                val_psnr = validate(model, val_pairs)
                log.write(json.dumps({"step": step, "val_psnr": round(val_psnr, 3),
                                      "bicubic_psnr": round(bicubic_val, 3)}) + "\n")
                log.flush()
                _plot_curves(log_path, out / "curves.png")
            bar.set_postfix(loss=f"{loss.item():.4f}", val_psnr=f"{val_psnr:.2f}")
            if step % cfg.ckpt_every == 0 or step == cfg.steps:
                if log is not None:
                    log.flush()
                checkpoint()
    finally:
        bar.close()
        if log is not None:
            log.close()
    export = out / f"{cfg.model}_{cfg.preset}.safetensors"
    if rank == 0:
        _plot_curves(log_path, out / "curves.png")
        save_model(model, export, training={
            "model": cfg.model, "preset": cfg.preset, "steps": step, "wall_time_s": round(elapsed, 1),
            "batch_size": cfg.batch_size * world, "num_queries": cfg.num_queries,
            "learning_rate": cfg.learning_rate, "input_sizes": list(cfg.input_sizes),
            "scale_range": list(cfg.scale_range), "degradation": cfg.degradation, "kl_weight": cfg.kl_weight,
            "data": cfg.data_description or Path(cfg.data).name, "val_psnr_16_to_64": round(val_psnr, 3),
            "world_size": world})
    if distributed:
        dist.barrier()
    return export


def _pair(kind):
    def parse(text: str):
        values = tuple(kind(v) for v in text.split(","))
        if len(values) != 2:
            raise argparse.ArgumentTypeError(f"expected two comma-separated values, got {text!r}")
        return values
    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    parser.add_argument("--model", default=d.model, choices=list(FAMILIES))
    parser.add_argument("--preset", default=d.preset, choices=list(PRESETS))
    parser.add_argument("--data", default=d.data, help="folder of aligned faces (a manifest.json selects the train split)")
    parser.add_argument("--out", default=None, help="run folder (default: runs/MODEL_PRESET)")
    parser.add_argument("--steps", type=int, default=d.steps)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--num-queries", type=int, default=d.num_queries)
    parser.add_argument("--learning-rate", type=float, default=d.learning_rate)
    parser.add_argument("--lr-decay-at", type=float, default=d.lr_decay_at)
    parser.add_argument("--input-sizes", type=_pair(int), default=d.input_sizes, help="min,max LR side, e.g. 16,64")
    parser.add_argument("--scale-range", type=_pair(float), default=d.scale_range, help="min,max scale, e.g. 1,8")
    parser.add_argument("--degradation", default=d.degradation, choices=["bicubic", "nn_jpeg"])
    parser.add_argument("--kl-weight", type=float, default=d.kl_weight)
    parser.add_argument("--val-every", type=int, default=d.val_every)
    parser.add_argument("--ckpt-every", type=int, default=d.ckpt_every)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--threads", type=int, default=d.threads)
    parser.add_argument("--device", default=d.device)
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile (CUDA)")
    parser.add_argument("--data-description", default=d.data_description)
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=_main)


def _main(args) -> int:
    fields = {f for f in TrainConfig.__dataclass_fields__}
    values = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    cfg = TrainConfig(**values)
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
