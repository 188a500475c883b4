"""The paper's claims, like for like: paired per-face differences between files trained with one recipe.

    bash scripts/train_shipped.sh compare-arasfsr-s0 ... compare-lte-s1      # the ten runs (issue 19)
    python benchmarks/bench_compare.py --threads 1 --markdown results/compare/claims.md

Files: runs/compare-FAMILY-sSEED_small/FAMILY_small.safetensors for FAMILY in arasfsr, arasfsr-no-lfe,
arasfsr-no-gcm, liif, lte and each seed found (every file of one recipe: `--runs` to change the
folder). Sets: the studio's held-out test split (data/faces) and the out-of-distribution test faces
(data/ood, other sources). Protocol as `python -m arasfsr evaluate` (`arasfsr.data.make_eval_pair`:
HR = the face at s x r px, LR = PIL bicubic to s px; Y-PSNR, `arasfsr.metrics`).

Per claim, the difference A - B in dB is taken per face and setting, averaged over settings and
seeds per face; reported: the mean over faces, its standard error over faces, the seed spread (half
the difference between the two seeds' means, the standard error of a two-seed mean), their
combination, and a verdict: "holds" when the mean exceeds twice the combined error, "reversed" when
it is below minus twice, else "not separated".
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from arasfsr.data import FaceFolder, make_eval_pair  # noqa: E402
from arasfsr.inference import upscale  # noqa: E402
from arasfsr.metrics import psnr_y  # noqa: E402
from arasfsr.weights import load_model  # noqa: E402

FAMILIES = ("arasfsr", "arasfsr-no-lfe", "arasfsr-no-gcm", "liif", "lte")
IN_RANGE = [(16, 2), (16, 4), (16, 8), (32, 2), (32, 4)]   # (LR side, scale): inside the training range x1-x8
BEYOND = [(8, 12), (8, 16)]                                 # scales beyond it (HR 96 and 128 px)
# (claim, A, B, settings)
CLAIMS = [
    ("LFE helps", "arasfsr", "arasfsr-no-lfe", IN_RANGE),
    ("GCM helps", "arasfsr", "arasfsr-no-gcm", IN_RANGE),
    ("GCM helps at 16 px inputs", "arasfsr", "arasfsr-no-gcm", [s for s in IN_RANGE if s[0] == 16]),
    ("GCM helps at 32 px inputs", "arasfsr", "arasfsr-no-gcm", [s for s in IN_RANGE if s[0] == 32]),
    ("ARASFSR beats LIIF", "arasfsr", "liif", IN_RANGE),
    ("ARASFSR beats LTE", "arasfsr", "lte", IN_RANGE),
    ("ARASFSR beats LTE beyond the training scales (x12, x16)", "arasfsr", "lte", BEYOND),
    ("ARASFSR beats LIIF beyond the training scales (x12, x16)", "arasfsr", "liif", BEYOND),
]


def scores(models: dict, masters: list, settings: list) -> dict:
    """(family, seed) -> {(face, setting): Y-PSNR}."""
    out = {key: {} for key in models}
    for k, master in enumerate(masters):
        for s, r in settings:
            if round(s * r) > master.size[0]:
                continue
            lr, hr = make_eval_pair(master, s, r, "bicubic")
            for key, model in models.items():
                out[key][k, (s, r)] = psnr_y(upscale(model, lr, size=(round(s * r),) * 2, device="cpu"), hr)
    return out


def claim_row(table: dict, seeds: list, a: str, b: str, settings: list) -> tuple | None:
    per_seed = []  # per seed: {face: mean difference over settings}
    for seed in seeds:
        ta, tb = table[a, seed], table[b, seed]
        faces: dict[int, list] = {}
        for (face, setting), value in ta.items():
            if setting in settings and (face, setting) in tb:
                faces.setdefault(face, []).append(value - tb[face, setting])
        per_seed.append({f: float(np.mean(v)) for f, v in faces.items()})
    common = sorted(set.intersection(*(set(d) for d in per_seed))) if per_seed else []
    if len(common) < 2:
        return None
    by_face = np.array([[d[f] for f in common] for d in per_seed])        # (seeds, faces)
    mean = float(by_face.mean())
    face_se = float(by_face.mean(0).std(ddof=1) / math.sqrt(len(common)))
    seed_se = float(abs(by_face[0].mean() - by_face[1].mean()) / 2) if len(seeds) == 2 else float("nan")
    total = math.hypot(face_se, 0.0 if math.isnan(seed_se) else seed_se)
    verdict = "holds" if mean > 2 * total else "reversed" if mean < -2 * total else "not separated"
    return mean, face_se, seed_se, total, verdict, len(common), [float(x.mean()) for x in by_face]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default=str(REPO / "runs"), help="folder of the compare-FAMILY-sSEED_small runs")
    parser.add_argument("--sets", default=f"studio={REPO / 'data' / 'faces'},ood={REPO / 'data' / 'ood'}",
                        help="name=folder pairs (their test split)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    runs = Path(args.runs)
    seeds = sorted({int(p.name.rsplit("-s", 1)[1].split("_")[0]) for p in runs.glob("compare-arasfsr-s*_small")})
    models, recipe = {}, set()
    for family in FAMILIES:
        for seed in seeds:
            path = runs / f"compare-{family}-s{seed}_small" / f"{family}_small.safetensors"
            if not path.is_file():
                raise SystemExit(f"{path} is missing: run scripts/train_shipped.sh compare-{family}-s{seed}")
            models[family, seed] = load_model(path, device="cpu").eval()
            info = models[family, seed].training_info
            recipe.add((info.get("recipe"), info.get("total_steps"), info.get("data"), info.get("degradation"),
                        info.get("batch_size"), info.get("num_queries")))
    if len(recipe) != 1:
        raise SystemExit(f"the files were not trained alike: {sorted(map(str, recipe))}")
    (name, steps, _, degradation, batch, queries), = recipe
    lines = [f"Recipe `{name}`: {steps} steps, {degradation} degradation, batch {batch} x {queries} queries; "
             f"seeds {', '.join(map(str, seeds))}; {args.threads} thread(s).", "",
             "| set | claim | A - B (dB) | SE faces | SE seeds | verdict | faces | per seed |",
             "|---|---|---|---|---|---|---|---|"]
    for pair in args.sets.split(","):
        label, folder = pair.split("=", 1)
        faces = FaceFolder.for_split(folder, "test")
        masters = [faces[i] for i in range(len(faces))]
        settings = sorted({s for *_, group in CLAIMS for s in group})
        table = scores(models, masters, settings)
        for claim, a, b, group in CLAIMS:
            row = claim_row(table, seeds, a, b, group)
            if row is None:
                lines.append(f"| {label} | {claim} | - | | | too few faces | | |")
                continue
            mean, face_se, seed_se, _, verdict, n, per_seed = row
            lines.append(f"| {label} | {claim} | {mean:+.3f} | {face_se:.3f} | {seed_se:.3f} | {verdict} | {n} | "
                         f"{' / '.join(f'{x:+.3f}' for x in per_seed)} |")
            print(lines[-1], flush=True)
        means = {key: float(np.mean([v for (f, st), v in t.items() if st in IN_RANGE])) for key, t in table.items()}
        for family in FAMILIES:
            lines.append(f"| {label} | mean Y-PSNR of {family} (in range) | "
                         f"{' / '.join(f'{means[family, s]:.2f}' for s in seeds)} | | | | | |")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        Path(args.markdown).parent.mkdir(parents=True, exist_ok=True)
        Path(args.markdown).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
