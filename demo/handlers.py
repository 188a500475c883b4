"""What the demo does, as plain functions: checks, the model cache, upscaling, zoom, robustness.

No Gradio in here, so every function is testable on its own. A request the demo refuses raises
`InputError` (a ValueError) with a message meant for the visitor; `demo.ui` shows it as gr.Error.
Images are opened with Pillow after their header has been checked against the limits below, so a
small file that declares a huge image (a decompression bomb) is refused before it is decoded.
"""
from __future__ import annotations

import math
import re
import shutil
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps, UnidentifiedImageError

import arasfsr
from arasfsr import inference, weights
from arasfsr.metrics import psnr_y

# ----------------------------------------------------------------------------- limits
MAX_UPLOAD_MB = 10                   # per file, also enforced by the server before upload ends
MAX_UPLOAD_BYTES = MAX_UPLOAD_MB * 1024 * 1024
MAX_FACE_SIDE = 1024                 # px, face mode and the robustness view
MAX_PHOTO_SIDE = 4096                # px, whole-photo mode
MIN_SIDE = inference.MIN_INPUT_SIDE  # 8 px
MIN_SCALE, MAX_SCALE = 1.0, 16.0
MAX_OUTPUT_MP_CPU = 4.0              # face mode, megapixels: about a minute for the small model on 2 cores
GPU_FACTOR = 4                       # face mode on a CUDA host: 4x larger outputs
# Whole-photo mode: the background is bicubic and only faces go through the model, so any accepted
# photo may at least keep its size: 4096 x 4096 px (16.8 MP, about 1 GB of working memory).
MAX_PHOTO_OUTPUT_PIXELS = MAX_PHOTO_SIDE * MAX_PHOTO_SIDE
# The formats Pillow may open; others (EPS would call Ghostscript, PDF, SVG, ...) are not images here.
# JPEG includes phones' MPO files.
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "TGA", "AVIF")
PNG_COMPRESS_LEVEL = 3               # 3x faster than Pillow's default 6 for 10% larger files
OUTPUT_ROOT = Path(tempfile.gettempdir()) / "arasfsr-demo"
KEEP_OUTPUTS_SECONDS = 3600

MODELS = {"ARASFSR": "arasfsr", "LIIF": "liif", "LTE": "lte", "Bicubic": "bicubic"}
DEFAULT_MODEL = "ARASFSR"
ROBUSTNESS_SIDES = (16, 32, 64, 128)

Progress = Callable[[float, str], None]  # (fraction done in [0, 1], what is happening)


class InputError(ValueError):
    """A request the demo refuses; the message is shown to the visitor as is."""


def on_gpu() -> bool:
    return inference.resolve_device("auto").type == "cuda"


def max_output_pixels(photo: bool = False) -> int:
    """The output limit in pixels: face mode 4 MP on a CPU (x GPU_FACTOR on CUDA); whole photos 16.8 MP."""
    if photo:
        return min(MAX_PHOTO_OUTPUT_PIXELS, inference.MAX_OUTPUT_PIXELS)
    return min(int(MAX_OUTPUT_MP_CPU * 1e6) * (GPU_FACTOR if on_gpu() else 1), inference.MAX_OUTPUT_PIXELS)


def megapixels(pixels: int) -> str:
    """4000000 -> "4", 16777216 -> "16.8"."""
    return f"{pixels / 1e6:.1f}".removesuffix(".0")


def limits_text() -> str:
    """The limits, as shown on the page and in the README."""
    where = "this GPU" if on_gpu() else "a CPU"
    return (f"Limits: files up to {MAX_UPLOAD_MB} MB; faces up to {MAX_FACE_SIDE}x{MAX_FACE_SIDE} px "
            f"(whole photos up to {MAX_PHOTO_SIDE} px a side) and at least {MIN_SIDE}x{MIN_SIDE} px; "
            f"scale {MIN_SCALE:g} to {MAX_SCALE:g}; output up to {megapixels(max_output_pixels())} megapixels "
            f"on {where} ({megapixels(max_output_pixels(photo=True))} MP for whole photos). "
            f"Formats: PNG, JPEG, GIF (first frame), BMP, TIFF, WebP, AVIF, PPM, TGA.")


# ----------------------------------------------------------------------------- reading images
@dataclass
class ImageInfo:
    width: int            # after EXIF rotation
    height: int
    mode: str             # Pillow mode of the file, e.g. RGB, RGBA, P, I;16, CMYK
    format: str
    frames: int = 1
    rotated: bool = False      # its EXIF orientation asks for a turn or a flip
    transparent: bool = False  # has an alpha channel or a transparent palette entry

    @property
    def size_text(self) -> str:
        return f"{self.width} x {self.height} px"


def quote(value) -> str:
    """A file name or value for a message: quoted, at most 60 characters, no HTML-active characters."""
    return "'" + re.sub(r"[^\w .,:;+=()\[\]-]", "_", str(value))[:60] + "'"


def _megabytes(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def _open(path) -> Image.Image:
    """Open (lazily) an upload; every way a file can fail to be an image becomes an InputError."""
    if path is None or str(path) == "":
        raise InputError("Upload an image first.")
    path = Path(path)
    if not path.is_file():
        raise InputError(f"The uploaded file {quote(path.name)} is missing on the server; upload it again.")
    size = path.stat().st_size
    if size == 0:
        raise InputError(f"{quote(path.name)} is an empty file (0 bytes), not an image.")
    if size > MAX_UPLOAD_BYTES:
        raise InputError(f"{quote(path.name)} is {_megabytes(size)}; the limit is {MAX_UPLOAD_MB} MB.")
    Image.init()  # register every plugin, so the formats below can be named (once; cheap after)
    formats = [f for f in IMAGE_FORMATS if f in Image.OPEN]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path, formats=formats)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InputError(f"{quote(path.name)} declares an enormous image (a decompression bomb) and is refused: "
                         f"{error}") from error
    except UnidentifiedImageError as error:
        raise InputError(f"{quote(path.name)} is not an image this demo reads (accepted: PNG, JPEG, GIF, BMP, "
                         f"TIFF, WebP, AVIF, PPM, TGA).") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise InputError(f"{quote(path.name)} is not a readable image: {error}") from error


def _header_info(image: Image.Image) -> ImageInfo:
    width, height = image.size
    rotated = False
    try:
        orientation = image.getexif().get(0x0112, 1)  # EXIF Orientation; 5-8 swap width and height
    except Exception:  # noqa: BLE001 - a broken EXIF block is ignored, exactly as exif_transpose does
        orientation = 1
    rotated = orientation not in (1, None)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    return ImageInfo(width, height, image.mode, image.format or "?", getattr(image, "n_frames", 1), rotated,
                     transparent)


def _check_dimensions(info: ImageInfo, name: str, max_side: int) -> None:
    if max(info.width, info.height) > max_side:
        hint = (f" Larger photos go to the Whole photo tab (up to {MAX_PHOTO_SIDE} px)."
                if max_side < MAX_PHOTO_SIDE else "")
        raise InputError(f"{quote(name)} is {info.size_text}; this mode takes images up to {max_side} px "
                         f"a side.{hint}")
    if min(info.width, info.height) < MIN_SIDE:
        raise InputError(f"{quote(name)} is {info.size_text}; images must be at least {MIN_SIDE} x {MIN_SIDE} px.")


def probe_image(path, max_side: int = MAX_FACE_SIDE) -> ImageInfo:
    """Check a file from its header only (size, format, dimensions), without decoding the pixels."""
    with _open(path) as image:
        info = _header_info(image)
    _check_dimensions(info, Path(path).name, max_side)
    return info


def load_image(path, max_side: int = MAX_FACE_SIDE) -> tuple[Image.Image, ImageInfo]:
    """Open, check the header, then decode the first frame and apply the EXIF orientation."""
    name = Path(path).name if path else ""
    with _open(path) as raw:
        info = _header_info(raw)
        _check_dimensions(info, name, max_side)
        try:
            raw.seek(0)
            raw.load()
            image = ImageOps.exif_transpose(raw)  # always a new image, so closing `raw` is safe
        except (OSError, SyntaxError, ValueError, EOFError) as error:  # truncated or corrupt data
            raise InputError(f"{quote(name)} is truncated or corrupt and cannot be decoded ({error}).") from error
    return image, info


def input_notes(info: ImageInfo) -> list[str]:
    """What the demo did with an unusual input, so nothing happens silently."""
    notes = []
    if info.frames > 1:
        notes.append(f"animated or multi-page file: its first frame of {info.frames} was used")
    if info.rotated:
        notes.append("the EXIF orientation was applied (the photo was turned upright)")
    if info.transparent:
        notes.append("any transparency is kept: the alpha channel is resized with bicubic interpolation")
    if info.mode in ("I;16", "I;16B", "I;16L", "I"):
        notes.append("16-bit grayscale in, 16-bit grayscale PNG out")
    if info.mode == "CMYK":
        notes.append("CMYK was converted to RGB")
    return notes


# ----------------------------------------------------------------------------- sizes
def _number(value, what: str) -> float:
    if value is None or isinstance(value, bool):
        raise InputError(f"Give a {what}.")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"The {what} must be a number, got {quote(value)}.") from None
    if not math.isfinite(number):
        raise InputError(f"The {what} must be a finite number, got {quote(value)}.")
    return number


def check_scale(scale) -> float:
    number = _number(scale, "scale")
    if not MIN_SCALE <= number <= MAX_SCALE:
        raise InputError(f"The scale must be from {MIN_SCALE:g} to {MAX_SCALE:g} (this demo only enlarges), "
                         f"got {number:g}.")
    return number


def check_seed(seed) -> int:
    number = _number(seed, "seed")
    if number != int(number) or not 0 <= number < 2 ** 63:
        raise InputError(f"The seed must be a whole number from 0, got {quote(seed)}.")
    return int(number)


def plan_size(input_size: tuple[int, int], resize_by: str = "scale", scale=None, width=None, height=None,
              max_pixels: int | None = None) -> tuple[int, int]:
    """The output (width, height) of a request, or InputError saying why it is refused.

    Args:
        input_size: (width, height) of the input.
        resize_by: "scale" (output = round(input x scale) per axis) or "size" (width x height).
    """
    in_w, in_h = input_size
    max_pixels = max_output_pixels() if max_pixels is None else max_pixels
    if resize_by == "scale":
        factor = check_scale(scale)
        # round half up, as arasfsr.inference.output_size (whose input limit whole photos exceed)
        out_w, out_h = math.floor(in_w * factor + 0.5), math.floor(in_h * factor + 0.5)
    elif resize_by == "size":
        sides = []
        for value, what, low in ((width, "target width", in_w), (height, "target height", in_h)):
            side = _number(value, what)
            if side != int(side) or side <= 0:
                raise InputError(f"The {what} must be a whole number of pixels above 0, got {quote(value)}.")
            if side < low:
                raise InputError(f"The {what} {int(side)} px is smaller than the input's {low} px: "
                                 f"this demo only enlarges.")
            if side > MAX_SCALE * low:
                raise InputError(f"The {what} {int(side)} px is more than {MAX_SCALE:g} x the input's {low} px.")
            sides.append(int(side))
        out_w, out_h = sides
    else:
        raise InputError(f"Resize by 'scale' or 'size', got {quote(resize_by)}.")
    if out_w * out_h > max_pixels:
        largest = math.sqrt(max_pixels / (in_w * in_h))
        hint = (f" The largest scale for this {in_w} x {in_h} px input is {math.floor(largest * 100) / 100:g}."
                if largest >= MIN_SCALE else "")
        raise InputError(f"The output would be {out_w} x {out_h} px ({out_w * out_h / 1e6:.1f} MP), over this "
                         f"server's {megapixels(max_pixels)} MP limit.{hint}")
    return out_w, out_h


def describe_request(path, resize_by: str = "scale", scale=None, width=None, height=None,
                     photo: bool = False) -> str:
    """The output size a request will have, shown before running (Markdown).

    A bad file raises InputError (the upload is refused at once); a bad scale or size is
    described in the text, since the visitor may still be moving the slider.
    """
    if not path:
        return "Upload an image to see the output size."
    info = probe_image(path, MAX_PHOTO_SIDE if photo else MAX_FACE_SIDE)
    text = f"Input: {info.size_text} ({info.format}, {info.mode})."
    try:
        out_w, out_h = plan_size((info.width, info.height), resize_by, scale, width, height,
                                 max_output_pixels(photo))
    except InputError as error:
        return f"{text}  \n**Cannot run:** {error}"
    return f"{text}  \n**Output: {out_w} x {out_h} px** ({out_w * out_h / 1e6:.2f} MP)."


# ----------------------------------------------------------------------------- models
_models: dict[str, object] = {}
_models_lock = threading.Lock()


def model_path(label: str) -> Path:
    return weights.default_weights_path(MODELS[label])


def available_models() -> dict[str, bool]:
    """Each choice and whether it can run (its weight file exists; bicubic always can)."""
    return {label: key == "bicubic" or model_path(label).is_file() for label, key in MODELS.items()}


def get_model(label: str):
    """The cached model for a choice ("bicubic" for Bicubic), loaded on first use."""
    if label not in MODELS:
        raise InputError(f"Unknown model {quote(label)}; choose one of {', '.join(MODELS)}.")
    if MODELS[label] == "bicubic":
        return "bicubic"
    path = model_path(label)
    key = str(path)
    with _models_lock:
        if key not in _models:
            if not path.is_file():
                raise InputError(f"The {label} weights are not installed on this server: {path.name} is missing "
                                 f"from the weights folder ({path.parent.name}/). Choose another model.")
            _models[key] = weights.load_model(path)
        return _models[key]


def model_card() -> str:
    """A Markdown table of the models with what their weight files say they were trained on."""
    rows = ["| Model | Weights | Trained on |", "|---|---|---|"]
    for label, key in MODELS.items():
        if key == "bicubic":
            rows.append("| Bicubic | none | Pillow's bicubic resize: the baseline every model must beat |")
            continue
        path = model_path(label)
        if not path.is_file():
            rows.append(f"| {label} | `{path.name}` missing | not available on this server |")
            continue
        training = weights.read_metadata(path)["training"]
        facts = [str(training[k]) for k in ("data",) if training.get(k)]
        if training.get("scale_range"):
            facts.append(f"scales {training['scale_range'][0]}-{training['scale_range'][1]}")
        if training.get("input_sizes"):
            facts.append(f"inputs {training['input_sizes'][0]}-{training['input_sizes'][-1]} px")
        if training.get("steps"):
            facts.append(f"{training['steps']} steps")
        rows.append(f"| {label} | `{path.name}` | {'; '.join(facts) or 'no description in the file'} |")
    return "\n".join(rows)


# ----------------------------------------------------------------------------- outputs
def new_output_dir() -> Path:
    """A fresh folder for one request's files; folders older than KEEP_OUTPUTS_SECONDS are removed."""
    root = OUTPUT_ROOT / "outputs"
    root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in root.iterdir():
        try:
            if old.is_dir() and now - old.stat().st_mtime > KEEP_OUTPUTS_SECONDS:
                shutil.rmtree(old, ignore_errors=True)
        except FileNotFoundError:  # removed by a concurrent request
            pass
    folder = root / uuid.uuid4().hex
    folder.mkdir()
    return folder


def save_png(image: Image.Image, path: Path) -> Path:
    """Lossless PNG (16-bit grayscale and alpha kept)."""
    image.save(path, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    return path


def file_stem(path) -> str:
    """A safe base for output file names: the upload's name, letters, digits, - and _ only."""
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(path).stem)[:60]
    return stem or "image"


def device_name() -> str:
    return "GPU" if on_gpu() else "CPU"


def fraction_progress(progress: Progress | None, start: float, span: float, desc: str):
    """An arasfsr (done, total) callback reporting into [start, start + span] of `progress`."""
    if progress is None:
        return None
    return lambda done, total: progress(start + span * done / max(total, 1), desc)


@dataclass
class UpscaleResult:
    result_path: Path       # the model's output, full resolution PNG (the download)
    bicubic_path: Path      # the same input upscaled by bicubic, same size
    width: int
    height: int
    seconds: float          # model time
    bicubic_seconds: float
    info: str               # Markdown summary
    notes: list[str] = field(default_factory=list)


def upscale_face(path, scale=4.0, model_label: str = DEFAULT_MODEL, resize_by: str = "scale", width=None,
                 height=None, sample: bool = False, seed=0, progress: Progress | None = None) -> UpscaleResult:
    """Super-resolve one face image to a scale or a size; also makes the bicubic comparison.

    Raises InputError for anything the demo refuses (see the module docstring and `limits_text`).
    """
    image, info = load_image(path, MAX_FACE_SIDE)
    out_w, out_h = plan_size((info.width, info.height), resize_by, scale, width, height)
    scale = check_scale(scale) if resize_by == "scale" else None
    model = get_model(model_label)
    seed = check_seed(seed) if sample else 0
    notes = input_notes(info)
    if sample and (model == "bicubic" or not model.config.use_lfe):
        notes.append(f"{model_label} has no LFE latent, so 'sample' changes nothing")

    started = time.perf_counter()
    bicubic = arasfsr.upscale("bicubic", image, size=(out_h, out_w))
    bicubic_seconds = time.perf_counter() - started
    if model == "bicubic":
        result, seconds = bicubic, bicubic_seconds
    else:
        started = time.perf_counter()
        result = arasfsr.upscale(model, image, size=(out_h, out_w), sample=sample, seed=seed,
                                 progress=fraction_progress(progress, 0.0, 0.95, f"{model_label}: querying pixels"))
        seconds = time.perf_counter() - started
    if progress is not None:
        progress(0.97, "saving PNG")

    folder = new_output_dir()
    tag = f"x{scale:g}" if resize_by == "scale" else "size"
    name = f"{file_stem(path)}_{MODELS[model_label]}_{tag}_{out_w}x{out_h}"
    result_path = save_png(result, folder / f"{name}.png")
    bicubic_path = (result_path if model == "bicubic"
                    else save_png(bicubic, folder / f"{file_stem(path)}_bicubic_{out_w}x{out_h}.png"))

    how = f"x{scale:.2f}" if resize_by == "scale" else "to a size"
    latent = ""
    if model != "bicubic" and model.config.use_lfe:
        latent = f" LFE latent: sampled, seed {seed}." if sample else " LFE latent: deterministic (its mean)."
    text = (f"**{model_label}** {how}: {info.size_text} -> **{out_w} x {out_h} px** in **{seconds:.2f} s** "
            f"on the {device_name()} (bicubic {bicubic_seconds:.3f} s).{latent}")
    if notes:
        text += "  \nNotes: " + "; ".join(notes) + "."
    return UpscaleResult(result_path, bicubic_path, out_w, out_h, seconds, bicubic_seconds, text, notes)


# ----------------------------------------------------------------------------- zoom
def _label_strip(width: int, text: str, height: int = 20) -> Image.Image:
    strip = Image.new("RGB", (width, height), (32, 32, 32))
    font = ImageFont.load_default(size=height * 0.65)
    ImageDraw.Draw(strip).text((5, height * 0.15), text, fill=(235, 235, 235), font=font)
    return strip


def display_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB for display: 16-bit scaled down, transparency shown over a checkerboard."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = Image.fromarray((np.asarray(image, np.float64) / 257).round().clip(0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        board = np.indices(image.size[::-1]).sum(0) // 8 % 2  # 8 px checks
        background = Image.fromarray(np.where(board[..., None], 200, 150).repeat(3, -1).astype(np.uint8))
        background.paste(image, mask=image.getchannel("A"))
        image = background
    return image.convert("RGB")


def zoom_view(bicubic_path, result_path, center=(0.5, 0.45), labels=("Bicubic", "Model"),
              panel: int = 256) -> Image.Image:
    """Side-by-side close-ups of the same window of two equal-sized images, enlarged without smoothing.

    Args:
        center: (x, y) of the window's centre as fractions of the image (default: between the eyes
            and the nose of an aligned face).
        panel: displayed side of each close-up in px.
    """
    with Image.open(bicubic_path) as a, Image.open(result_path) as b:
        images = [display_rgb(a), display_rgb(b)]
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
        sheet.paste(_label_strip(side, f"{label}: {window} px window, x{magnify}"), (x, side))
    return sheet


# ----------------------------------------------------------------------------- robustness
def _db(value: float) -> str:
    return "identical" if math.isinf(value) else f"{value:.2f} dB"


@dataclass
class RobustnessResult:
    sheet: Image.Image    # columns: one per input size (+ reference); rows: input, bicubic, model
    table: str            # Markdown


def robustness(path, out_side=256, model_label: str = DEFAULT_MODEL,
               progress: Progress | None = None) -> RobustnessResult:
    """The paper's claim on the visitor's face: one face at 16, 32, 64 and 128 px, each to one size.

    The face is reduced (Pillow bicubic, antialiased: the training degradation) so its height is
    16, 32, 64 and 128 px, then each is super-resolved to `out_side` px high (aspect kept).
    Sizes at or above the input's height, or above the output height, are reported and left out.
    """
    side = _number(out_side, "output size")
    if side != int(side) or not 32 <= side <= 512:
        raise InputError(f"The output size must be a whole number of pixels from 32 to 512, got {quote(out_side)}.")
    out_h = int(side)
    image, info = load_image(path, MAX_FACE_SIDE)
    model = get_model(model_label)
    if model == "bicubic":
        raise InputError("Choose a model (ARASFSR, LIIF or LTE): bicubic is already shown in every column.")
    rgb = display_rgb(image)  # the view compares colour images; alpha and 16 bits are not its point
    aspect = info.width / info.height
    out_w = max(1, round(out_h * aspect))
    if out_w * out_h > max_output_pixels():
        raise InputError(f"The output would be {out_w} x {out_h} px; this input is too wide for the view.")
    reference = rgb.resize((out_w, out_h), Image.BICUBIC)
    reference_is_real = info.height >= out_h  # else the "reference" is itself an upscale

    used, skipped = [], []
    for lr_h in ROBUSTNESS_SIDES:
        lr_w = max(1, round(lr_h * aspect))
        if lr_h >= info.height:
            skipped.append(f"{lr_h} px (the input is only {info.height} px high)")
        elif lr_h > out_h:
            skipped.append(f"{lr_h} px (above the {out_h} px output)")
        elif out_h / lr_h > MAX_SCALE:
            skipped.append(f"{lr_h} px (x{out_h / lr_h:g} is above the x{MAX_SCALE:g} limit)")
        elif min(lr_w, lr_h) < MIN_SIDE:
            skipped.append(f"{lr_h} px (narrower than {MIN_SIDE} px)")
        else:
            used.append((lr_h, lr_w))
    if not used:
        raise InputError("No input size fits: " + "; ".join(skipped) + ".")

    columns, rows = [], ["| Input | Scale | Model time | Y-PSNR bicubic | Y-PSNR model |", "|---|---|---|---|---|"]
    for k, (lr_h, lr_w) in enumerate(used):
        lr = rgb.resize((lr_w, lr_h), Image.BICUBIC)
        bicubic = arasfsr.upscale("bicubic", lr, size=(out_h, out_w))
        started = time.perf_counter()
        result = arasfsr.upscale(model, lr, size=(out_h, out_w), progress=fraction_progress(
            progress, k / len(used), 1 / len(used), f"{model_label}: {lr_h} px -> {out_h} px"))
        seconds = time.perf_counter() - started
        columns.append((f"{lr_h} px -> {out_h}", lr.resize((out_w, out_h), Image.NEAREST), bicubic, result))
        if reference_is_real:
            psnr = " | ".join(_db(psnr_y(image, reference)) for image in (bicubic, result))
        else:
            psnr = "- | -"
        rows.append(f"| {lr_w} x {lr_h} px | x{out_h / lr_h:.2f} | {seconds:.2f} s | {psnr} |")

    # the sheet: rows = what the model saw, bicubic, the model; a label strip under each column
    label_h, gap = 20, 4
    ref_label = "reference" if reference_is_real else "input (upscaled)"
    columns.append((ref_label, reference, None, None))
    sheet = Image.new("RGB", (len(columns) * (out_w + gap) - gap, label_h + 3 * (out_h + gap) - gap), (32, 32, 32))
    for k, (label, top, middle, bottom) in enumerate(columns):
        x = k * (out_w + gap)
        for r, tile in enumerate((top, middle, bottom)):
            if tile is not None:
                sheet.paste(tile, (x, r * (out_h + gap)))
        sheet.paste(_label_strip(out_w, label, label_h), (x, 3 * (out_h + gap) - gap))
    table = "\n".join(rows)
    table += (f"\n\nRows: the input the model saw (enlarged without smoothing), bicubic, {model_label}. "
              f"Every input is the same face reduced with Pillow's bicubic (the training degradation).")
    if reference_is_real:
        table += f" PSNR is measured against the input resized to {out_w} x {out_h} px."
    else:
        table += f" No PSNR: the input is smaller than the {out_h} px output, so there is no true reference."
    if skipped:
        table += "  \nLeft out: " + "; ".join(skipped) + "."
    return RobustnessResult(sheet, table)
