"""Example images, made at run time from public-domain portraits that installed packages ship.

Grace Hopper (US Navy photo) comes with matplotlib's sample data, Eileen Collins (NASA photo) with
scikit-image's data. No photo is stored in this repository. The face examples are aligned crops in
the framing the model was trained on (eyes at 47% height, 25% of the width apart).
"""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from .outputs import OUTPUT_ROOT

log = logging.getLogger(__name__)

EXAMPLES_DIR = OUTPUT_ROOT / "examples"


def _write_once(target: Path, write) -> Path:
    """Make `target` with write(temporary path) unless it exists; atomic, so two servers may start at once."""
    if not target.exists():
        tmp = target.with_name(f".{target.stem}.{os.getpid()}{target.suffix}")
        write(tmp)
        tmp.replace(target)
    return target


def _sources() -> dict[str, Path]:
    """The two portraits as files in EXAMPLES_DIR."""
    import matplotlib.cbook
    import skimage.data

    EXAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    hopper = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    return {"grace_hopper": _write_once(EXAMPLES_DIR / "grace_hopper.jpg", lambda t: shutil.copyfile(hopper, t)),
            "astronaut": _write_once(EXAMPLES_DIR / "astronaut.png",
                                     lambda t: Image.fromarray(skimage.data.astronaut()).save(t))}


def _aligned(source: Path, size: int) -> np.ndarray:
    """The most confident face of a photo, aligned at size x size (a centre crop if none is found)."""
    from arasfsr import faces
    from arasfsr.io import read_image

    rgb = np.asarray(read_image(source, max_pixels=None).convert("RGB"))
    try:
        found = faces.detect_face(faces.make_detector(score_threshold=0.5), rgb)
    except RuntimeError as error:  # no YuNet model installed: examples still work, less well framed
        log.warning("examples: %s; using a centre crop", error)
        found = None
    if found is None:
        h, w = rgb.shape[:2]
        side = min(h, w)
        square = Image.fromarray(rgb[(h - side) // 2:(h + side) // 2, (w - side) // 2:(w + side) // 2])
        return np.asarray(square.resize((size, size), Image.BICUBIC))
    return faces.align_face(rgb, found[1], size)


def prepare_examples() -> dict[str, Path]:
    """Paths of every example file, made once per machine (in the system's temp folder).

    Keys: grace_hopper, astronaut (whole photos), grace_hopper_64, astronaut_96 (small faces to
    upscale), grace_hopper_256, astronaut_160 (faces for the robustness view).
    """
    paths = _sources()
    for name, size in (("grace_hopper", 64), ("astronaut", 96), ("grace_hopper", 256), ("astronaut", 160)):
        paths[f"{name}_{size}"] = _write_once(EXAMPLES_DIR / f"{name}_face_{size}.png",
                                              lambda t: Image.fromarray(_aligned(paths[name], size)).save(t))
    return paths
