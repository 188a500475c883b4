"""Command line: `python -m arasfsr {upscale,train,evaluate} ...`."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"}


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W)."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like HEIGHTxWIDTH, e.g. 512x384, got {text!r}")
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return h, w


def _load(args):
    if args.model == "bicubic":
        return "bicubic"
    from .model import create_model
    from .weights import default_weights_path, load_model
    if args.random_weights:
        return create_model(args.model, preset=args.random_weights)
    path = args.weights or default_weights_path(args.model)
    return load_model(path)


def cmd_upscale(args) -> int:
    from tqdm import tqdm

    from .inference import upscale
    src, dst = Path(args.input), Path(args.output)
    if not src.exists():
        raise SystemExit(f"error: input {src} does not exist")
    model = _load(args)
    kwargs = dict(scale=args.scale, size=args.size, chunk_size=args.chunk_size, device=args.device,
                  sample=args.sample, seed=args.seed)
    if src.is_file():
        if dst.is_dir():
            dst = dst / (src.stem + ".png")
        upscale(model, src, **kwargs).save(dst)
        print(f"wrote {dst}")
        return 0
    files = sorted(p for p in src.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise SystemExit(f"error: no images in folder {src}")
    if dst.exists() and not dst.is_dir():
        raise SystemExit(f"error: input is a folder, so the output must be a folder; {dst} is a file")
    dst.mkdir(parents=True, exist_ok=True)
    failed = []
    for path in tqdm(files, desc="upscale", unit="img"):
        try:
            upscale(model, path, **kwargs).save(dst / (path.stem + ".png"))
        except (OSError, ValueError) as err:  # one bad file must not lose the others
            failed.append(f"{path.name}: {err}")
    for line in failed:
        print(f"skipped {line}", file=sys.stderr)
    print(f"wrote {len(files) - len(failed)} images to {dst}")
    return 1 if failed else 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m arasfsr",
                                     description="Arbitrary-scale face super-resolution (ARASFSR, LIIF, LTE).")
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("upscale", help="upscale an image or every image in a folder")
    up.add_argument("input", help="image file or folder")
    up.add_argument("-o", "--output", required=True, help="output file, or folder (PNG files, same names)")
    group = up.add_mutually_exclusive_group(required=True)
    group.add_argument("--scale", type=float, help="any scale in [1, 32], e.g. 3.7")
    group.add_argument("--size", type=parse_size, help="output HEIGHTxWIDTH, e.g. 512x384")
    up.add_argument("--model", default="arasfsr",
                    choices=["arasfsr", "liif", "lte", "arasfsr-no-lfe", "arasfsr-no-gcm", "bicubic"])
    up.add_argument("--weights", help="weight file (.safetensors or a LIIF .pth); default: the shipped weights")
    up.add_argument("--random-weights", metavar="PRESET", choices=["tiny", "small", "paper"],
                    help="use a randomly initialised model of this preset (for testing)")
    up.add_argument("--chunk-size", type=int, default=65536, help="queries per chunk (memory bound)")
    up.add_argument("--device", default="auto")
    up.add_argument("--sample", action="store_true", help="sample the LFE latent (default: deterministic)")
    up.add_argument("--seed", type=int, default=0)
    up.set_defaults(func=cmd_upscale)

    from . import evaluate, train  # their argument definitions live next to their code
    train.add_arguments(sub.add_parser("train", help="train a model"))
    evaluate.add_arguments(sub.add_parser("evaluate", help="evaluate models with the authors' protocol"))
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
