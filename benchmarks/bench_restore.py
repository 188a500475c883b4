"""Whole-photo restoration against bicubic on real photos: face regions and whole photos, Y-PSNR.

    python benchmarks/bench_restore.py --threads 1
    python benchmarks/bench_restore.py --weights weights/arasfsr_small.safetensors --factor 4 --markdown out.md

Photos (`--ood DIR`: instead, the test-split photos of the out-of-distribution set, faces from
other sources than the training studio, built by `python -m arasfsr.data.ood`):
the held-out TEST split of the offline face set (built by `python -m arasfsr.data.offline`:
it records each crop's source photo in data/faces/manifest.json; the photos are read from the
wheel it unpacked into .cache/arasfsr/). Each photo as it is, plus multi-face photos composed from
several test photos side by side (different sizes) on a grey background. Nothing else is used.

Protocol: HR = the photo (cropped to a multiple of --factor), LR = PIL bicubic HR / factor,
restored to HR's size. Face regions are the boxes YuNet finds on the HR photo (so every method is
judged on the same pixels, whatever it detects itself). Y-PSNR as in `arasfsr.metrics`, over the
union of face boxes ("faces") and the whole photo ("photo"), for:
  native   `arasfsr.restore.restore`: axis-aligned crop at native pixels, rendered on the output grid
  aligned  the previous demo's design: similarity-warp the face to an aligned crop, super-resolve it,
           warp it back (bicubic) and blend with the same mask (kept here only to be measured)
  resample the native crop super-resolved on its own n_out x n_out grid, then resampled (bicubic)
           onto the output grid: what the direct rendering saves (measured here only)
  context  `restore` with a crop 1.25x larger than the training framing (more context for the
           encoder, but the face fills less of the crop than GCM saw in training; measured here only)
`--background natural` draws everything but the faces with the natural-photo model (native method); `--background
auto` chooses per photo by its damage, as `restore` does by default.
Prints one row per photo and the mean, median and worst gains over bicubic, then per method the
worst single face (each YuNet box on its own) and how many faces fall below -0.3 dB and below
bicubic. (At an integer factor
the output grid and a crop's own n_out grid coincide, so "resample" equals "native" there.)
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from arasfsr import damage, faces, inference, restore, weights  # noqa: E402
from arasfsr.degrade import jpeg  # noqa: E402
from arasfsr.metrics import rgb_to_y  # noqa: E402

PHOTO_ROOT = REPO / ".cache" / "arasfsr" / "unpacked"
COMPOSITES = 6            # multi-face photos
BACKGROUND = (118, 122, 128)


# ----------------------------------------------------------------------------- photos
def test_split_photos(data: Path) -> list[tuple[str, Image.Image]]:
    """(name, RGB photo) of every TEST-split source in the manifest, transparency on white as in the set."""
    manifest = json.loads((data / "manifest.json").read_text())
    photos = []
    for entry in manifest["files"]:
        if entry["split"] != "test":
            continue
        matches = list(PHOTO_ROOT.glob(f"*/{entry['source']}"))
        if not matches:
            raise SystemExit(f"{entry['source']} is not under {PHOTO_ROOT}: run python -m arasfsr.data.offline")
        with Image.open(matches[0]) as image:
            rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        photos.append((Path(entry["source"]).stem, Image.alpha_composite(white, rgba).convert("RGB")))
    return photos


def ood_photos(data: Path, split: str = "test") -> list[tuple[str, Image.Image]]:
    """(name, RGB photo) of every photo of one split of the out-of-distribution set."""
    manifest = json.loads((data / "manifest.json").read_text())
    return [(Path(p["name"]).stem, Image.open(data / p["name"]).convert("RGB"))
            for p in manifest["photos"] if p["split"] == split]


def compose(photos: list[tuple[str, Image.Image]], count: int, seed: int = 0) -> list[tuple[str, Image.Image]]:
    """Multi-face photos: 2-4 test photos at different sizes side by side on a grey background."""
    rng = np.random.default_rng(seed)
    out = []
    for k in range(count):
        picks = rng.choice(len(photos), size=int(rng.integers(2, 5)), replace=False)
        tiles = []
        for i in picks:
            image = photos[i][1]
            height = int(rng.integers(200, 420))
            tiles.append(image.resize((round(image.width * height / image.height), height), Image.LANCZOS))
        width = sum(t.width for t in tiles) + 20 * (len(tiles) + 1)
        canvas = Image.new("RGB", (width, max(t.height for t in tiles) + 40), BACKGROUND)
        x = 20
        for tile in tiles:
            canvas.paste(tile, (x, canvas.height - tile.height - 20))
            x += tile.width + 20
        out.append((f"group{k + 1}_{len(tiles)}faces", canvas))
    return out


# ----------------------------------------------------------------------------- the alternative design
def restore_aligned(model, lr: Image.Image, out_size: tuple[int, int]) -> Image.Image:
    """Warp each face to the aligned framing at its native size, super-resolve, warp back, blend."""
    out_h, out_w = out_size
    canvas, alpha, mode = restore.bicubic_background(lr, out_size)
    rgb = inference.split_image(lr)[0]
    sy, sx = out_h / lr.height, out_w / lr.width
    for face in restore.detect(np.rint(rgb * 255).astype(np.uint8))[:restore.MAX_FACES]:
        side = faces.source_side(face.landmarks)
        n_in, n_out = max(inference.MIN_INPUT_SIDE, math.floor(side)), round(side * math.sqrt(sx * sy))
        if side < restore.MIN_FACE_SIDE or n_out > restore.MAX_FACE_OUTPUT_SIDE:
            continue
        crop = faces.align_face(rgb, face.landmarks, n_in)
        lr_t = torch.from_numpy(np.ascontiguousarray(crop)).permute(2, 0, 1).unsqueeze(0)
        sr = inference.render(model, lr_t, (n_out, n_out)).numpy()
        # output pixel u sits at input pixel (u + 0.5) / s - 0.5; compose with input -> crop
        down = np.array([[1 / sx, 0, 0.5 / sx - 0.5], [0, 1 / sy, 0.5 / sy - 0.5], [0, 0, 1]])
        out_to_crop = faces.crop_transform(face.landmarks, n_out) @ down
        position = np.arange(n_out, dtype=np.float64)
        mask = np.outer(restore.blend_weight(position, n_out), restore.blend_weight(position, n_out))
        flags = cv2.WARP_INVERSE_MAP
        warped = cv2.warpAffine(sr, out_to_crop, (out_w, out_h), flags=cv2.INTER_CUBIC | flags)
        weight = cv2.warpAffine(mask, out_to_crop, (out_w, out_h), flags=cv2.INTER_LINEAR | flags)[..., None]
        canvas += weight * (np.clip(warped, 0, 1) - canvas)
    return inference.merge_image(canvas, alpha, mode)


def restore_resampled(model, lr: Image.Image, out_size: tuple[int, int]) -> Image.Image:
    """Native crop, super-resolved to n_out x n_out, then resampled (bicubic) onto the output grid."""
    out_h, out_w = out_size
    canvas, alpha, mode = restore.bicubic_background(lr, out_size)
    rgb = inference.split_image(lr)[0]
    fy, fx = out_h / lr.height, out_w / lr.width
    found = restore.detect(np.rint(rgb * 255).astype(np.uint8))
    reports, todo = restore._plan(found, (fy, fx), restore.MAX_FACES)
    for _, plan in todo:
        n = plan.n
        n_out = max(n, round(n * math.sqrt(fy * fx)))
        crop = torch.from_numpy(restore.cut_crop(rgb, plan.top, plan.left, n)).permute(2, 0, 1).unsqueeze(0)
        sr = inference.render(model, crop.contiguous(), (n_out, n_out)).numpy()
        top, rows = restore.output_span(plan.top, n, fy, out_h)
        left, cols = restore.output_span(plan.left, n, fx, out_w)
        # crop pixel p -> sr pixel (p + 0.5) * n_out / n - 0.5
        map_y, map_x = np.meshgrid((rows + 0.5) * n_out / n - 0.5, (cols + 0.5) * n_out / n - 0.5, indexing="ij")
        face = cv2.remap(sr, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_CUBIC,
                         borderMode=cv2.BORDER_REFLECT).clip(0, 1)
        weight = np.outer(restore.blend_weight(rows, n), restore.blend_weight(cols, n))[..., None]
        region = canvas[top:top + len(rows), left:left + len(cols)]
        region += weight * (face - region)
    return inference.merge_image(canvas, alpha, mode)


def restore_with_context(model, lr: Image.Image, out_size: tuple[int, int], context: float = 1.25) -> Image.Image:
    """`restore` with every crop `context` times the training framing's side, same centre."""
    original = restore.face_crop

    def larger(face):
        top, left, n = original(face)
        grown = round(n * context)
        return top - (grown - n) // 2, left - (grown - n) // 2, grown

    restore.face_crop = larger
    try:
        return restore.restore(model, lr, size=out_size, device="cpu")[0]
    finally:
        restore.face_crop = original


# ----------------------------------------------------------------------------- metrics
def face_masks(hr: np.ndarray) -> list[np.ndarray]:
    """One (H, W) bool mask per YuNet box on the HR photo."""
    masks = []
    for face in restore.detect(hr):
        x, y, w, h = face.box
        mask = np.zeros(hr.shape[:2], bool)
        mask[max(0, math.floor(y)):math.ceil(y + h), max(0, math.floor(x)):math.ceil(x + w)] = True
        masks.append(mask)
    return masks


def psnr_y_on(pred: Image.Image, target: np.ndarray, mask: np.ndarray | None = None) -> float:
    a, b = rgb_to_y(pred).astype(np.float64), rgb_to_y(target).astype(np.float64)
    err = (a - b) ** 2
    mse = err[mask].mean() if mask is not None else err.mean()
    return float("inf") if mse == 0 else 10 * math.log10(255 ** 2 / mse)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", default=str(weights.default_weights_path("arasfsr")),
                        help="weight file or shipped name; auto: the shipped weights chosen per LR by its damage "
                             "(arasfsr.damage.choose, the CLI's default), native method only")
    parser.add_argument("--data", default=str(REPO / "data" / "faces"), help="the offline face set (its manifest)")
    parser.add_argument("--factor", type=int, default=4, help="downscale factor (default 4)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--methods", default="native,aligned")
    parser.add_argument("--composites", type=int, default=COMPOSITES)
    parser.add_argument("--jpeg", type=int, default=0, help="save the LR as JPEG at this quality (0: no JPEG)")
    parser.add_argument("--markdown", default=None, help="also write the table to this file")
    parser.add_argument("--background", default="bicubic", choices=("bicubic", "natural", "auto"),
                        help="what draws everything but the faces in the native method: bicubic (before 0.5), "
                             "the shipped natural-photo model, or auto: per photo by its damage, as the CLI's "
                             "default (arasfsr.damage.choose_background)")
    parser.add_argument("--background-weights", default=None,
                        help="the background model's shipped name or weight file (default: natural with "
                             "--background natural; with auto, the CLI's: natural-fast where installed)")
    parser.add_argument("--flat", type=float, default=restore.BACKGROUND_FLAT * 255,
                        help="with --background natural: input squares flatter than this many grey levels stay "
                             "bicubic (default: the package's; negative: the model draws every pixel)")
    parser.add_argument("--no-ensemble", action="store_true",
                        help="native method: render each face once (restore's default is the flip ensemble)")
    parser.add_argument("--detail", default="auto",
                        help="native method: the share of each face's detail kept (0-1), or auto: 1 with named "
                             "weights, per LR by its damage with --weights auto (arasfsr.damage.choose_detail, "
                             "the CLI's default)")
    parser.add_argument("--split", default="test", choices=("test", "val"),
                        help="with --ood: the test photos (the tables) or the val photos (for choosing)")
    parser.add_argument("--ood", default=None,
                        help="use instead the TEST-split photos of the out-of-distribution set "
                             "(python -m arasfsr.data.ood), e.g. data/ood, as they are (no composites)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)

    models = {}
    drawer = args.background_weights or (weights.background_name() if args.background == "auto" else "natural")
    natural = None if args.background == "bicubic" or drawer is None else weights.load_model(drawer).eval()

    def background_for(lr: Image.Image):
        """The background model for this LR: the one asked for, or per its damage with --background auto."""
        name = damage.choose_background(damage.assess(lr))[0] if args.background == "auto" else args.background
        return None if name == "bicubic" else natural

    def detail_for(lr: Image.Image) -> float:
        if args.detail != "auto":
            return float(args.detail)
        return damage.choose_detail(damage.assess(lr)) if args.weights == "auto" else 1.0

    def model_for(lr: Image.Image):
        """The given weights, or with --weights auto the shipped ones `arasfsr.damage.choose` picks for this LR."""
        name = damage.choose(lr, mode="restore")[0] if args.weights == "auto" else args.weights
        if name not in models:
            models[name] = "bicubic" if name == "bicubic" else weights.load_model(name).eval()
        return models[name]

    if args.ood:
        photos = ood_photos(Path(args.ood), args.split)
    else:
        photos = test_split_photos(Path(args.data))
        photos += compose(photos, args.composites)
    methods = args.methods.split(",")
    rows, gains = [], {m: {"faces": [], "photo": [], "face": []} for m in methods}
    header = (["photo", "size", "faces"] + ["bicubic faces dB"]
              + [f"{m} faces gain" for m in methods] + [f"{m} photo gain" for m in methods])
    seconds = {m: 0.0 for m in methods}
    for name, photo in photos:
        f = args.factor
        hr = np.asarray(photo)[:photo.height // f * f, :photo.width // f * f]
        lr = Image.fromarray(hr).resize((hr.shape[1] // f, hr.shape[0] // f), Image.BICUBIC)
        if args.jpeg:  # an ordinary photo's damage: the LR saved as JPEG
            lr = jpeg(lr, args.jpeg)
        boxes = face_masks(hr)
        mask = np.logical_or.reduce(boxes) if boxes else np.zeros(hr.shape[:2], bool)
        if not mask.any():
            print(f"{name}: no face found on the HR photo, skipped", file=sys.stderr)
            continue
        bicubic = lr.resize((hr.shape[1], hr.shape[0]), Image.BICUBIC)
        base_faces, base_photo = psnr_y_on(bicubic, hr, mask), psnr_y_on(bicubic, hr)
        base_each = [psnr_y_on(bicubic, hr, box) for box in boxes]
        row = [name, f"{lr.width}x{lr.height}->{hr.shape[1]}x{hr.shape[0]}", str(len(boxes))]
        row.append(f"{base_faces:.2f}")
        face_gain, photo_gain = [], []
        model = model_for(lr)
        for method in methods:
            started = time.perf_counter()
            if method == "native":
                out = restore.restore(model, lr, size=hr.shape[:2], device="cpu", background=background_for(lr),
                                      ensemble=not args.no_ensemble, detail=detail_for(lr),
                                      background_flat=None if args.flat < 0 else args.flat / 255)[0]
            elif method == "aligned":
                out = restore_aligned(model, lr, hr.shape[:2])
            elif method == "resample":
                out = restore_resampled(model, lr, hr.shape[:2])
            elif method == "context":
                out = restore_with_context(model, lr, hr.shape[:2])
            else:
                raise SystemExit(f"unknown method {method!r}")
            seconds[method] += time.perf_counter() - started
            assert out.size == (hr.shape[1], hr.shape[0])
            g_faces = psnr_y_on(out, hr, mask) - base_faces
            g_photo = psnr_y_on(out, hr) - base_photo
            gains[method]["faces"].append(g_faces)
            gains[method]["photo"].append(g_photo)
            gains[method]["face"] += [psnr_y_on(out, hr, box) - b for box, b in zip(boxes, base_each)]
            face_gain.append(f"{g_faces:+.2f}")
            photo_gain.append(f"{g_photo:+.3f}")
        rows.append(row + face_gain + photo_gain)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    for label, fn in (("mean", statistics.fmean), ("median", statistics.median), ("worst", min)):
        cells = [label, "", "", ""] + [f"{fn(gains[m]['faces']):+.2f}" for m in methods]
        cells += [f"{fn(gains[m]['photo']):+.3f}" for m in methods]
        lines.append("| " + " | ".join(cells) + " |")
    table = "\n".join(lines)
    print(table)
    damaged = f", LR as JPEG q{args.jpeg}" if args.jpeg else ""
    print(f"\n{len(rows)} photos, x{args.factor}{damaged}, weights {Path(args.weights).name}, background "
          f"{args.background}{'' if natural is None else f' ({drawer})'}, detail {args.detail}, {args.threads} thread(s); "
          + ", ".join(f"{m} {seconds[m]:.1f} s" for m in methods))
    for m in methods:
        worse = sum(g < 0 for g in gains[m]["photo"])
        each = gains[m]["face"]
        print(f"{m}: faces mean {statistics.fmean(gains[m]['faces']):+.2f} dB over bicubic; "
              f"photos worse than bicubic overall: {worse}/{len(rows)}; single faces: worst {min(each):+.2f} dB, "
              f"{sum(g < -0.3 for g in each)}/{len(each)} below -0.3 dB, {sum(g < 0 for g in each)} below bicubic")
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
