"""Close-ups: the same window of two equal-sized images, side by side, enlarged without smoothing."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from arasfsr.io import read_image

from .images import display_rgb


def label_strip(width: int, text: str, height: int = 20) -> Image.Image:
    """A dark strip with a caption, pasted under a panel."""
    strip = Image.new("RGB", (width, height), (32, 32, 32))
    font = ImageFont.load_default(size=height * 0.65)
    ImageDraw.Draw(strip).text((5, height * 0.15), text, fill=(235, 235, 235), font=font)
    return strip


def zoom_view(bicubic_path, result_path, center=(0.5, 0.45), labels=("Bicubic", "Model"),
              panel: int = 256) -> Image.Image:
    """Side-by-side close-ups of the same window of two equal-sized images.

    Args:
        center: (x, y) of the window's centre as fractions of the image (default: between the eyes
            and the nose of an aligned face).
        panel: displayed side of each close-up in px.
    """
    images = [display_rgb(read_image(bicubic_path, max_pixels=None)),  # the demo's own PNGs, through the
              display_rgb(read_image(result_path, max_pixels=None))]   # package's reader like every image
    width, height = images[0].size
    window = int(np.clip(min(width, height) // 4, 16, 128))
    window = min(window, width, height)
    cx = float(np.clip(center[0], 0, 1)) * width
    cy = float(np.clip(center[1], 0, 1)) * height
    left = int(np.clip(round(cx - window / 2), 0, width - window))
    top = int(np.clip(round(cy - window / 2), 0, height - window))
    box = (left, top, left + window, top + window)
    magnify = max(1, panel // window)
    side = window * magnify
    sheet = Image.new("RGB", (2 * side + 6, side + 20), (32, 32, 32))
    for k, (image, label) in enumerate(zip(images, labels)):
        x = k * (side + 6)
        sheet.paste(image.crop(box).resize((side, side), Image.NEAREST), (x, 0))
        sheet.paste(label_strip(side, f"{label}: {window} px window, x{magnify}"), (x, side))
    return sheet
