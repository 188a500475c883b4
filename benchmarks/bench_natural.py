"""Natural-photo weights on photographs from elsewhere: quality over bicubic, render time, a picture.

    python benchmarks/bench_natural.py                                   # the shipped `natural`
    python benchmarks/bench_natural.py --weights natural runs/X/natural-deep_small.safetensors
    python benchmarks/bench_natural.py --sheet docs/gallery/natural_x4.png   # also the picture
    python benchmarks/bench_natural.py --self-ensemble 8   # also each file's x8 self-ensemble, as "NAME x8"

Photos: the colour photographs that scikit-image ships (public domain or CC0: coffee, chelsea,
rocket, motorcycle_left, astronaut): a cup on a table, a cat, a launch pad, a motorbike in a
workshop, a portrait; none is in the training set (Debian wallpapers) and none was used to pick
weights, and they were taken with other cameras, light and compression.
Each photo, cropped to a multiple of the scale, is the HR; LR = bicubic (the protocol),
SR = `arasfsr.upscale` to the HR size; Y-PSNR per photo, the first weights' gain over
bicubic and each other's gain over the first. The data set's own held-out split is scored by
`python -m arasfsr evaluate --data data/natural --split test`.

Time: `arasfsr.upscale` of a 128 x 128 crop of coffee to 512 x 512, median of --repeats after one
warm-up, with --threads torch threads (default 1).

--sheet: for the first photo at x4, a 128 px crop at true pixel size, side by side: bicubic, each
weights' output, the original.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

PHOTOS = ("coffee", "chelsea", "rocket", "motorcycle_left", "astronaut")


def photos() -> dict[str, Image.Image]:
    from skimage import data as skdata
    load = {name: getattr(skdata, name, None) for name in PHOTOS}
    load["motorcycle_left"] = lambda: skdata.stereo_motorcycle()[0]  # the left view of the stereo pair
    return {name: Image.fromarray(load[name]()).convert("RGB") for name in PHOTOS}


def pair(photo: Image.Image, scale: int) -> tuple[Image.Image, Image.Image]:
    from arasfsr.degrade import bicubic_resize
    w, h = photo.size
    hr = photo.crop((0, 0, w - w % scale, h - h % scale))
    return bicubic_resize(hr, (hr.height // scale, hr.width // scale)), hr


def label(image: Image.Image, text: str) -> Image.Image:
    out = Image.new("RGB", (image.width, image.height + 16), "white")
    out.paste(image, (0, 16))
    ImageDraw.Draw(out).text((2, 2), text, fill="black")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weights", nargs="+", default=["natural"], help="shipped names or weight files")
    parser.add_argument("--scales", default="2,4")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-time", action="store_true")
    parser.add_argument("--sheet", default="", help="write the x4 side-by-side picture here (PNG)")
    parser.add_argument("--self-ensemble", type=int, default=1, choices=(1, 2, 4, 8),
                        help="also score each file rendered N times, flipped and turned, averaged (rows NAME xN)")
    args = parser.parse_args(argv)
    import torch
    from tqdm import tqdm

    import arasfsr
    from arasfsr.metrics import psnr_y
    torch.set_num_threads(args.threads)
    from arasfsr.evaluate import model_label
    models = {}
    for w in args.weights:  # named as `evaluate` names them: two files of one stem stay apart
        models[model_label(w, models)] = arasfsr.load_model(w, device="cpu")
    passes = dict.fromkeys(models, 1)  # name -> upscale's self_ensemble
    if args.self_ensemble > 1:
        for name in list(models):
            passes[f"{name} x{args.self_ensemble}"] = args.self_ensemble
            models[f"{name} x{args.self_ensemble}"] = models[name]
    names = list(models)
    scales = [int(s) for s in args.scales.split(",")]
    images = photos()
    scores = {}  # (scale, photo) -> {name: psnr}
    for scale in scales:
        for pname, photo in tqdm(images.items(), desc=f"x{scale}", unit="photo"):
            lr, hr = pair(photo, scale)
            row = {"bicubic": psnr_y(lr.resize(hr.size, Image.BICUBIC), hr)}
            for name, model in models.items():
                row[name] = psnr_y(arasfsr.upscale(model, lr, size=(hr.height, hr.width),
                                                    self_ensemble=passes[name]), hr)
            scores[scale, pname] = row
    first = names[0]
    head = f"| photo | scale | bicubic | {first} - bicubic | " + " | ".join(f"{n} - {first}" for n in names[1:]) + " |"
    print(head)
    print("|---" * (4 + len(names) - 1) + "|")
    for scale in scales:
        for pname in PHOTOS:
            row = scores[scale, pname]
            cells = [f"{row['bicubic']:.2f}", f"{row[first] - row['bicubic']:+.2f}"]
            cells += [f"{row[n] - row[first]:+.2f}" for n in names[1:]]
            print(f"| {pname} | x{scale} | " + " | ".join(cells) + " |")
        rows = [scores[scale, p] for p in PHOTOS]
        mean = [np.mean([r["bicubic"] for r in rows]), np.mean([r[first] - r["bicubic"] for r in rows])]
        mean += [np.mean([r[n] - r[first] for r in rows]) for n in names[1:]]
        print(f"| **mean** | x{scale} | {mean[0]:.2f} | " + " | ".join(f"{m:+.2f}" for m in mean[1:]) + " |")
    if not args.skip_time:
        crop = images["coffee"].crop((200, 100, 328, 228))
        for name, model in models.items():
            arasfsr.upscale(model, crop, size=(128, 128), self_ensemble=passes[name])
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                arasfsr.upscale(model, crop, size=(512, 512), self_ensemble=passes[name])
                times.append(time.perf_counter() - t0)
            print(f"time 128 -> 512, {name}: {statistics.median(times):.2f} s ({args.threads} thread(s))")
    if args.sheet:
        lr, hr = pair(images[PHOTOS[0]], 4)
        box = (260, 80, 388, 208)  # the cup's rim and the saucer
        panels = [label(lr.resize(hr.size, Image.BICUBIC).crop(box), "bicubic")]
        panels += [label(arasfsr.upscale(m, lr, size=(hr.height, hr.width), self_ensemble=passes[n]).crop(box), n)
                   for n, m in models.items()]
        panels.append(label(hr.crop(box), "original"))
        sheet = Image.new("RGB", (sum(p.width for p in panels) + 4 * (len(panels) - 1), panels[0].height), "white")
        x = 0
        for p in panels:
            sheet.paste(p, (x, 0))
            x += p.width + 4
        sheet.save(args.sheet)
        print(f"wrote {args.sheet}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
