"""Evaluation with the authors' protocol, any number of models side by side.

    python -m arasfsr evaluate --data data/faces --split test --input-sizes 16,32,64 --scales 1.5,2,3,4,8

For every (input size s, scale r): LR = bicubic(master, s) and HR = bicubic(master, round(s r)),
both straight from the master (`--transform real`: from the master after a fixed real-photo
transform, `arasfsr.augment.real_photo`); Y-channel PSNR (uint8 Y, full image, no shave) and SSIM
(scikit-image). Pairs whose HR would be larger than the master are skipped (an upsampled master
is no ground truth), so `n` says how many faces each number averages.
"""
from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np

from .metrics import psnr_y, ssim_y


def evaluate_grid(models: dict, masters: list, input_sizes, scales, degradation: str = "bicubic",
                  progress: bool = True, details=(1.0,), self_ensemble: int = 1) -> list[dict]:
    """Mean Y-PSNR / SSIM of each model at each (input size, scale).

    Args:
        models: display name -> SRModel or "bicubic".
        masters: square HR master PIL images (held-out faces).
        details: each model is also scored with each of these shares of its detail over bicubic
            (`upscale`'s `detail`), as the row "NAME detail D"; 1 is the model as it is.
        self_ensemble: every model (not bicubic) renders each input this many times, flipped and
            turned, and averages them (`upscale`'s `self_ensemble`); its rows are "NAME xN".
    Returns:
        rows with keys model, input_size, scale, hr_size, psnr, ssim, n.
    """
    from tqdm import tqdm

    from .data import make_eval_pair
    from .inference import check_self_ensemble, upscale
    check_self_ensemble(self_ensemble)
    grid = [(s, r) for s in input_sizes for r in scales]
    tag = f" x{self_ensemble}" if self_ensemble > 1 else ""
    runs = [(name, model, 1.0) if isinstance(model, str) else
            (f"{name}{tag}" if d == 1 else f"{name}{tag} detail {d:g}", model, d)
            for name, model in models.items() for d in (details if not isinstance(model, str) else (1.0,))]
    scores = {(name, s, r): ([], []) for name, _, _ in runs for s, r in grid}
    for s, r in tqdm(grid, desc="evaluate", unit="setting", disable=not progress):
        hr_size = round(s * r)
        for master in masters:
            if hr_size > master.size[0]:
                continue
            lr, hr = make_eval_pair(master, s, r, degradation)
            for name, model, detail in runs:
                out = upscale(model, lr, size=(hr_size, hr_size), detail=detail, self_ensemble=self_ensemble)
                scores[name, s, r][0].append(psnr_y(out, hr))
                scores[name, s, r][1].append(ssim_y(out, hr) if hr_size >= 7 else float("nan"))
    rows = []
    for (name, s, r), (p, q) in scores.items():
        rows.append({"model": name, "input_size": s, "scale": r, "hr_size": round(s * r),
                     "psnr": float(np.mean(p)) if p else float("nan"),
                     "ssim": float(np.mean(q)) if q else float("nan"), "n": len(p)})
    return rows


def markdown_table(rows: list[dict]) -> str:
    """One row per model, one column per setting: 'PSNR / SSIM', best PSNR in bold."""
    settings = sorted({(r["input_size"], r["scale"]) for r in rows if r["n"]})
    names = list(dict.fromkeys(r["model"] for r in rows))
    by = {(r["model"], r["input_size"], r["scale"]): r for r in rows}
    head = "| model | " + " | ".join(f"{s}->{round(s * k)} (x{k:g})" for s, k in settings) + " |"
    lines = [head, "|---" * (len(settings) + 1) + "|"]
    best = {st: max(by[(n, *st)]["psnr"] for n in names) for st in settings}
    for name in names:
        cells = []
        for st in settings:
            r = by[(name, *st)]
            text = f"{r['psnr']:.2f} / {r['ssim']:.3f}"
            cells.append(f"**{text}**" if r["psnr"] == best[st] else text)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    counts = ", ".join(f"{s}->{round(s * k)}: {by[names[0], s, k]['n']}" for s, k in settings)
    lines.append(f"\nY-PSNR (dB) / SSIM; images per setting: {counts}.")
    return "\n".join(lines)


def plot_psnr_vs_scale(rows: list[dict], axes=None):
    """PSNR against scale, one panel per input size, one line per model.

    Args:
        axes: a sequence of matplotlib axes (one per input size); default: a new pyplot figure.
    """
    sizes = sorted({r["input_size"] for r in rows if r["n"]})
    if axes is None:
        import matplotlib.pyplot as plt
        _, axes = plt.subplots(1, len(sizes), figsize=(4 * len(sizes), 3.2), squeeze=False)
        axes = axes[0]
    axes = np.atleast_1d(axes)
    for panel, s in zip(axes, sizes):
        for name in dict.fromkeys(r["model"] for r in rows):
            pts = sorted((r["scale"], r["psnr"]) for r in rows if r["model"] == name and r["input_size"] == s and r["n"])
            if pts:
                panel.plot(*zip(*pts), "o--" if name == "bicubic" else "o-", label=name)
        panel.set(title=f"input {s} px", xlabel="scale", ylabel="Y-PSNR (dB)")
        panel.grid(alpha=0.3)
    axes[0].legend()
    return axes


def write_results(rows: list[dict], out_dir) -> dict:
    """Write results.md, results.csv and psnr_vs_scale.png into out_dir; return their paths."""
    from matplotlib.figure import Figure  # no pyplot: leaves the caller's backend alone
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"markdown": out / "results.md", "csv": out / "results.csv", "plot": out / "psnr_vs_scale.png"}
    paths["markdown"].write_text(markdown_table(rows) + "\n")
    with open(paths["csv"], "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    panels = len({r["input_size"] for r in rows if r["n"]})
    fig = Figure(figsize=(4 * panels, 3.2))
    plot_psnr_vs_scale(rows, np.atleast_1d(fig.subplots(1, panels)))
    fig.tight_layout()
    fig.savefig(paths["plot"], dpi=100)
    return paths


def _numbers(kind):
    return lambda text: [kind(v) for v in text.split(",") if v.strip()]


def _degradation(text: str) -> str:
    from .degrade import check_kind
    try:
        kind = check_kind(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err))
    if kind == "realistic":
        raise argparse.ArgumentTypeError("realistic is random: evaluate with a fixed one (e.g. jpeg40)")
    return kind


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--weights", nargs="*", default=None,
                        help="weight files or shipped names to compare (default: every shipped weight file present, "
                             "except the compare-* files of the like-for-like comparison)")
    parser.add_argument("--data", default="data/faces", help="folder of aligned faces")
    parser.add_argument("--split", default="test", help="manifest split to use (never the training split)")
    parser.add_argument("--input-sizes", type=_numbers(int), default=[16, 32, 64])
    parser.add_argument("--scales", type=_numbers(float), default=[1.5, 2, 3, 4, 8])
    parser.add_argument("--degradation", default="bicubic", type=_degradation,
                        help="LR operator: bicubic (the protocol), nn_jpeg, or jpegQ, e.g. jpeg40")
    parser.add_argument("--transform", default="none", choices=("none", "real"),
                        help="real: each master first gets the real-photo transform (colour cast, gamma, white balance, "
                             "roll up to 10 degrees, framing and scale jitter, JPEG q70-95 of the source; fixed per face)")
    parser.add_argument("--detail", type=_numbers(float), default=[1.0],
                        help="shares of each model's detail over bicubic to score (upscale's detail), e.g. 1,0.7: "
                             "a row per model and share (default 1: the models as they are)")
    parser.add_argument("--self-ensemble", type=int, default=1, choices=(1, 2, 4, 8),
                        help="render each input N times, flipped and turned, and average (upscale's self_ensemble; "
                             "N times the time; rows NAME xN; default 1)")
    parser.add_argument("--no-bicubic", action="store_true", help="leave out the bicubic baseline row")
    parser.add_argument("--out", default="results", help="output folder")
    parser.set_defaults(func=_main)


def model_label(path, taken=()) -> str:
    """The name a weight file goes by in the results: a shipped name as given, a file by its stem without
    `_small` (weights/natural_small.safetensors -> natural), with its folder in front where that name is
    taken (runs/natural-more_small/lte_small.safetensors beside weights/lte_small.safetensors ->
    natural-more_small/lte)."""
    from .weights import DEFAULT_WEIGHTS
    if str(path) in DEFAULT_WEIGHTS:
        name = str(path)
    else:
        name = Path(path).stem.removesuffix("_small")
    if name in taken:
        name = f"{Path(path).parent.name}/{name}"
    if name in taken:
        raise ValueError(f"{path} is given twice")
    return name


def _main(args) -> int:
    from .data import FaceFolder
    from .weights import DEFAULT_WEIGHTS, default_weights_path, load_model
    if args.split == "train":
        raise ValueError("evaluating on the training split measures memorisation, not super-resolution")
    paths = args.weights if args.weights else [p for n in DEFAULT_WEIGHTS if not n.startswith("compare-")
                                               and (p := default_weights_path(n)).exists()]
    if not paths:
        raise FileNotFoundError("no weight files given and no shipped weights found")
    models = {}
    for path in paths:
        models[model_label(path, models)] = load_model(path)
    if not args.no_bicubic:
        models["bicubic"] = "bicubic"
    folder = FaceFolder.for_split(args.data, args.split)
    if len(folder) == 0:
        raise ValueError(f"no images in {args.data} (split {args.split!r})")
    masters = [folder[i] for i in range(len(folder))]
    if args.transform == "real":
        from .augment import real_photo
        masters = [real_photo(m, seed=i) for i, m in enumerate(masters)]
    from .inference import check_detail
    details = [check_detail(d) for d in args.detail]
    rows = evaluate_grid(models, masters, args.input_sizes, args.scales, args.degradation, details=details,
                         self_ensemble=args.self_ensemble)
    written = write_results(rows, args.out)
    print(markdown_table(rows))
    print("wrote " + ", ".join(str(p) for p in written.values()))
    return 0
