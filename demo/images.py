"""Reading an upload: the server's limits around the package's one reader (`arasfsr.io`).

`arasfsr.io.read_with_info` opens the file by its magic number (`arasfsr.io.FORMATS`), checks the
header before decoding (so a small file that declares a huge image is refused first), decodes the
first frame and applies the EXIF orientation; this module adds the upload limits of `demo.limits`
(bytes, sides) and turns every refusal into an `InputError` naming the file and the reason. The
demo opens no image itself.
"""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from arasfsr import io as arasfsr_io
from arasfsr.io import ImageInfo, display_rgb, input_notes  # noqa: F401 (the demo's names for them)

from .errors import InputError, quote
from .limits import MAX_FACE_SIDE, MAX_PHOTO_SIDE, MAX_UPLOAD_BYTES, MAX_UPLOAD_MB, MIN_SIDE

# The formats an upload may be: the package's list, checked from the magic number (`arasfsr.io.FORMATS`).
IMAGE_FORMATS = tuple(arasfsr_io.FORMATS)
GRAY16_MODES = arasfsr_io.SIXTEEN_BIT_MODES


def _megabytes(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB"


def _checked_path(path) -> Path:
    """The upload's path, after the checks that need no reading: present, not empty, not too big."""
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
    return path


def _refusal(path: Path, error: Exception) -> InputError:
    """The package's one-line refusal ("PATH: reason") as a sentence about the upload."""
    reason = str(error).split(": ", 1)[-1].rstrip(".")
    joiner = " is " if reason.startswith(("not ", "empty ", "a ", "over ")) else ": "
    return InputError(f"{quote(path.name)}{joiner}{reason}.")


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
    path = _checked_path(path)
    try:
        info = arasfsr_io.probe(path)
    except arasfsr_io.ImageError as error:
        raise _refusal(path, error) from error
    _check_dimensions(info, path.name, max_side)
    return info


def load_image(path, max_side: int = MAX_FACE_SIDE) -> tuple[Image.Image, ImageInfo]:
    """The upload, read once: checked from its header, then decoded (first frame, EXIF orientation,
    a JPEG's quantisation tables kept for `arasfsr.damage`)."""
    path = _checked_path(path)
    try:
        return arasfsr_io.read_with_info(path, max_pixels=None,
                                         check=lambda info: _check_dimensions(info, path.name, max_side))
    except arasfsr_io.ImageError as error:
        raise _refusal(path, error) from error
