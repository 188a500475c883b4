"""The README's gallery: public-domain portraits at x4, from clean and JPEG inputs, at true pixel size.

    python scripts/gallery.py            # writes docs/gallery/*.png
    python scripts/gallery.py --fast     # only docs/gallery/fast_x4_x8.png: ARASFSR beside arasfsr-fast

Faces: Grace Hopper (US Navy photograph, matplotlib's sample data) and Eileen Collins (NASA
photograph, scikit-image's data), both public domain, read from the installed packages and aligned
as the training faces are (YuNet, the same framing, 128 px); never trained or validated on (they are
the demo's example portraits, kept for evaluation). Each row: the original
128 px aligned face, bicubic from the 32 px LR, the default result (weights chosen per input by
`arasfsr.damage.choose`, with the share of detail `damage.choose_detail` keeps, as the CLI and the
app do), and the LR itself enlarged by nearest
neighbour so its pixels can be seen. One thread.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from arasfsr import damage, load_model, upscale  # noqa: E402
from arasfsr.degrade import bicubic_resize, jpeg  # noqa: E402
from arasfsr.metrics import psnr_y  # noqa: E402

PORTRAITS = {"grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg",
                              "Grace Hopper (US Navy, public domain)"),
             "astronaut": ("skimage", "data/astronaut.png", "Eileen Collins (NASA, public domain)")}


def aligned_face(module: str, member: str) -> Image.Image:
    """The most confident face of a picture an installed package ships, aligned at 128 px."""
    import importlib

    from arasfsr.data.offline import default_cache_dir, fetch_detector
    from arasfsr.faces import align_face, detect_faces, make_detector
    rgb = np.asarray(Image.open(Path(importlib.import_module(module).__file__).parent / member).convert("RGB"))
    face = detect_faces(make_detector(fetch_detector(default_cache_dir()), score_threshold=0.7), rgb)[0]
    return Image.fromarray(align_face(rgb, face.landmarks, 128))
INPUTS = (("clean", None), ("JPEG q75", 75), ("JPEG q40", 40))


def fast_sheet(out: Path) -> Path:
    """Both portraits from clean 32 px (x4) and 16 px (x8) inputs: original, bicubic, ARASFSR and its
    distilled student arasfsr-fast, with each one's Y-PSNR."""
    models = {name: load_model(name, device="cpu") for name in ("arasfsr", "arasfsr-fast")}
    rows = []
    for key, (module, member, caption) in PORTRAITS.items():
        hr = aligned_face(module, member)
        for side in (32, 16):
            lr = bicubic_resize(hr, (side, side))
            tiles = [(hr, f"{caption.split(' (')[0]}"), (upscale("bicubic", lr, size=(128, 128)), "bicubic")]
            tiles += [(upscale(m, lr, size=(128, 128)), name) for name, m in models.items()]
            rows.append([(tile, text if k == 0 else f"{text} {psnr_y(tile, hr):.2f}") for k, (tile, text) in
                         enumerate(tiles)])
            rows[-1][0] = (hr, f"x{128 // side} from {side} px")
            print(f"{key} x{128 // side}: " + ", ".join(text for _, text in rows[-1][1:]))
    sheet = Image.new("RGB", (4 * 132, len(rows) * 146 + 16), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((4, 2), "original, bicubic, arasfsr, arasfsr-fast (Y-PSNR dB); clean inputs", fill="black")
    for r, row in enumerate(rows):
        for c, (tile, text) in enumerate(row):
            x, y = c * 132 + 2, r * 146 + 16
            sheet.paste(tile, (x, y))
            draw.text((x, y + 129), text, fill="black")
    path = out / "fast_x4_x8.png"
    sheet.save(path, optimize=True)
    print(f"wrote {path}")
    return path


def main() -> int:
    torch.set_num_threads(1)
    out = REPO / "docs" / "gallery"
    out.mkdir(parents=True, exist_ok=True)
    if "--fast" in sys.argv[1:]:
        fast_sheet(out)
        return 0
    models = {}
    for key, (module, member, caption) in PORTRAITS.items():
        hr = aligned_face(module, member)
        tiles, labels = [], []
        for label, quality in INPUTS:
            lr = bicubic_resize(hr, (32, 32))
            if quality:
                lr = jpeg(lr, quality)
            name, found = damage.choose(lr)
            if name not in models:
                models[name] = "bicubic" if name == "bicubic" else load_model(name, device="cpu")
            detail = damage.choose_detail(found) if name != "bicubic" else 1.0
            result = upscale(models[name], lr, size=(128, 128), detail=detail)
            bicubic = upscale("bicubic", lr, size=(128, 128))
            tiles += [hr, bicubic, result, lr.resize((128, 128), Image.NEAREST)]
            labels += ["original", f"bicubic {psnr_y(bicubic, hr):.2f} dB",
                       f"{name}{'' if detail == 1 else f' {detail:.0%}'} {psnr_y(result, hr):.2f} dB",
                       f"input: {label}"]
            print(f"{key} {label}: {damage.describe(name, found, detail)}; bicubic {psnr_y(bicubic, hr):.2f} dB, "
                  f"result {psnr_y(result, hr):.2f} dB")
        sheet = Image.new("RGB", (4 * 132, len(INPUTS) * 146 + 16), "white")
        draw = ImageDraw.Draw(sheet)
        draw.text((4, 2), caption + ": x4 from 32 px", fill="black")
        for k, (tile, text) in enumerate(zip(tiles, labels)):
            x, y = (k % 4) * 132 + 2, (k // 4) * 146 + 16
            sheet.paste(tile, (x, y))
            draw.text((x, y + 129), text, fill="black")
        sheet.save(out / f"{key}_x4.png", optimize=True)
        print(f"wrote {out / f'{key}_x4.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
