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
