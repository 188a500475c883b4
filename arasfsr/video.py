"""Footage: every frame of a video through `arasfsr.restore`, with faces tracked and held steady.

    IN --PyAV demux--> packets --decode--> frame t (RGB, our own 4:2:0 conversion)
      YuNet on frame t --match to tracks (box overlap)--> smoothed landmarks   [FaceTracker]
      restore(frame t, faces = the smoothed tracks)                            [arasfsr.restore]
      each face averaged with the frames before along its motion               [TemporalFilter]
    --encode (H.264, the input's timestamps)--> OUT; the audio packets copied alongside

Three things keep a face still (measured in results/video.md):
- tracking: `restore` frames each face by its five landmarks, and YuNet's landmarks wobble by a pixel
  or two from frame to frame even on a still face. `FaceTracker` runs an alpha-beta filter on the
  landmarks and the box of each face (a position and a velocity per coordinate: the wobble is averaged
  away, steady motion is followed without lag) and keeps a face that YuNet misses for up to
  `MAX_MISSES` frames where its velocity puts it;
- `TemporalFilter`: the model's output depends on where a face falls on the pixel grid, and it
  sharpens each frame's compression noise; each face is averaged with the last frames' along its
  optical-flow motion, and taken as it is where it changes;
- colour: FFmpeg's default conversion from 4:2:0 to RGB upsamples the colour crudely, and the model
  reads the steps as texture; `_frame_rgb` and `rgb_frame` convert both ways at H.264's siting.

Nothing is held but the frame in hand (and the encoder's look-ahead): a clip of any length streams
through in bounded memory. `probe` reads the container and counts the video packets before any work, so
a file that is not a video, has no video stream, uses a codec this FFmpeg cannot decode, is truncated or
claims a duration over the limit is refused in one line. The output is written to a temporary file
next to the target and renamed at the end: a failed or stopped run leaves nothing behind.

PyAV (`pip install 'arasfsr[video]'`) brings its own FFmpeg (with libx264); no system ffmpeg is used.
"""
from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import Image

try:
    import av
except ImportError as error:  # an optional extra
    raise ImportError("arasfsr.video needs PyAV: pip install 'arasfsr[video]' (from a checkout: "
                      "pip install '.[video]')") from error

from .faces import Face
from .sizes import MAX_PHOTO_PIXELS, VIDEO_CRF, VIDEO_MAX_SECONDS, check_request
from .sizes import output_size as _output_size

MAX_SECONDS = VIDEO_MAX_SECONDS   # the command line's default limit (--max-seconds): a 10-hour header is refused
MAX_MISSES = 5               # frames a track survives without a detection (YuNet misses a face now and then)
MATCH_IOU = 0.3              # a detection continues a track when their boxes overlap at least this much
ALPHA, BETA = 0.4, 0.05      # alpha-beta filter gains (position, velocity) for landmarks and boxes: on
                             # steady motion with 1 px of landmark noise, the frame-to-frame change of the
                             # landmark error falls to 0.31x, its size to 0.55x (tests/test_video.py)
OUTPUT_MATRIX = 1            # outputs are BT.709, tagged as such (what players assume for HD)
TEMPORAL_WEIGHT = 0.35       # `TemporalFilter`: this frame's share of the faces' detail (1: off)
TEMPORAL_BASE = 0.8          # `TemporalFilter`: this frame's share of the bicubic the detail sits on (1: its own)
RULE_MEMORY = 0.8            # `TrackRule`: the running mean's weight on the frames before
RULE_MARGIN = 0.05           # `TrackRule`: a track changes its decision when that mean passes +-5 % (log ratio)
DEFAULT_CRF = VIDEO_CRF      # x264 constant rate factor: visually close to lossless
OUTPUT_SUFFIXES = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
# audio codecs the MP4 / MOV muxers take as they are; anything else is re-encoded to AAC
_COPYABLE = {"mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
             "mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_f32le"}}
_IMAGE_FORMATS = ("image2", "_pipe", "apng")   # FFmpeg's demuxers for still images
_SLACK_SECONDS = 0.5         # a stream may end this much before the header's duration (rounding, edit lists)

MAX_FACES = 12               # as arasfsr.restore.MAX_FACES (tests/test_video.py checks they agree)
ENHANCED = "enhanced"        # arasfsr.restore.ENHANCED: this module imports restore (and torch) only to work
FrameProgress = Callable[[int, int], None]   # (frames done, total frames)


# ----------------------------------------------------------------------------- the input
@dataclass(frozen=True)
class VideoInfo:
    """What `probe` found in a video file."""
    path: Path
    width: int
    height: int
    frames: int                  # video packets counted in the file (one per frame)
    seconds: float               # from the first frame to the end of the last one
    fps: Fraction                # the stream's average frame rate
    codec: str                   # video codec, e.g. "h264"
    audio: str | None            # audio codec of the first audio stream, None: no audio
    container: str               # FFmpeg's name of the container format

    @property
    def text(self) -> str:
        audio = f", {self.audio} audio" if self.audio else ", no audio"
        return (f"{self.width}x{self.height} px, {self.frames} frames, {self.seconds:.2f} s at "
                f"{float(self.fps):.3g} fps, {self.codec}{audio}")


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _open(path: Path):
    name = path.name
    if not path.exists():
        raise FileNotFoundError(f"{name}: no such file")
    if path.is_dir():
        raise ValueError(f"{name}: is a folder, not a video file")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.FFmpegError as error:
        raise ValueError(f"{name}: not a video FFmpeg can read, or one cut short ({_why(error)})") from None


def _why(error: BaseException) -> str:
    text = getattr(error, "strerror", None) or str(error)
    return text.split(":")[0].strip().rstrip(".").lower() or type(error).__name__


def probe(path: str | os.PathLike, max_seconds: float | None = MAX_SECONDS) -> VideoInfo:
    """Check a video file before any work; every refusal is one ValueError naming the file and the reason.

    Refused: not a video (or a still image), no video stream, a codec this FFmpeg cannot decode, a
    duration over `max_seconds` (by the header, or by the packets when the header says nothing), and a
    truncated file (fewer packets than the header's frame count, or packets that end before its duration).
    The video packets are counted (demuxed, not decoded: a second or so for ten minutes of video).
    """
    path = Path(path)
    name = path.name
    with _open(path) as container:
        form = container.format.name
        if any(part in form for part in _IMAGE_FORMATS):
            raise ValueError(f"{name}: is a still image ({form}), not a video; use `restore` for photos")
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams})
            raise ValueError(f"{name}: has no video stream" + (f" (only {', '.join(kinds)})" if kinds else ""))
        stream = container.streams.video[0]
        context = stream.codec_context
        if context is None or context.codec is None:
            raise ValueError(f"{name}: its video codec is unknown to this FFmpeg (no decoder for it)")
        width, height = context.width, context.height
        if width < 1 or height < 1:
            raise ValueError(f"{name}: its video stream has no frame size (a damaged header)")
        header = container.duration / 1e6 if container.duration else None  # microseconds
        if header is None and stream.duration and stream.time_base:
            header = float(stream.duration * stream.time_base)
        if max_seconds is not None and header is not None and header > max_seconds:
            raise ValueError(f"{name}: lasts {_clock(header)} by its header, over the limit of {max_seconds:g} s")
        sound = container.streams.audio[0] if container.streams.audio else None
        audio = None if sound is None else (sound.codec_context.name if sound.codec_context else "unknown")
        promised = stream.frames or 0
        fps = stream.average_rate or stream.guessed_rate or Fraction(25)
        count, first, end = 0, None, None
        try:
            for packet in container.demux(stream):
                if packet.size == 0:
                    continue
                count += 1
                if packet.pts is not None and packet.time_base is not None:
                    start = float(packet.pts * packet.time_base)
                    stop = start + float((packet.duration or 0) * packet.time_base)
                    first = start if first is None else min(first, start)
                    end = stop if end is None else max(end, stop)
                if max_seconds is not None and count > max_seconds * max(float(fps), 1.0) * 4:
                    raise ValueError(f"{name}: holds over {count} frames, more than the limit of "
                                     f"{max_seconds:g} s allows")
        except av.FFmpegError as error:
            raise ValueError(f"{name}: damaged or truncated after {count} frames ({_why(error)})") from None
    if count == 0:
        raise ValueError(f"{name}: its video stream holds no frames (empty, or truncated before the first)")
    held = (end - first) if end is not None else count / float(fps)
    if held <= 0:
        held = count / float(fps)
    if max_seconds is not None and held > max_seconds:
        raise ValueError(f"{name}: lasts {_clock(held)}, over the limit of {max_seconds:g} s")
    if promised and count < promised:
        raise ValueError(f"{name}: truncated: its header promises {promised} frames, the file holds {count}")
    if header is not None and end is not None and header - held > max(_SLACK_SECONDS, 2 / float(fps)):
        raise ValueError(f"{name}: truncated: its header says {header:.2f} s, the file holds {held:.2f} s of video")
    return VideoInfo(path, width, height, count, held, Fraction(fps), context.name, audio, form)


def output_size(info: VideoInfo, scale: float | None = None, size: tuple | None = None) -> tuple[int, int]:
    """(height, width) of the output frames: as `arasfsr.inference.output_size`, then made even.

    H.264 in 4:2:0 (what browsers and players take) needs even sides: a size from --scale, --width or
    --height is rounded down to even; an explicit odd --size is refused, naming the nearest even ones.
    """
    check_request(scale, size)
    if size is not None and all(v is not None for v in size) and (size[0] % 2 or size[1] % 2):
        h, w = size
        raise ValueError(f"H.264 video needs an even width and height, got {h}x{w}; ask for "
                         f"{h - h % 2}x{w - w % 2} or {h + h % 2}x{w + w % 2}")
    h, w = _output_size((info.height, info.width), scale, size, max_input_pixels=MAX_PHOTO_PIXELS)
    return max(2, h - h % 2), max(2, w - w % 2)


# ----------------------------------------------------------------------------- tracking
def _iou(a: np.ndarray, b: np.ndarray) -> float:
    """Overlap of two (x, y, w, h) boxes: intersection over union."""
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    """One face followed across frames: position and velocity of its 5 landmarks and box (14 numbers)."""
    ident: int
    state: np.ndarray            # (14,): 10 landmark coordinates (x, y), then the box (x, y, w, h)
    velocity: np.ndarray         # (14,) per frame
    score: float
    hits: int = 1
    misses: int = 0

    def predicted(self) -> np.ndarray:
        return self.state + self.velocity

    def face(self) -> Face:
        box = self.state[10:].copy()
        box[2:] = np.maximum(box[2:], 1.0)
        return Face(self.score, tuple(float(v) for v in box), self.state[:10].reshape(5, 2).copy())


def _vector(face: Face) -> np.ndarray:
    return np.concatenate([np.asarray(face.landmarks, np.float64).reshape(10), np.asarray(face.box, np.float64)])


@dataclass
class FaceTracker:
    """A detector for `restore` that remembers: call it with frame after frame (H, W, 3 uint8 RGB).

    Each call detects faces (`find`, default the shared YuNet), matches them to the tracks by box
    overlap (greedy, best pair first, at least `MATCH_IOU`), and updates each matched track with an
    alpha-beta filter: predicted = state + velocity; state = predicted + alpha * (seen - predicted);
    velocity += beta * (seen - predicted). A track with no detection moves on by its velocity
    (kept) for up to `max_misses` frames, then ends; a detection with no track starts one. Returns the faces
    of every live track, each at its filtered position, most confident first.

    `alpha=1, beta=0, max_misses=0` is plain per-frame detection (what `restore` does on a photo).
    """
    find: Callable[[np.ndarray], list[Face]] | None = None
    alpha: float = ALPHA
    beta: float = BETA
    max_misses: int = MAX_MISSES
    tracks: list[Track] = field(default_factory=list)
    _next: int = 1
    _returned: dict[int, tuple[Face, int]] = field(default_factory=dict)   # id(face) -> (face, track) of the last call

    def track_of(self, face: Face) -> int | None:
        """The track ident of a face this tracker returned on its last call (None for any other face)."""
        entry = self._returned.get(id(face))
        return entry[1] if entry is not None and entry[0] is face else None

    def __call__(self, rgb8: np.ndarray) -> list[Face]:
        if self.find is None:
            from .restore import detect  # torch comes with it: imported when the work starts
            self.find = detect
        found = list(self.find(rgb8))
        seen = [_vector(face) for face in found]
        pairs = sorted(((_iou(t.predicted()[10:], s[10:]), i, j) for i, t in enumerate(self.tracks)
                        for j, s in enumerate(seen)), reverse=True)
        used_tracks, used_faces = set(), set()
        for overlap, i, j in pairs:
            if overlap < MATCH_IOU:
                break
            if i in used_tracks or j in used_faces:
                continue
            used_tracks.add(i)
            used_faces.add(j)
            track = self.tracks[i]
            predicted = track.predicted()
            residual = seen[j] - predicted
            track.state = predicted + self.alpha * residual
            track.velocity = track.velocity + self.beta * residual
            track.score, track.hits, track.misses = float(found[j].score), track.hits + 1, 0
        alive = []
        for i, track in enumerate(self.tracks):
            if i not in used_tracks:
                track.misses += 1
                if track.misses > self.max_misses:
                    continue
                track.state = track.predicted()          # coast at its velocity
            alive.append(track)
        for j, vector in enumerate(seen):
            if j not in used_faces:
                alive.append(Track(self._next, vector.copy(), np.zeros_like(vector), float(found[j].score)))
                self._next += 1
        self.tracks = alive
        returned = [(t.face(), t.ident) for t in sorted(alive, key=lambda t: -t.score)]
        self._returned = {id(face): (face, ident) for face, ident in returned}
        return [face for face, _ in returned]


@dataclass
class TrackRule:
    """`restore`'s sharpness rule per track, not per frame (its `judge`).

    On a photo a face whose result is softer than bicubic (Laplacian variance on its box) stays
    bicubic. Frame by frame, a face near the line flips between the two, which shows as flicker (at
    crf 32, 6 of 96 face frames of results/video.md's clip were kept bicubic, scattered). Here each
    track keeps a running mean of log(sharp / soft) (`memory` on the frames before) and changes its
    decision only when that mean passes the other side of +-`margin`; a new track starts with its
    first frame's rule. So a face is drawn by one method for as long as it is clearly on one side.
    """
    tracker: FaceTracker
    memory: float = RULE_MEMORY
    margin: float = RULE_MARGIN
    _state: dict[int, tuple[float, bool]] = field(default_factory=dict)   # track -> (running mean, keep)

    def __call__(self, face: Face, sharp: float, soft: float) -> bool:
        import math
        ratio = math.log(max(sharp, 1e-12) / max(soft, 1e-12))
        ident = self.tracker.track_of(face)
        if ident is None:  # not one of the tracker's faces: the per-frame rule
            return sharp >= soft
        live = {t.ident for t in self.tracker.tracks}
        self._state = {k: v for k, v in self._state.items() if k in live}
        if ident not in self._state:
            self._state[ident] = (ratio, ratio >= 0)
            return ratio >= 0
        mean, keep = self._state[ident]
        mean = self.memory * mean + (1 - self.memory) * ratio
        keep = mean > -self.margin if keep else mean > self.margin
        self._state[ident] = (mean, keep)
        return keep


# ----------------------------------------------------------------------------- temporal filter
@dataclass
class TemporalFilter:
    """Steadies the faces from frame to frame, along their motion.

    The model's detail (its output minus bicubic) depends on where a face falls on the pixel grid, and
    the model sharpens the compression noise of each frame, so a moving face shimmers even when its crop
    follows it smoothly. Each frame, on each face's box, the motion back to the last frame is measured by
    optical flow (Farneback) between the two bicubic frames (one shift per face: the flow's median on the
    box's centre), last frame's filtered face is carried along it, and the two are mixed:
        face = weight * new + (1 - weight) * carried,
    an exponential average along each point's path, feathered to nothing at the box's edge. By default
    the model's detail over bicubic is filtered with `weight`, and the bicubic face it sits on with
    `base` (0.8: a light average of the input's own compression noise, which moves with the face;
    results/video.md, "The bicubic base"); base 1 keeps this frame's bicubic as it is, so the face
    itself is always this frame's. `colour` filters the face's colours with `weight` (base = weight),
    which averages the input's noise more (steadier than bicubic on a face that only moves) but lags
    behind a face whose look changes (an expression, a turn, the light: -0.7 dB on results/video.md's
    "changing" clip), so it is not the default. Where the carried frame disagrees with this one
    (bicubic colours differ by more than `mismatch` after the motion: a blink, an occlusion) or last
    frame had no face there, the new face is taken as it is, and on the whole box when that is most of
    it (a cut, or another face). weight 1 turns the filter off.
    """
    weight: float = 0.35
    mismatch: float = 0.06                         # 0-1 units of luma
    colour: bool = False
    base: float = TEMPORAL_BASE                    # this frame's share of the bicubic base (1: its own; colour: weight)
    _signal: np.ndarray | None = None              # last frame's filtered detail and base, (H, W, 6)
    _mask: np.ndarray | None = None                # where it holds a face, (H, W)
    _luma: np.ndarray | None = None                # last frame's bicubic luma, (H, W)

    def __call__(self, bicubic: np.ndarray, result: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
        """bicubic, result: (H, W, 3) float32 in [0, 1]; boxes: (y0, x0, y1, x1) output boxes around each
        enhanced face. Returns the filtered result (`result` itself when nothing is filtered)."""
        import cv2
        luma = cv2.cvtColor(np.ascontiguousarray(bicubic), cv2.COLOR_RGB2GRAY)
        base_weight = self.weight if self.colour else self.base
        signal = np.concatenate([result - bicubic, bicubic], axis=2)  # the model's detail, and what it sits on
        mask = np.zeros(luma.shape, np.float32)
        out = result
        for y0, x0, y1, x1 in boxes:
            mask[y0:y1, x0:x1] = 1
            if self.weight >= 1 or self._luma is None or self._luma.shape != luma.shape:
                continue
            here = luma[y0:y1, x0:x1]
            flow = cv2.calcOpticalFlowFarneback(np.uint8(np.clip(here * 255, 0, 255)),
                                                np.uint8(np.clip(self._luma[y0:y1, x0:x1] * 255, 0, 255)), None,
                                                0.5, 3, 15, 3, 5, 1.2, 0)
            h, w = flow.shape[:2]
            dx, dy = np.median(flow[h // 4:h - h // 4, w // 4:w - w // 4].reshape(-1, 2), axis=0)
            gy, gx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
            map_x, map_y = gx + dx, gy + dy                # where each pixel was in the last frame
            carried = cv2.remap(self._signal, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            had = cv2.remap(self._mask, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
            was = cv2.remap(self._luma, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            trust = had * (np.abs(was - here) <= self.mismatch)
            if trust.mean() < 0.5:   # most of the face disagrees: a cut, or a face that is not this one
                continue
            shares = np.repeat(np.float32([1 - self.weight, 1 - base_weight]), 3)  # per channel: detail, base
            mix = (trust * _window(h, w))[..., None] * shares
            if out is result:
                out = result.copy()
            blended = (1 - mix) * signal[y0:y1, x0:x1] + mix * carried
            signal[y0:y1, x0:x1] = blended
            out[y0:y1, x0:x1] = np.clip(blended[..., :3] + blended[..., 3:], 0, 1)
        self._signal, self._mask, self._luma = np.ascontiguousarray(signal, np.float32), mask, luma
        return out


def _window(h: int, w: int, edge: float = 0.1) -> np.ndarray:
    """(h, w) weights: 1 inside, a smoothstep down to 0 over the outer `edge` of each side (no seam)."""
    def ramp(n: int) -> np.ndarray:
        fraction = (np.arange(n) + 0.5) / n
        r = np.clip(np.minimum(fraction, 1 - fraction) / edge, 0, 1)
        return r * r * (3 - 2 * r)
    return np.outer(ramp(h), ramp(w)).astype(np.float32)


def face_boxes(reports: list, factor: tuple[float, float], out_size: tuple[int, int],
               margin: int = 8) -> list[tuple[int, int, int, int]]:
    """(y0, x0, y1, x1) output boxes around each enhanced face's crop: its side about the detection's centre,
    plus `margin` px, clipped to the frame."""
    boxes = []
    for report in reports:
        if report.status != ENHANCED:
            continue
        x, y, w, h = report.box
        cy, cx = (y + h / 2) * factor[0], (x + w / 2) * factor[1]
        half_y, half_x = report.side * factor[0] / 2 + margin, report.side * factor[1] / 2 + margin
        y0, x0 = max(0, int(cy - half_y)), max(0, int(cx - half_x))
        y1, x1 = min(out_size[0], int(np.ceil(cy + half_y))), min(out_size[1], int(np.ceil(cx + half_x)))
        if y1 - y0 >= 8 and x1 - x0 >= 8:
            boxes.append((y0, x0, y1, x1))
    return boxes


# ----------------------------------------------------------------------------- the output
def check_output(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """The output path, refused before any work when its suffix is not a video container we write,
    its folder does not exist, or it exists and `overwrite` is off."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise ValueError(f"{path.name}: the output must end in {', '.join(OUTPUT_SUFFIXES)} (H.264 video)")
    if path.is_dir():
        raise ValueError(f"{path}: is a folder; give the output file's name")
    if not path.parent.is_dir():
        raise ValueError(f"{path.parent}: no such folder for the output")
    if path.exists() and not overwrite:
        raise ValueError(f"{path.name} exists: pass --overwrite to replace it")
    return path


@dataclass
class VideoReport:
    """What `restore_video` did."""
    frames: int
    seconds: float               # wall time
    size: tuple[int, int]        # output (height, width)
    faces_enhanced: int          # face renders that made it into frames (summed over frames)
    faces_kept: int              # faces found but left to the background (summed over frames)
    frames_with_faces: int
    tracks: int                  # distinct faces followed over the clip
    audio: str                   # "copied (aac)", "re-encoded to AAC (pcm_s16le)" or "none"
    reasons: dict[str, int] = field(default_factory=dict)  # why faces were kept, first words -> frames

    @property
    def text(self) -> str:
        kept = "; ".join(f"{why}: {n}" for why, n in self.reasons.items())
        return (f"{self.frames} frames to {self.size[1]}x{self.size[0]} px in {self.seconds:.1f} s "
                f"({self.frames / max(self.seconds, 1e-9):.2f} frames/s); {self.tracks} face track(s), faces "
                f"super-resolved in {self.frames_with_faces} frames ({self.faces_enhanced} face renders)"
                + (f", {self.faces_kept} left to the background ({kept})" if self.faces_kept else "")
                + f"; audio {self.audio}")


def _audio_plan(container_format: str, stream) -> str:
    """"copy" when the output container takes the input's audio codec as it is, else "aac"."""
    name = stream.codec_context.name if stream.codec_context else ""
    if container_format == "matroska" or name in _COPYABLE.get(container_format, set()):
        return "copy"
    return "aac"


def restore_video(model, source: str | os.PathLike, target: str | os.PathLike, scale: float | None = None,
                  size: tuple | None = None, *, background=None, ensemble: bool = True,
                  max_faces: int = MAX_FACES, device="auto", chunk_size=None, crf: int = DEFAULT_CRF,
                  max_seconds: float | None = MAX_SECONDS, tracker: FaceTracker | None = None,
                  temporal: float = TEMPORAL_WEIGHT, temporal_colour: bool = False,
                  temporal_base: float = TEMPORAL_BASE, per_track_rule: bool = True, detail: float = 1.0,
                  overwrite: bool = False, progress: FrameProgress | None = None,
                  info: VideoInfo | None = None) -> VideoReport:
    """Upscale every frame of `source` into `target` (H.264), faces by `model`, the rest by `background`.

    Args:
        model, background, ensemble, max_faces, device, chunk_size: as `arasfsr.restore.restore`,
            applied to each frame ("bicubic" as the model: faces found, nothing super-resolved).
        scale / size: as `restore` (exactly one); the output is made even (`output_size`).
        crf: x264 quality, 0 (lossless) to 51; 18 is visually close to lossless.
        max_seconds: refuse longer clips (None: no limit).
        tracker: a `FaceTracker` (default: a new one with the shared YuNet).
        temporal: each frame's own share of its faces, the rest carried along their motion from the
            frames before (`TemporalFilter`); 1: every frame on its own. temporal_colour: filter
            the faces' colours, not only the model's detail over bicubic (default): steadier on rigid motion,
            but it lags behind a face whose appearance changes (results/video.md).
        temporal_base: each frame's own share of the bicubic face under the detail (0.8; 1: its own).
        per_track_rule: the sharpness rule decides per track (`TrackRule`), not per frame.
        detail: as `restore`'s (the share of the faces' detail kept).
        progress: called with (frames done, total frames) after each frame; it may raise to stop
            the run (nothing is written then).
        info: `probe(source)` when the caller has it already.
    Every frame is kept with its timestamp (variable frame rates stay as they were); the first audio
    stream is copied (re-encoded to AAC when the output container cannot hold its codec). The output
    appears only when the whole clip is done: it is written to a temporary file beside `target` first.
    """
    from . import restore as _restore
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be 0 to 51, got {crf}")
    source, target = Path(source), check_output(target, overwrite)
    if source.resolve() == target.resolve():
        raise ValueError(f"{target.name}: the output would overwrite the input")
    info = probe(source, max_seconds) if info is None else info
    out_h, out_w = output_size(info, scale, size)
    tracker = FaceTracker() if tracker is None else tracker
    steady = TemporalFilter(temporal, colour=temporal_colour, base=temporal_base)
    judge = TrackRule(tracker) if per_track_rule else None
    form = OUTPUT_SUFFIXES[target.suffix.lower()]
    handle, partial = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".partial{target.suffix}", dir=target.parent)
    os.close(handle)
    started = time.perf_counter()
    report = VideoReport(0, 0.0, (out_h, out_w), 0, 0, 0, 0, "none")
    try:
        with _open(source) as inp, av.open(partial, "w", format=form) as out:
            vin = inp.streams.video[0]
            vin.thread_type = "AUTO"
            vout = out.add_stream("libx264", rate=info.fps)
            vout.width, vout.height, vout.pix_fmt = out_w, out_h, "yuv420p"
            vout.time_base = vin.time_base
            vout.codec_context.time_base = vin.time_base
            vout.options = {"crf": str(crf), "preset": "medium"}
            _tag(vout, OUTPUT_MATRIX)
            ain = inp.streams.audio[0] if inp.streams.audio else None
            aout, plan, resampler = None, None, None
            if ain is not None:
                plan = _audio_plan(form, ain)
                if plan == "copy":
                    aout = out.add_stream_from_template(ain)
                    report.audio = f"copied ({ain.codec_context.name})"
                else:
                    rate = ain.codec_context.sample_rate or 48000
                    aout = out.add_stream("aac", rate=rate)
                    aout.layout = "stereo" if (ain.codec_context.channels or 2) >= 2 else "mono"
                    resampler = av.AudioResampler(format="fltp", layout=aout.layout.name, rate=rate)
                    report.audio = f"re-encoded to AAC ({ain.codec_context.name})"
            streams = [vin] + ([ain] if ain is not None else [])
            tracks = set()
            index = 0
            for packet in inp.demux(*streams):
                if packet.stream is ain:
                    _audio_packet(packet, plan, aout, resampler, out)
                    continue
                for frame in _decode(packet, source.name, index):
                    image = _frame_rgb(frame)
                    bicubic = _restore.bicubic_background(Image.fromarray(image), (out_h, out_w))
                    result, faces = _restore.restore(model, image, size=(out_h, out_w), detector=tracker,
                                                     max_faces=max_faces, device=device, chunk_size=chunk_size,
                                                     background=background, ensemble=ensemble, bicubic=bicubic,
                                                     judge=judge, detail=detail)
                    _count(report, faces)
                    tracks.update(t.ident for t in tracker.tracks)
                    rgb = np.asarray(result.convert("RGB"))
                    if steady.weight < 1:
                        boxes = face_boxes(faces, (out_h / info.height, out_w / info.width), (out_h, out_w))
                        rgb = np.rint(steady(bicubic[0], rgb.astype(np.float32) / 255, boxes) * 255).astype(np.uint8)
                    encoded = rgb_frame(rgb, OUTPUT_MATRIX)
                    encoded.pts = frame.pts if frame.pts is not None else index
                    encoded.time_base = vin.time_base
                    for piece in vout.encode(encoded):
                        out.mux(piece)
                    index += 1
                    if progress is not None:
                        progress(index, info.frames)
            for piece in vout.encode():
                out.mux(piece)
            if resampler is not None:
                for piece in aout.encode():
                    out.mux(piece)
            report.tracks = len(tracks)
        if index == 0:
            raise ValueError(f"{source.name}: no frame could be decoded")
        if target.exists() and not overwrite:  # it appeared during the run: keep it
            raise ValueError(f"{target.name} appeared while the video was made; nothing replaced (use --overwrite)")
        _readable(partial)
        os.replace(partial, target)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise
    report.frames = index
    report.seconds = time.perf_counter() - started
    return report


def _readable(path: str) -> None:
    """Give the finished file the permissions a new file gets (mkstemp makes it private to its owner)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _decode(packet, name: str, index: int):
    try:
        return packet.decode()
    except av.FFmpegError as error:
        raise ValueError(f"{name}: damaged at frame {index + 1} ({_why(error)})") from None


# Colour matrices (Kr, Kb) by the stream's matrix tag: H.264 codes 1 = BT.709, 5 and 6 = BT.601; an untagged
# stream is read as BT.709 from 720 lines up and BT.601 below (what players do).
_MATRICES = {1: (0.2126, 0.0722), 5: (0.299, 0.114), 6: (0.299, 0.114), 9: (0.2627, 0.0593)}


def _matrix(colorspace: int | None, height: int) -> tuple[float, float]:
    return _MATRICES.get(colorspace or 0, _MATRICES[1] if height >= 720 else _MATRICES[5])


def _frame_rgb(frame) -> np.ndarray:
    """An (H, W, 3) uint8 RGB frame, turned upright when the stream says it is shown rotated.

    8-bit 4:2:0 frames (nearly every camera and codec) are converted here rather than by swscale,
    whose default path upsamples the half-resolution colour crudely: the model reads that as texture
    (on the test clip of benchmarks/bench_video.py, +2.33 dB over bicubic with swscale's RGB and +3.15
    with this one, for the same frames). The colour planes are upsampled bilinearly at H.264's default
    siting (co-sited with the even luma columns, centred between rows), then the stream's matrix and
    range give RGB. Other pixel formats go through swscale.
    """
    if frame.format.name in ("yuv420p", "yuvj420p") and frame.width % 2 == 0 and frame.height % 2 == 0:
        rgb = _yuv420_to_rgb(frame)
    else:
        rgb = frame.to_ndarray(format="rgb24")
    turns = round((getattr(frame, "rotation", 0) or 0) / 90) % 4
    return np.ascontiguousarray(np.rot90(rgb, turns)) if turns else rgb


def _yuv420_to_rgb(frame) -> np.ndarray:
    import cv2
    h, w = frame.height, frame.width
    planes = frame.to_ndarray()                       # (1.5 h, w): Y, then U and V at (h/2, w/2) each
    y = planes[:h].astype(np.float32)
    u = planes[h:h + h // 4].reshape(h // 2, w // 2).astype(np.float32)
    v = planes[h + h // 4:].reshape(h // 2, w // 2).astype(np.float32)
    cols = np.arange(w, dtype=np.float32) / 2                   # luma column x sits on chroma column x / 2
    rows = (np.arange(h, dtype=np.float32) + 0.5) / 2 - 0.5     # luma row y: between chroma rows
    map_x, map_y = np.meshgrid(cols, rows)
    u = cv2.remap(u, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    v = cv2.remap(v, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    full = frame.format.name == "yuvj420p" or int(getattr(frame, "color_range", 0) or 0) == 2
    if full:
        luma, cb, cr = y / 255, (u - 128) / 255, (v - 128) / 255
    else:
        luma, cb, cr = (y - 16) / 219, (u - 128) / 224, (v - 128) / 224
    kr, kb = _matrix(int(getattr(frame, "colorspace", 0) or 0), h)
    kg = 1 - kr - kb
    r = luma + 2 * (1 - kr) * cr
    b = luma + 2 * (1 - kb) * cb
    g = (luma - kr * r - kb * b) / kg
    return np.clip(np.rint(np.stack([r, g, b], -1) * 255), 0, 255).astype(np.uint8)


def rgb_frame(rgb: np.ndarray, colorspace: int = 1) -> "av.VideoFrame":
    """An (H, W, 3) uint8 RGB array (even sides) as a limited-range 4:2:0 frame in the given matrix
    (1 = BT.709, 5 = BT.601), the inverse of `_frame_rgb`: each colour sample is the [1, 2, 1] / 4 mean
    across its column and its neighbours', averaged over its two rows (H.264's default siting)."""
    import cv2
    kr, kb = _MATRICES[colorspace]
    x = rgb.astype(np.float32) / 255
    luma = kr * x[..., 0] + (1 - kr - kb) * x[..., 1] + kb * x[..., 2]
    cb = (x[..., 2] - luma) / (2 * (1 - kb))
    cr = (x[..., 0] - luma) / (2 * (1 - kr))

    def half(plane: np.ndarray) -> np.ndarray:
        plane = cv2.filter2D(plane, -1, np.float32([[0.25, 0.5, 0.25]]), borderType=cv2.BORDER_REPLICATE)
        return (plane[0::2, 0::2] + plane[1::2, 0::2]) / 2

    y8 = np.clip(np.rint(16 + 219 * luma), 0, 255).astype(np.uint8)
    u8 = np.clip(np.rint(128 + 224 * half(cb)), 0, 255).astype(np.uint8)
    v8 = np.clip(np.rint(128 + 224 * half(cr)), 0, 255).astype(np.uint8)
    h, w = y8.shape
    frame = av.VideoFrame.from_ndarray(np.concatenate([y8, u8.reshape(-1, w), v8.reshape(-1, w)]), format="yuv420p")
    frame.colorspace, frame.color_range = colorspace, 1
    return frame


def _tag(stream, colorspace: int) -> None:
    """Write the matrix, primaries and transfer (BT.709 or BT.601) and limited range into the stream."""
    context = stream.codec_context
    context.colorspace, context.color_range = colorspace, 1
    context.color_primaries = 1 if colorspace == 1 else 6
    context.color_trc = 1 if colorspace == 1 else 6


def _audio_packet(packet, plan, aout, resampler, out) -> None:
    if packet.dts is None and packet.size == 0:
        return
    if plan == "copy":
        packet.stream = aout
        out.mux(packet)
        return
    for frame in packet.decode():
        for piece in resampler.resample(frame):
            for encoded in aout.encode(piece):
                out.mux(encoded)


def _count(report: VideoReport, faces: list) -> None:
    enhanced = sum(f.status == ENHANCED for f in faces)
    report.faces_enhanced += enhanced
    report.faces_kept += len(faces) - enhanced
    report.frames_with_faces += enhanced > 0
    for f in faces:
        if f.status != ENHANCED:
            why = f.reason.split(":")[0]
            report.reasons[why] = report.reasons.get(why, 0) + 1


def frames_of(path: str | os.PathLike, limit: int | None = None):
    """Decode a video's frames as (H, W, 3) uint8 RGB arrays, one at a time (for measurements and tests)."""
    with _open(Path(path)) as container:
        for k, frame in enumerate(container.decode(video=0)):
            if limit is not None and k >= limit:
                return
            yield _frame_rgb(frame)


def write_frames(path: str | os.PathLike, frames, fps: float | Fraction = 25, crf: int = DEFAULT_CRF) -> Path:
    """Encode (H, W, 3) uint8 RGB frames (even sides) as an H.264 video, e.g. a test clip."""
    path = Path(path)
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", format=OUTPUT_SUFFIXES.get(path.suffix.lower())) as out:
        stream = None
        for k, rgb in enumerate(frames):
            if stream is None:
                stream = out.add_stream("libx264", rate=rate)
                stream.height, stream.width = rgb.shape[:2]
                stream.pix_fmt, stream.options = "yuv420p", {"crf": str(crf)}
                _tag(stream, OUTPUT_MATRIX)
            frame = rgb_frame(np.ascontiguousarray(rgb), OUTPUT_MATRIX)
            frame.pts = k
            for packet in stream.encode(frame):
                out.mux(packet)
        if stream is not None:
            for packet in stream.encode():
                out.mux(packet)
    return path


__all__ = ["FaceTracker", "VideoInfo", "VideoReport", "probe", "output_size", "restore_video", "check_output",
           "frames_of", "write_frames", "MAX_SECONDS"]
