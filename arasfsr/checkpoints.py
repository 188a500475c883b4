"""The weights a training run keeps: checkpoints on disk, the EMA, and the best state for rollbacks.

- `save_atomic` / `load_checkpoint`: `last.pt` is written to a temporary file that then replaces
  it (a kill mid-write leaves the previous checkpoint intact), and read with `weights_only=True`
  (a checkpoint from someone else cannot run code).
- `weights_problem`: non-finite or exploded weights (|w| > `MAX_PARAMETER_ABS`) are never saved
  as "the last good checkpoint" nor exported.
- `ema_update`: the exponential moving average of the weights, one step.
- `WeightKeeper`: the best-validating state so far; when validation falls more than
  `rollback_drop` dB below it (a collapse that stays finite: a decoder layer dies and the model
  falls back to its bilinear skip), the model, optimiser and EMA return to it and the learning
  rate is halved. Its state travels in `last.pt` (keys "best" and "lr_scale").
- `cuda_rng_state` / `restore_cuda_rng_state`: the CUDA generators' states (the LFE's sampling on a
  GPU draws from them), kept in `last.pt` beside the CPU's so that a resumed GPU run draws the same
  noise as an unbroken one. Checkpoints without them (older, or written without CUDA) still load.
"""
from __future__ import annotations

import copy
import os
import sys
from pathlib import Path

import numpy as np
import torch

# A weight this large (in absolute value) means the run has exploded: such weights are never
# saved as "the last good checkpoint". Healthy runs stay below 10 (measured on the shipped runs).
MAX_PARAMETER_ABS = 1e4


def weights_problem(model: torch.nn.Module) -> str | None:
    """Why these weights must not be saved as good (non-finite or exploded), or None."""
    for name, p in model.named_parameters():
        if not torch.isfinite(p).all():
            return f"parameter {name} is not finite"
        peak = p.detach().abs().max().item()
        if peak > MAX_PARAMETER_ABS:
            return f"parameter {name} reached |w| = {peak:.3g} (limit {MAX_PARAMETER_ABS:g}): the run exploded"
    return None


def save_atomic(obj, path: Path) -> None:
    """`torch.save` to PATH.tmp, then rename it over `path`."""
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)  # a kill mid-write leaves the previous checkpoint intact


def load_checkpoint(path: Path) -> dict:
    """A checkpoint read with weights_only=True; anything that needs the unpickler to run code is
    refused with a ValueError."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 (the unpickler's refusals have many types; re-raised as one)
        raise ValueError(f"{path} cannot be resumed safely ({type(err).__name__}: "
                         f"{str(err).splitlines()[0]}); it is not a checkpoint written by arasfsr") from None


def cuda_rng_state() -> list[torch.Tensor] | None:
    """This process's CUDA random-number states, one CPU ByteTensor per visible GPU (what
    `torch.cuda.get_rng_state_all()` returns, so `weights_only=True` reads it back), or None without CUDA."""
    if not torch.cuda.is_available():
        return None
    return [state.cpu() for state in torch.cuda.get_rng_state_all()]


def restore_cuda_rng_state(states: list[torch.Tensor] | None) -> str | None:
    """Set the CUDA generators from a checkpoint's `states` when both the states and CUDA are there.

    Returns a one-line note when the CUDA stream could not be continued exactly (a checkpoint
    without CUDA states resumed on a GPU, one with them resumed without a GPU, or a different
    number of GPUs), else None. Never fails: the CPU state, model and optimiser still resume.
    """
    available = torch.cuda.is_available()
    if not states:
        if not available:
            return None
        return ("resume: the checkpoint holds no CUDA random-number state (written on a CPU or by an older "
                "version): the CUDA random stream restarts from the seed, so the LFE's noise differs from an unbroken run")
    if not available:
        return ("resume: the checkpoint holds a CUDA random-number state but no GPU is visible: it is not restored "
                "(training continues on the CPU's stream, which is)")
    count = min(len(states), torch.cuda.device_count())
    torch.cuda.set_rng_state_all([torch.as_tensor(s, dtype=torch.uint8) for s in states[:count]])
    if count != len(states) or count != torch.cuda.device_count():
        return (f"resume: the checkpoint holds the CUDA random-number states of {len(states)} GPU(s), this machine "
                f"has {torch.cuda.device_count()}: the first {count} are restored, any other GPU's stream restarts")
    return None


def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float, step: int) -> None:
    """Move the EMA's parameters towards the model's. It follows the weights closely at first
    (decay (1 + step) / (10 + step)), then averages over ~1/(1 - decay) steps."""
    decay = min(decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1 - decay)


def _snapshot(model, optimizer, ema) -> dict:
    """Model, optimiser and EMA state, copied to the CPU."""
    def cpu(sd):
        return copy.deepcopy({k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in sd.items()})
    return {"model": cpu(model.state_dict()), "optimizer": copy.deepcopy(optimizer.state_dict()),
            "ema": cpu(ema.state_dict()) if ema is not None else None}


class WeightKeeper:
    """The best-validating state of a run, and the rollback to it.

    `observe` is called with each validation result; `lr_scale` (1, halved at every rollback)
    multiplies the learning rate. `rollback_drop` <= 0 turns it off (nothing is kept).
    """

    def __init__(self, rollback_drop: float):
        self.rollback_drop = rollback_drop
        self.best: dict | None = None   # val, step, result, model, optimizer, ema
        self.lr_scale = 1.0

    @property
    def rollbacks(self) -> int:
        return round(-np.log2(self.lr_scale))

    def observe(self, step: int, result: dict, model, optimizer, ema=None) -> bool:
        """Keep the state if `result` (dB, raw and EMA) is the best so far; roll back to the best
        when it is more than `rollback_drop` below it. Returns True after a rollback; `result`
        then also holds "rolled_back_to" (the best's step) and "lr_scale"."""
        finite = [v for v in result.values() if np.isfinite(v)]
        if not finite or self.rollback_drop <= 0:
            return False
        score = max(finite)  # the better of the raw and the EMA weights
        best = self.best
        if best is None or score > best["val"]:
            self.best = {"val": score, "step": step, "result": dict(result), **_snapshot(model, optimizer, ema)}
            return False
        if score >= best["val"] - self.rollback_drop:
            return False
        model.load_state_dict(best["model"])
        optimizer.load_state_dict(best["optimizer"])
        if ema is not None and best["ema"] is not None:
            ema.load_state_dict(best["ema"])
        self.lr_scale *= 0.5
        result["rolled_back_to"] = best["step"]
        result["lr_scale"] = self.lr_scale
        print(f"step {step}: validation {score:.2f} dB is {best['val'] - score:.2f} dB below the "
              f"best ({best['val']:.2f} dB at step {best['step']}): rolled back to those weights, "
              f"learning rate x{self.lr_scale:g}", file=sys.stderr)
        return True

    def state_dict(self) -> dict:
        """What `last.pt` holds of it."""
        return {"best": self.best, "lr_scale": self.lr_scale}

    def load_state_dict(self, state: dict) -> None:
        """From a checkpoint (older ones may lack the keys)."""
        self.best, self.lr_scale = state.get("best"), float(state.get("lr_scale", 1.0))
