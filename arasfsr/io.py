"""The one image reader: files, PIL images and arrays, checked before they cost memory.

Torch-free. Every problem with an input is an `ImageError` (a ValueError) whose message is one
line naming the file and the reason, e.g. "face.png: cannot decode the image data (image file is
truncated ...); the file is damaged or not a complete image".

What `read_image` does, in order:
1. paths: refuse a missing, empty or non-image file; the format is decided from the file's first
   bytes (`sniff_format`, the magic numbers of `FORMATS`) before any Pillow plugin sees it, and
   only that format's plugin may open it: an EPS named face.png never reaches Ghostscript, and
   PCX, XBM, ICO, PDF or PSD files are refused whatever their names say;
2. read the header only and refuse more than `max_pixels` pixels BEFORE decoding (a 37 KB 1-bit
   PNG can claim 13000x13000 px: decoding it would cost gigabytes), and any image over Pillow's
   decompression-bomb limit whatever `max_pixels` says;
3. decode (the first frame of an animation), apply the EXIF orientation.

Image modes, as `split_image` returns them: RGB as is; grayscale (1, L, F) and 16-bit grayscale
(I;16, I) as RGB planes whose output mode is L or I;16; RGBA / LA / palette with transparency as
colour planes plus an alpha plane; CMYK, YCbCr and the rest converted to RGB. 16-bit RGB files
are read by Pillow as 8-bit RGB.

Arrays: uint8 or uint16, or float in [0, 1], shaped (H, W), (H, W, 1), (H, W, 3) or (H, W, 4).
`read_planes` hands float and 16-bit colour arrays to the model without rounding them to 8 bits.
"""
from __future__ import annotations

import os
import struct
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .sizes import MAX_INPUT_PIXELS

# The suffixes a folder of images is listed by (CLI batches and training folders alike).
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff", ".gif"})
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I")

ImageSource = Union[str, os.PathLike, Image.Image, np.ndarray]

# The formats read from files: Pillow format name -> the magic numbers a file must start with
# (WebP and AVIF: a container whose brand sits a few bytes in; PPM: P1-P6). TGA has no magic number
# and is not read; Pillow's other plugins (EPS calls Ghostscript, PDF, ICO, PCX, XBM, PSD, ...) never run.
FORMATS = {"PNG": (b"\x89PNG\r\n\x1a\n",), "JPEG": (b"\xff\xd8\xff",), "GIF": (b"GIF87a", b"GIF89a"),
           "BMP": (b"BM",), "TIFF": (b"II*\x00", b"MM\x00*"), "WEBP": (), "PPM": tuple(b"P%d" % k for k in range(1, 7)),
           "AVIF": ()}
# What a refused file most likely is, for the message (first bytes -> name).
_OTHER_FORMATS = ((b"%!PS", "PostScript / EPS"), (b"\xc5\xd0\xd3\xc6", "EPS"), (b"%PDF", "PDF"),
                  (b"\x00\x00\x01\x00", "ICO"), (b"8BPS", "Photoshop PSD"), (b"#define", "XBM"),
                  (b"<?xml", "XML / SVG"), (b"<svg", "SVG"), (b"PK\x03\x04", "ZIP"), (b"\x0a", "PCX"))


def sniff_format(head: bytes) -> str | None:
    """The `FORMATS` name whose magic number `head` (a file's first 16 bytes or more) starts with, else None."""
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[4:8] == b"ftyp" and head[8:12] in (b"avif", b"avis"):
        return "AVIF"
    for name, magics in FORMATS.items():
        if any(head.startswith(m) for m in magics):
            if name == "PPM" and head[2:3] not in b" \t\r\n#":  # "P1".."P6" then whitespace or a comment
                continue
            return name
    return None


def _refuse_format(name: str, head: bytes) -> ImageError:
    other = next((what for magic, what in _OTHER_FORMATS if head.startswith(magic)), None)
    accepted = ", ".join("WebP" if f == "WEBP" else f for f in FORMATS)
    what = f"it is {other}" if other else "unknown format"
    return ImageError(f"{name}: not an image in a supported format ({what}, whatever its name says); "
                      f"accepted: {accepted}")


def open_file(path: str | os.PathLike) -> Image.Image:
    """Open an image file lazily (header only) with the one plugin its first bytes call for.

    Raises FileNotFoundError for a missing file, ImageError for a folder, an empty file, a format
    outside `FORMATS` or a header Pillow cannot read. The caller closes the image (or decodes it).
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a folder, not an image file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes), not an image")
    with open(path, "rb") as handle:
        head = handle.read(32)
    fmt = sniff_format(head)
    if fmt is None:
        raise _refuse_format(str(path), head)
    Image.init()
    if fmt not in Image.OPEN:
        raise ImageError(f"{path}: a {fmt} file, which this install's Pillow cannot decode")
    try:
        return Image.open(path, formats=[fmt])  # reads the header only
    except UnidentifiedImageError:
        raise ImageError(f"{path}: starts like a {fmt} file but its header is not readable") from None
# What decoders raise on damaged data (Pillow is not consistent about it).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error, zlib.error,
                  Image.DecompressionBombError)


class ImageError(ValueError):
    """An input image that cannot be used; the message names the file and the reason."""


class Planes(NamedTuple):
    """An image as the model reads it."""
    rgb: np.ndarray               # (H, W, 3) float32 in [0, 1]
    alpha: np.ndarray | None      # (H, W) float32 in [0, 1], or None
    mode: str                     # the mode results are returned in: RGB, L, I;16, RGBA or LA
    image: Image.Image | None     # the decoded PIL image, None for float / 16-bit colour arrays


def list_image_files(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Image files in `folder` by suffix (case-insensitive; hidden files skipped), sorted by relative path."""
    folder = Path(folder)
    found = folder.rglob("*") if recursive else folder.iterdir()
    files = [p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
             and p.is_file()]
    return sorted(files, key=lambda p: p.relative_to(folder).as_posix())


def _pixel_limit(max_pixels: int | None) -> int:
    # Pillow's bomb limit always applies; a caller's limit can only be lower
    bomb = Image.MAX_IMAGE_PIXELS or 2 ** 62
    return bomb if max_pixels is None else min(int(max_pixels), bomb)


def _check_pixels(name: str, height: int, width: int, max_pixels: int | None) -> None:
    limit = _pixel_limit(max_pixels)
    if height * width > limit:
        raise ImageError(f"{name}: {height}x{width} px (height x width) = {height * width} pixels is over the "
                         f"limit of {limit} pixels; refused before decoding (a decompression bomb or "
                         "simply too large: downscale it first)")


def _open_header(path: Path, max_pixels: int | None) -> Image.Image:
    """Open a file lazily (header only) by the plugin its magic number calls for; one-line errors."""
    with warnings.catch_warnings():
        # Pillow only warns between its bomb limit and twice it; `_check_pixels` refuses those
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            return open_file(path)
        except ImageError:
            raise
        except UnidentifiedImageError:
            raise ImageError(f"{path}: not an image file Pillow can read") from None
        except Image.DecompressionBombError as err:
            raise ImageError(f"{path}: over the limit of {_pixel_limit(max_pixels)} pixels, refused as a "
                             f"decompression bomb ({err})") from None
        except _DECODE_ERRORS as err:
            raise ImageError(f"{path}: cannot read the image header ({err})") from None


def _decode(image: Image.Image, path: Path, max_pixels: int | None) -> Image.Image:
    """Check the header's pixel count, then decode the first frame (the file is closed after)."""
    try:
        width, height = image.size                       # from the header: nothing decoded yet
        _check_pixels(str(path), height, width, max_pixels)
        try:
            image.seek(0)                                # animations: the first frame
            image.load()
        except _DECODE_ERRORS as err:
            raise ImageError(f"{path}: cannot decode the image data ({err}); the file is truncated or corrupt "
                             "(not a complete image)") from None
    except ImageError:
        image.close()
        raise
    if getattr(image, "n_frames", 1) > 1:                # detach the first frame from the file
        frame = image.copy()
        image.close()
        return frame
    return image


def _open_path(path: Path, max_pixels: int | None) -> Image.Image:
    """Open a file, check its header, decode it; one-line errors."""
    return _decode(_open_header(path, max_pixels), path, max_pixels)


def _orient(image: Image.Image, name: str) -> Image.Image:
    """Apply the EXIF orientation; a JPEG's quantisation tables stay on the result (as
    `image.quantization`), so its quality can be judged without reading the file again."""
    tables = getattr(image, "quantization", None)
    try:
        oriented = ImageOps.exif_transpose(image)
    except _DECODE_ERRORS as err:  # a damaged EXIF block
        raise ImageError(f"{name}: cannot apply its EXIF orientation ({err})") from None
    if tables and not getattr(oriented, "quantization", None):
        oriented.quantization = tables
    return oriented


# ----------------------------------------------------------------------------- what users are told
@dataclass
class ImageInfo:
    """What a file's header says, for checks before decoding and for the notes shown to users."""
    width: int            # after EXIF rotation
    height: int
    mode: str             # Pillow mode of the file, e.g. RGB, RGBA, P, I;16, CMYK
    format: str
    frames: int = 1
    rotated: bool = False      # its EXIF orientation asks for a turn or a flip
    transparent: bool = False  # has an alpha channel or a transparent palette entry
    colour16: bool = False     # 16 bits per colour channel on file (Pillow decodes those as 8-bit)

    @property
    def size_text(self) -> str:
        return f"{self.width} x {self.height} px"

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width), the package's order."""
        return self.height, self.width


def _is_colour16(image: Image.Image) -> bool:
    """16 bits per colour channel on file: Pillow's raw mode says so (e.g. PNG 'RGB;16B', TIFF 'RGB;16N')."""
    if image.mode not in ("RGB", "RGBA"):
        return False
    for tile in image.tile[:1]:
        args = tile.args if hasattr(tile, "args") else tile[3]
        rawmode = args[0] if isinstance(args, tuple) else args
        return isinstance(rawmode, str) and ";16" in rawmode
    return False


def header_info(image: Image.Image) -> ImageInfo:
    """`ImageInfo` of an image opened lazily (`open_file`), before it is decoded."""
    width, height = image.size
    colour16 = _is_colour16(image)  # before getexif, which may read on and replace the tile list
    try:
        orientation = image.getexif().get(0x0112, 1)  # EXIF Orientation; 5-8 swap width and height
    except Exception:  # noqa: BLE001 - a broken EXIF block is ignored, exactly as exif_transpose does
        orientation = 1
    rotated = orientation not in (1, None)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    return ImageInfo(width, height, image.mode, image.format or "?", getattr(image, "n_frames", 1), rotated,
                     transparent, colour16)


def probe(path: str | os.PathLike) -> ImageInfo:
    """`ImageInfo` from a file's header only: nothing is decoded. One-line `ImageError`s."""
    path = Path(path)
    with _open_header(path, None) as image:
        return header_info(image)


def read_with_info(path: str | os.PathLike, max_pixels: int | None = MAX_INPUT_PIXELS,
                   check: Callable[[ImageInfo], None] | None = None) -> tuple[Image.Image, ImageInfo]:
    """Read a file once: header, `check(info)` (a caller's limits; it raises to refuse), then the
    pixels as `read_image` decodes them. Returns (image, info)."""
    path = Path(path)
    image = _open_header(path, max_pixels)
    try:
        info = header_info(image)
        if check is not None:
            check(info)
    except BaseException:
        image.close()
        raise
    return _orient(_decode(image, path, max_pixels), str(path)), info


def input_notes(info: ImageInfo) -> list[str]:
    """What is done with an unusual input, in words, so nothing happens silently."""
    notes = []
    if info.frames > 1:
        notes.append(f"animated or multi-page file: its first frame of {info.frames} was used")
    if info.rotated:
        notes.append("the EXIF orientation was applied (the photo was turned upright)")
    if info.transparent:
        notes.append("any transparency is kept: the alpha channel is resized with bicubic interpolation")
    if info.mode in SIXTEEN_BIT_MODES:
        notes.append("16-bit grayscale in, 16-bit grayscale PNG out")
    if info.colour16:
        notes.append("16-bit colour: the file was read as 8 bits per channel (the result is an 8-bit PNG)")
    if info.mode == "CMYK":
        notes.append("CMYK was converted to RGB")
    return notes


def display_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB for display: 16-bit scaled down, transparency shown over a checkerboard."""
    if image.mode in SIXTEEN_BIT_MODES:
        image = Image.fromarray((np.asarray(image, np.float64) / 257).round().clip(0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        board = np.indices(image.size[::-1]).sum(0) // 8 % 2  # 8 px checks
        background = Image.fromarray(np.where(board[..., None], 200, 150).repeat(3, -1).astype(np.uint8))
        background.paste(image, mask=image.getchannel("A"))
        image = background
    return image.convert("RGB")


def _array_planes(array: np.ndarray, max_pixels: int | None) -> Planes:
    """Planes from an array, without rounding float or 16-bit values to 8 bits."""
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ImageError(f"array image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got shape {array.shape}")
    _check_pixels("array image", array.shape[0], array.shape[1], max_pixels)
    if array.dtype == np.uint8:
        image = Image.fromarray(np.ascontiguousarray(array))
        return Planes(*split_image(image), image)
    if array.dtype == np.uint16 and array.ndim == 2:
        image = Image.fromarray(np.ascontiguousarray(array))  # I;16: stays 16-bit through split/merge
        return Planes(*split_image(image), image)
    if array.dtype == np.uint16:
        values = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32)
        if not np.isfinite(values).all():
            raise ImageError("float array image must hold finite values in [0, 1], it holds NaN or inf")
        if values.size and (values.min() < 0.0 or values.max() > 1.0):  # no silent clipping
            raise ImageError(f"float array image must hold values in [0, 1], got min {values.min():g}, "
                             f"max {values.max():g}; divide by 255 (or 65535) first")
    else:
        raise ImageError(f"array image must be uint8, uint16 or float in [0, 1], got dtype {array.dtype}")
    if values.ndim == 2:
        return Planes(np.repeat(values[..., None], 3, axis=-1), None, "L", None)
    alpha = values[..., 3] if values.shape[2] == 4 else None
    return Planes(np.ascontiguousarray(values[..., :3]), alpha, "RGBA" if alpha is not None else "RGB", None)


def read_planes(source: ImageSource, max_pixels: int | None = MAX_INPUT_PIXELS) -> Planes:
    """Read any image source into the float planes the model sees (see the module docstring).

    Args:
        source: a path, a PIL image or an array.
        max_pixels: refuse more than this many pixels (checked from the header before decoding);
            None: only Pillow's decompression-bomb limit.
    Returns:
        `Planes(rgb, alpha, mode, image)`.
    Raises:
        FileNotFoundError for a missing file, ImageError (a ValueError) for anything else unusable.
    """
    if isinstance(source, np.ndarray):
        return _array_planes(source, max_pixels)
    image = read_image(source, max_pixels)
    return Planes(*split_image(image), image)


def read_image(source: ImageSource, max_pixels: int | None = MAX_INPUT_PIXELS) -> Image.Image:
    """A PIL image from a path, a PIL image or an array, checked and EXIF-oriented.

    Args:
        source: a path (str / PathLike), a PIL image, or an array (uint8, uint16, float in [0, 1];
            float and 16-bit colour arrays are rounded to 8 bits here: `read_planes` keeps them).
        max_pixels: refuse images with more pixels (from the header, before decoding); None: only
            Pillow's decompression-bomb limit.
    Returns:
        A decoded PIL image (the first frame of an animation) with its EXIF orientation applied.
    Raises:
        FileNotFoundError for a missing file, ImageError (a ValueError) for anything else unusable.
    """
    if isinstance(source, np.ndarray):
        planes = _array_planes(source, max_pixels)
        return planes.image if planes.image is not None else merge_image(planes.rgb, planes.alpha, planes.mode)
    if isinstance(source, Image.Image):
        _check_pixels("image", source.height, source.width, max_pixels)
        image, name = source, "image"
    elif isinstance(source, (str, os.PathLike)):
        image, name = _open_path(Path(source), max_pixels), str(source)
    else:
        raise ImageError(f"image must be a path, a PIL image or a numpy array, got {type(source).__name__}")
    return _orient(image, name)


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """(height, width) as displayed (EXIF orientation applied when it sits in the header), read
    from the header only: nothing is decoded. For early checks; `read_image` is the authority."""
    path = Path(path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # only the size is wanted here
        try:
            with open_file(path) as image:
                width, height = image.size
                # EXIF from the header only: `getexif()` would decode a PNG whose EXIF follows its data
                raw = image.info.get("exif")
                exif = Image.Exif()
                if isinstance(raw, bytes):
                    exif.load(raw)
                orientation = exif.get(0x0112, 1)
        except ImageError:
            raise
        except UnidentifiedImageError:
            raise ImageError(f"{path}: not an image file Pillow can read") from None
        except _DECODE_ERRORS as err:
            raise ImageError(f"{path}: cannot read the image header ({err})") from None
    return (width, height) if orientation in (5, 6, 7, 8) else (height, width)


def split_image(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None, str]:
    """(rgb float32 (h, w, 3) in [0, 1], alpha float32 (h, w) or None, output mode)."""
    mode = image.mode
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        mode = image.mode
    if mode in SIXTEEN_BIT_MODES:
        gray = np.clip(np.asarray(image, dtype=np.float32) / 65535.0, 0, 1)
        return np.repeat(gray[..., None], 3, axis=-1), None, "I;16"
    if mode in ("1", "L", "F"):
        gray = np.asarray(image.convert("L"), dtype=np.float32) / 255.0
        return np.repeat(gray[..., None], 3, axis=-1), None, "L"
    if mode in ("LA", "La"):
        arr = np.asarray(image.convert("LA"), dtype=np.float32) / 255.0
        return np.repeat(arr[..., :1], 3, axis=-1), arr[..., 1], "LA"
    if mode in ("RGBA", "RGBa", "PA"):
        arr = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
        return arr[..., :3], arr[..., 3], "RGBA"
    return np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0, None, "RGB"


def merge_image(rgb: np.ndarray, alpha: np.ndarray | None, mode: str) -> Image.Image:
    """Inverse of `split_image` for float arrays in [0, 1]: round to nearest, back to `mode`."""
    rgb = np.clip(rgb, 0.0, 1.0)
    if mode == "I;16":
        return Image.fromarray(np.rint(rgb.mean(-1) * 65535).astype(np.uint16))
    out = Image.fromarray(np.rint(rgb * 255).astype(np.uint8), "RGB")
    if mode in ("L", "LA"):
        out = out.convert("L")
    if alpha is not None:
        out = out.convert("RGBA" if mode == "RGBA" else "LA")
        out.putalpha(Image.fromarray(np.rint(np.clip(alpha, 0, 1) * 255).astype(np.uint8)))
    return out
