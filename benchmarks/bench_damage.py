"""How well `arasfsr.damage` tells an image that was once a JPEG (its tables gone) from a clean one.

    python benchmarks/bench_damage.py                       # studio test faces + natural val tiles
    python benchmarks/bench_damage.py --faces data/ood/test --sizes 24,32,64 --qualities 0,90,40

Each image is reduced to each side (PIL bicubic; 0 keeps its size), saved as JPEG at each quality
(0: lossless), decoded to RGB (the tables are lost, as in a PNG made from a JPEG), and cropped by a
random 0-7 px at the top and left (so the 8x8 grid is not where it was). Prints, per set, side and
quality: how many `damage.assess` calls clean, light and heavy, and for JPEG how many
`damage.jpeg_trace` gave the quality within 2. The thresholds in damage.py were set on the OOD
faces, studio val faces and natural test tiles; the defaults here are other images (held out).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from arasfsr import damage  # noqa: E402
from arasfsr.degrade import jpeg  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--faces", default=str(REPO / "data" / "faces" / "test"), help="folder of face PNGs")
    parser.add_argument("--photos", default=str(REPO / "data" / "natural" / "val"), help="folder of photo tiles")
    parser.add_argument("--sizes", default="24,32,48,64,128", help="face sides (px)")
    parser.add_argument("--qualities", default="0,95,90,75,60,40,25")
    parser.add_argument("--limit", type=int, default=40, help="images per set at most")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(0)
    qualities = [int(q) for q in args.qualities.split(",")]
    sets = [("faces", Path(args.faces), [int(s) for s in args.sizes.split(",")]), ("photos", Path(args.photos), [0])]
    print("| set | side | LR | images | clean | light | heavy | quality found (within 2) |\n"
          "|---|---|---|---|---|---|---|---|")
    seconds, calls = 0.0, 0
    for label, folder, sides in sets:
        paths = sorted(folder.glob("*.png"))[:args.limit]
        if not paths:
            print(f"(no PNGs under {folder}: build the data first)", file=sys.stderr)
            continue
        for side in sides:
            for quality in qualities:
                levels = {"clean": 0, "light": 0, "heavy": 0}
                right = 0
                for path in paths:
                    image = Image.open(path).convert("RGB")
                    if side:
                        image = image.resize((side, side), Image.BICUBIC)
                    if quality:
                        image = Image.fromarray(np.asarray(jpeg(image, quality)))  # tables gone
                    dy, dx = rng.integers(0, 8, 2)
                    image = image.crop((int(dx), int(dy), image.width, image.height))
                    start = time.perf_counter()
                    found = damage.assess(image)
                    seconds += time.perf_counter() - start
                    calls += 1
                    levels[found.level] += 1
                    right += quality > 0 and found.quality is not None and abs(found.quality - quality) <= 2
                found_text = f"{right}/{len(paths)}" if quality and quality <= 93 else "-"
                print(f"| {label} | {side or 'as is'} | {'lossless' if not quality else f'q{quality}'} | {len(paths)} "
                      f"| {levels['clean']} | {levels['light']} | {levels['heavy']} | {found_text} |", flush=True)
    if calls:
        print(f"\n{1000 * seconds / calls:.0f} ms per assess (mean over {calls} images, one thread).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
