"""Reading an upload: header checks before decoding, the first frame, EXIF orientation, and notes.

Images are opened with Pillow after their header has been checked against `demo.limits`, so a
small file that declares a huge image (a decompression bomb) is refused before it is decoded.
Every way a file can fail becomes an `InputError` naming the file and the reason.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from arasfsr import io as arasfsr_io

from .errors import InputError, quote
from .limits import MAX_FACE_SIDE, MAX_PHOTO_SIDE, MAX_UPLOAD_BYTES, MAX_UPLOAD_MB, MIN_SIDE

# The formats an upload may be: the package's list, checked from the magic number (`arasfsr.io.FORMATS`).
IMAGE_FORMATS = tuple(arasfsr_io.FORMATS)
GRAY16_MODES = ("I;16", "I;16B", "I;16L", "I")


@dataclass
class ImageInfo:
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
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return arasfsr_io.open_file(path)  # the package's intake: format by magic number, one plugin
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise InputError(f"{quote(path.name)} declares an enormous image (a decompression bomb) and is refused: "
                         f"{error}") from error
    except arasfsr_io.ImageError as error:
        reason = str(error).split(": ", 1)[-1]
        raise InputError(f"{quote(path.name)} is {reason}.") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise InputError(f"{quote(path.name)} is not a readable image: {error}") from error


def _is_colour16(image: Image.Image) -> bool:
    """16 bits per colour channel on file: Pillow's raw mode says so (e.g. PNG 'RGB;16B', TIFF 'RGB;16N')."""
    if image.mode not in ("RGB", "RGBA"):
        return False
    for tile in image.tile[:1]:
        args = tile.args if hasattr(tile, "args") else tile[3]
        rawmode = args[0] if isinstance(args, tuple) else args
        return isinstance(rawmode, str) and ";16" in rawmode
    return False


def _header_info(image: Image.Image) -> ImageInfo:
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
    if info.mode in GRAY16_MODES:
        notes.append("16-bit grayscale in, 16-bit grayscale PNG out")
    if info.colour16:
        notes.append("16-bit colour: the file was read as 8 bits per channel (the result is an 8-bit PNG)")
    if info.mode == "CMYK":
        notes.append("CMYK was converted to RGB")
    return notes


def display_rgb(image: Image.Image) -> Image.Image:
    """8-bit RGB for display: 16-bit scaled down, transparency shown over a checkerboard."""
    if image.mode in GRAY16_MODES:
        image = Image.fromarray((np.asarray(image, np.float64) / 257).round().clip(0, 255).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA")
        board = np.indices(image.size[::-1]).sum(0) // 8 % 2  # 8 px checks
        background = Image.fromarray(np.where(board[..., None], 200, 150).repeat(3, -1).astype(np.uint8))
        background.paste(image, mask=image.getchannel("A"))
        image = background
    return image.convert("RGB")
