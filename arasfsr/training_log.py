"""The log of a training run: `log.jsonl` (one JSON object a line) and `curves.png`.

Every 10 steps a training row: the loss of the last step, the learning rate, the largest gradient
norm before clipping, the mean loss per scale band and the range of the LFE's log-variance (the
quantities that tell why a run went wrong). After each validation a validation row: Y-PSNR of
the raw and EMA weights, bicubic's, a rollback if there was one, and the --select-data scores.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

SCALE_BANDS = ((1.0, 2.0), (2.0, 4.0), (4.0, float("inf")))  # for the per-scale loss log


def band_name(band) -> str:
    lo, hi = band
    return f"x{lo:g}-{hi:g}" if np.isfinite(hi) else f"x{lo:g}+"


def band_losses(per_sample: torch.Tensor, scales: torch.Tensor) -> dict:
    """Mean loss of the faces in each scale band present in the batch: {"loss_x1-2": ..., ...}."""
    losses = {}
    for band in SCALE_BANDS:
        inside = (scales >= band[0]) & (scales < band[1])
        if inside.any():
            losses["loss_" + band_name(band)] = per_sample.detach()[inside].mean().item()
    return losses


def summarise(window: list[dict]) -> dict:
    """Log line for the last steps: loss of the last step, means of the rest, extremes of the
    gradient norm and the log-variance (the quantities that spike before a collapse)."""
    last = window[-1]
    row = {"loss": round(last["loss"], 6), "lr": last["lr"],
           "grad_norm": round(max(s["grad_norm"] for s in window), 4)}
    for band in SCALE_BANDS:
        key = "loss_" + band_name(band)
        values = [s[key] for s in window if key in s]
        if values:
            row[key] = round(float(np.mean(values)), 6)
    if "logvar_max" in last:
        row["logvar_max"] = round(max(s["logvar_max"] for s in window), 3)
        row["logvar_min"] = round(min(s["logvar_min"] for s in window), 3)
    return row


class TrainingLog:
    """`log.jsonl`, continued at `step`: at step 0 it starts afresh; when resuming, the lines
    written after the checkpoint (step > `step`) are dropped, so none is lost or doubled.
    Disabled (every method a no-op) on the processes other than rank 0."""

    def __init__(self, path: Path, step: int, enabled: bool = True):
        self.path, self._file = path, None
        if not enabled:
            return
        if step == 0:
            path.unlink(missing_ok=True)
        elif path.exists():
            rows = [line for line in path.read_text().splitlines() if line.strip()]
            path.write_text("".join(line + "\n" for line in rows if json.loads(line)["step"] <= step))
        self._file = open(path, "a")

    def training(self, step: int, window: list[dict], elapsed: float) -> None:
        """The row for the steps in `window` (the statistics `Trainer.step` returned)."""
        if self._file is not None:
            self._file.write(json.dumps({"step": step, **summarise(window), "elapsed_s": round(elapsed, 1)}) + "\n")

    def validation(self, step: int, result: dict, bicubic_psnr: float) -> None:
        if self._file is not None:
            self._file.write(json.dumps({"step": step, **{k: round(v, 3) for k, v in result.items()},
                                         "bicubic_psnr": round(bicubic_psnr, 3)}) + "\n")
            self.flush()

    def flush(self) -> None:
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> TrainingLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def plot_curves(log_path: Path, png_path: Path) -> None:
    """Training loss per scale band, gradient norm and log-variance, validation PSNR."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone
    rows = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    train = [r for r in rows if "loss" in r]
    val = [r for r in rows if "val_psnr" in r]
    fig = Figure(figsize=(13, 3.4))
    ax = fig.subplots(1, 3)
    steps = [r["step"] for r in train]
    ax[0].plot(steps, [r["loss"] for r in train], lw=0.8, label="all")
    for band in SCALE_BANDS:
        key = band_name(band)
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
