"""`arasfsr.video` and `python -m arasfsr video`: frames, timing and audio kept, faces tracked, bad input refused.

Clips are made here with PyAV (a few frames, tens of pixels), so the tests need no data set. The
faces are the public-domain example portraits (as in tests/test_restore.py), pasted on a smooth background.
"""
from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest

av = pytest.importorskip("av")

from _demo_support import one_thread  # noqa: E402
from test_restore import aligned_face, background, known_face, model  # noqa: E402, F401

from arasfsr import cli, video  # noqa: E402
from arasfsr import restore as restore_module  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def threads():
    with one_thread():
        yield


def stripes(t: int, height: int = 48, width: int = 64) -> np.ndarray:
    frame = background(height, width)
    frame[:, (3 * t) % width:(3 * t) % width + 6] = (230, 40, 40)
    return frame


def write_clip(path, frames=10, fps=25, size=(48, 64), audio: str | None = None, faststart=False,
               frame_fn=stripes, pts=None):
    """An H.264 clip; audio: None, "aac" or "pcm_s16le" (a 440 Hz tone as long as the video)."""
    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), "w", options=options) as out:
        stream = out.add_stream("libx264", rate=fps)
        stream.height, stream.width, stream.pix_fmt = size[0], size[1], "yuv420p"
        sound = None
        if audio:
            sound = out.add_stream(audio, rate=16000)
            sound.layout = "mono"
        for k in range(frames):
            frame = av.VideoFrame.from_ndarray(frame_fn(k, *size), format="rgb24")
            frame.pts = k if pts is None else pts[k]
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if sound is not None:
            samples = int(16000 * frames / fps)
            tone = 0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / 16000)
            fmt = "fltp" if audio == "aac" else "s16"
            block = 1024 if audio == "aac" else 800
            for start in range(0, samples, block):
                chunk = tone[start:start + block]
                data = chunk.astype(np.float32)[None] if fmt == "fltp" else (chunk * 32767).astype(np.int16)[None]
                piece = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
                piece.sample_rate, piece.pts = 16000, start
                for packet in sound.encode(piece):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
    return path


def read_back(path):
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        pts = [frame.pts for frame in container.decode(video=0)]
        audio = [s.codec_context.name for s in container.streams.audio]
        return dict(pts=pts, rate=stream.average_rate, size=(stream.height, stream.width), audio=audio,
                    time_base=stream.time_base)


# ----------------------------------------------------------------------------- what is kept
def test_every_frame_its_timestamp_the_rate_and_the_audio_are_kept(tmp_path):
    source = write_clip(tmp_path / "in.mp4", frames=12, fps=25, audio="aac")
    report = video.restore_video("bicubic", source, tmp_path / "out.mp4", scale=2)
    before, after = read_back(source), read_back(tmp_path / "out.mp4")
    assert report.frames == 12 and len(after["pts"]) == 12
    assert [p * before["time_base"] for p in before["pts"]] == [p * after["time_base"] for p in after["pts"]]
    assert after["rate"] == Fraction(25) and after["size"] == (96, 128)
    assert after["audio"] == ["aac"] and report.audio == "copied (aac)"
    mask = os.umask(0)
    os.umask(mask)
    assert (tmp_path / "out.mp4").stat().st_mode & 0o777 == 0o666 & ~mask   # not the temporary file's 0600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "out.mp4"]


def test_variable_frame_rate_keeps_its_uneven_timestamps(tmp_path):
    pts = [0, 1, 2, 5, 6, 9, 10, 11]  # frames held for 1, 1, 3, 1, 3, 1, 1 ticks
    source = write_clip(tmp_path / "vfr.mp4", frames=len(pts), pts=pts)
    video.restore_video("bicubic", source, tmp_path / "out.mp4", scale=1.5)
    before, after = read_back(source), read_back(tmp_path / "out.mp4")
    assert [p * before["time_base"] for p in before["pts"]] == [p * after["time_base"] for p in after["pts"]]


def test_audio_the_container_cannot_hold_is_re_encoded_to_aac(tmp_path):
    source = write_clip(tmp_path / "in.mkv", frames=8, audio="pcm_s16le")
    report = video.restore_video("bicubic", source, tmp_path / "out.mp4", scale=1)
    assert read_back(tmp_path / "out.mp4")["audio"] == ["aac"]
    assert report.audio == "re-encoded to AAC (pcm_s16le)"
    video.restore_video("bicubic", source, tmp_path / "out.mkv", scale=1)  # Matroska takes PCM as it is
    assert read_back(tmp_path / "out.mkv")["audio"] == ["pcm_s16le"]


def test_constants_agree_with_restore():
    assert video.MAX_FACES == restore_module.MAX_FACES and video.ENHANCED == restore_module.ENHANCED


def test_output_sides_are_made_even_and_an_odd_size_is_refused(tmp_path):
    source = write_clip(tmp_path / "in.mp4", frames=2)
    info = video.probe(source)
    assert video.output_size(info, scale=1.5) == (72, 96)
    assert video.output_size(info, scale=1.1) == (52, 70)   # 52.8 -> 53 -> 52, 70.4 -> 70
    with pytest.raises(ValueError, match="even width and height.*100x100 or 102x100"):
        video.output_size(info, size=(101, 100))


def test_colour_round_trip_is_closer_than_swscale(tmp_path):
    """Our 4:2:0 conversion in both directions loses less than FFmpeg's default RGB path: the model reads
    swscale's colour steps as texture (benchmarks/bench_video.py)."""
    rgb = moving_face(0)  # a face on a smooth background
    ours = video._frame_rgb(video.rgb_frame(rgb))
    theirs = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p").to_ndarray(format="rgb24")
    error_ours = np.abs(ours.astype(int) - rgb).mean()
    error_theirs = np.abs(theirs.astype(int) - rgb).mean()
    assert error_ours < 0.8 * error_theirs, (error_ours, error_theirs)
    # and a clip written by write_frames reads back by frames_of within a few levels
    path = video.write_frames(tmp_path / "c.mp4", [rgb] * 3, crf=0)
    back = list(video.frames_of(path))
    assert len(back) == 3 and np.abs(back[1].astype(int) - rgb).mean() < 2.0


# ----------------------------------------------------------------------------- tracking
def test_a_track_survives_missed_frames_and_smooths_jitter():
    rng = np.random.default_rng(1)
    truth = [known_face(20, 10 + 2 * t, 60) for t in range(60)]
    missing = {12, 13, 25}
    noisy = []
    for t, face in enumerate(truth):
        jitter = rng.normal(0, 1.0, (5, 2))
        noisy.append(None if t in missing else restore_module.faces.Face(
            face.score, face.box, face.landmarks + jitter))
    feed = iter(noisy)
    tracker = video.FaceTracker(find=lambda rgb: [] if (f := next(feed)) is None else [f])
    frame = np.zeros((8, 8, 3), np.uint8)
    seen = [tracker(frame) for _ in truth]
    assert all(len(faces) == 1 for faces in seen), "a face missed for a frame or two keeps its track"
    assert len({t.ident for t in tracker.tracks}) == 1 and tracker._next == 2
    settled = range(40, 60)  # well after the last miss
    raw = np.array([noisy[t].landmarks - truth[t].landmarks for t in settled])
    smooth = np.array([seen[t][0].landmarks - truth[t].landmarks for t in settled])
    assert np.abs(smooth).mean() < 0.75 * np.abs(raw).mean()
    # what makes a face shimmer is the change from frame to frame: far smaller than YuNet's own
    assert np.abs(np.diff(smooth, axis=0)).mean() < 0.5 * np.abs(np.diff(raw, axis=0)).mean()
    # steady motion is followed without lag: the filtered centre moves 2 px a frame like the face
    assert abs(np.diff([seen[t][0].landmarks[:, 0].mean() for t in range(40, 60)]).mean() - 2) < 0.3


def test_a_lost_track_ends_and_a_far_detection_starts_a_new_one():
    faces_by_frame = [[known_face(20, 10, 60)]] * 3 + [[]] * (video.MAX_MISSES + 1) + [[known_face(20, 150, 60)]]
    feed = iter(faces_by_frame)
    tracker = video.FaceTracker(find=lambda rgb: next(feed))
    out = [tracker(np.zeros((8, 8, 3), np.uint8)) for _ in faces_by_frame]
    assert [len(o) for o in out] == [1] * (3 + video.MAX_MISSES) + [0, 1]
    assert [t.ident for t in tracker.tracks] == [2]


def test_per_frame_settings_are_plain_detection():
    faces = [known_face(20, 10, 60), known_face(21, 13, 60)]
    feed = iter([[faces[0]], [faces[1]], []])
    tracker = video.FaceTracker(find=lambda rgb: next(feed), alpha=1.0, beta=0.0, max_misses=0)
    got = [tracker(np.zeros((8, 8, 3), np.uint8)) for _ in range(3)]
    np.testing.assert_allclose(got[1][0].landmarks, faces[1].landmarks)
    assert got[2] == []


def test_the_sharpness_rule_decides_per_track_and_does_not_flicker():
    """A face whose result is on average sharper than bicubic but near the line: the per-frame rule
    flips between model and bicubic, the track's rule keeps the model; a face clearly softer than
    bicubic from some frame on changes once."""
    rng = np.random.default_rng(0)
    feed = iter([[known_face(20, 10, 60), known_face(20, 150, 60)]] * 80)
    tracker = video.FaceTracker(find=lambda rgb: next(feed))
    rule = video.TrackRule(tracker)
    near, drops = [], []
    for t in range(80):
        near_face, dropping_face = sorted(tracker(np.zeros((8, 8, 3), np.uint8)), key=lambda f: f.box[0])
        soft = 100.0
        near_sharp = soft * np.exp(0.04 + rng.normal(0, 0.05))  # 4 % sharper on average, 5 % noise
        dropping_sharp = soft * (1.2 if t < 40 else 0.7) * np.exp(rng.normal(0, 0.05))
        near.append((near_sharp >= soft, rule(near_face, near_sharp, soft)))
        drops.append(rule(dropping_face, dropping_sharp, soft))
    per_frame, per_track = np.array(near).T
    assert np.sum(per_frame[1:] != per_frame[:-1]) >= 10  # the per-frame rule flickers
    assert per_track.all()
    assert all(drops[:40]) and not any(drops[45:]) and np.sum(np.diff(np.array(drops, int)) != 0) == 1
    other = known_face(20, 10, 60)  # a face the tracker did not return: the plain rule
    assert rule(other, 99.0, 100.0) is False and rule(other, 101.0, 100.0) is True


def test_restore_asks_the_judge_about_each_face(model, tmp_path):  # noqa: F811
    frame = background(120, 200)
    frame[20:84, 40:104] = aligned_face(64)
    found = [known_face(20, 40, 64)]
    asked = []

    def refuse(face, sharp, soft):
        asked.append((face, sharp, soft))
        return False
    _, reports = restore_module.restore(model, frame, scale=2, detector=lambda rgb: found, judge=refuse,
                                        ensemble=False)
    assert [f for f, *_ in asked] == found[:len(asked)] and asked
    assert all(r.status != restore_module.ENHANCED for r in reports)


def texture(shift: int, size: int = 96, seed: int = 0) -> np.ndarray:
    """A smooth random (size, size, 3) float image, moved right by `shift` px."""
    import cv2
    rng = np.random.default_rng(seed)
    base = cv2.GaussianBlur(rng.random((size, size + 16, 3)).astype(np.float32), (0, 0), 3)
    base = (base - base.min()) / (base.max() - base.min())
    return np.ascontiguousarray(base[:, 16 - shift:16 - shift + size])


def test_the_temporal_filter_follows_the_motion_and_averages_what_does_not_move_with_it():
    rng = np.random.default_rng(0)
    box = [(8, 8, 88, 88)]
    pattern = (rng.random((96, 112, 3)).astype(np.float32) - 0.5) * 0.1   # detail fixed to the content
    steady = video.TemporalFilter(weight=0.35)
    off = video.TemporalFilter(weight=1.0)
    kept, noisy_in, noisy_out = [], [], []
    for t in range(8):
        bicubic = texture(2 * t)
        moving = np.ascontiguousarray(pattern[:, 16 - 2 * t:16 - 2 * t + 96])  # moves with the face
        result = bicubic + moving
        assert off(bicubic, result, box) is result                              # weight 1: untouched
        out = steady(bicubic, result, box)
        if t >= 2:  # detail that moves with the face is carried along and stays as it was
            kept.append(np.abs((out - bicubic) - moving)[16:80, 16:80].mean() / np.abs(moving).mean())
    assert max(kept) < 0.35, kept
    steady = video.TemporalFilter(weight=0.35)
    for t in range(8):  # detail that changes from frame to frame (the shimmer) is averaged down
        bicubic = texture(2 * t)
        noise = (rng.random((96, 96, 3)).astype(np.float32) - 0.5) * 0.1
        out = steady(bicubic, bicubic + noise, box)
        if t >= 3:
            noisy_in.append(np.abs(noise[16:80, 16:80]).mean())
            noisy_out.append(np.abs((out - bicubic)[16:80, 16:80]).mean())
    assert np.mean(noisy_out) < 0.75 * np.mean(noisy_in)
    # where the face changes (a blink, a mouth), the new frame as it is; the rest still carried
    steady = video.TemporalFilter(weight=0.35)
    for t in range(3):
        bicubic = texture(2 * t)
        changed = bicubic.copy()
        if t == 2:
            changed[40:56, 40:56] = np.clip(changed[40:56, 40:56] + 0.3, 0, 1)
        out = steady(changed, changed + (0 if t < 2 else 0.02), box)
    np.testing.assert_allclose(out[42:54, 42:54], np.clip(changed + 0.02, 0, 1)[42:54, 42:54], atol=1e-6)
    assert np.abs(out[20:30, 20:30] - np.clip(changed + 0.02, 0, 1)[20:30, 20:30]).mean() > 0.005
    # a cut (other content) or no face in the last frame: the new detail as it is
    other = texture(0, seed=5)
    result = other + pattern[:, :96]
    np.testing.assert_allclose(steady(other, result, box)[16:80, 16:80], result[16:80, 16:80], atol=1e-6)
    fresh = video.TemporalFilter(weight=0.35)
    fresh(texture(0), texture(0), [])
    np.testing.assert_allclose(fresh(texture(2), texture(2) + 0.05, box), np.clip(texture(2) + 0.05, 0, 1), atol=1e-6)


def test_the_bicubic_base_is_averaged_along_the_motion_only_when_asked():
    rng = np.random.default_rng(1)
    box = [(8, 8, 88, 88)]
    own = video.TemporalFilter(weight=0.35, base=1.0)
    light = video.TemporalFilter(weight=0.35, base=video.TEMPORAL_BASE)
    assert video.TEMPORAL_BASE < 1
    error_in, error_light = [], []
    for t in range(8):  # the input's own noise, new each frame, on a face that moves 2 px a frame
        clean = texture(2 * t)
        noisy = np.clip(clean + (rng.random(clean.shape).astype(np.float32) - 0.5) * 0.04, 0, 1)
        # base 1 with no model detail: the frame's bicubic exactly, every frame
        np.testing.assert_allclose(own(noisy, noisy.copy(), box), noisy, atol=1e-6)
        out = light(noisy, noisy.copy(), box)
        if t >= 3:
            error_in.append(np.abs(noisy - clean)[16:80, 16:80].mean())
            error_light.append(np.abs(out - clean)[16:80, 16:80].mean())
    assert np.mean(error_light) < 0.85 * np.mean(error_in), (np.mean(error_light), np.mean(error_in))
    # colour mode filters the base with `weight`: it averages harder than base 0.8
    colour = video.TemporalFilter(weight=0.35, colour=True)
    error_colour = []
    rng = np.random.default_rng(1)
    for t in range(8):
        clean = texture(2 * t)
        noisy = np.clip(clean + (rng.random(clean.shape).astype(np.float32) - 0.5) * 0.04, 0, 1)
        out = colour(noisy, noisy.copy(), box)
        if t >= 3:
            error_colour.append(np.abs(out - clean)[16:80, 16:80].mean())
    assert np.mean(error_colour) < np.mean(error_light)


def moving_face(t: int, height: int = 96, width: int = 128) -> np.ndarray:
    frame = background(height, width)
    face = aligned_face(56)
    frame[20:76, 8 + 4 * t:64 + 4 * t] = face
    return frame


def test_a_moving_face_is_tracked_and_super_resolved_in_every_frame(model, tmp_path):  # noqa: F811
    source = write_clip(tmp_path / "face.mp4", frames=6, size=(96, 128), frame_fn=moving_face)
    report = video.restore_video(model, source, tmp_path / "out.mp4", scale=2, ensemble=False)
    assert report.frames == 6 and report.tracks == 1
    assert report.frames_with_faces == 6 and report.faces_kept == 0
    out = list(video.frames_of(tmp_path / "out.mp4"))
    bicubic = tmp_path / "bicubic.mp4"
    video.restore_video("bicubic", source, bicubic, scale=2)
    base = list(video.frames_of(bicubic))
    # the face differs from bicubic (the model drew it), the far background does not (beyond encoding noise)
    face_change = np.abs(out[3][40:150, 40:150].astype(int) - base[3][40:150, 40:150]).mean()
    corner_change = np.abs(out[3][150:, 200:].astype(int) - base[3][150:, 200:]).mean()
    assert face_change > 3 * corner_change + 0.5, (face_change, corner_change)


# ----------------------------------------------------------------------------- bad input
def bad_inputs(tmp_path):
    """name -> (file, words the refusal must contain)."""
    good = write_clip(tmp_path / "good.mp4", frames=20)
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n" * 20)
    image = tmp_path / "photo.png"
    from PIL import Image
    Image.fromarray(stripes(0)).save(image)
    audio = tmp_path / "sound.m4a"
    with av.open(str(audio), "w") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        for k in range(10):
            piece = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="fltp", layout="mono")
            piece.sample_rate, piece.pts = 16000, k * 1024
            for packet in stream.encode(piece):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    long = write_clip(tmp_path / "ten_hours.mp4", frames=2, pts=[0, 25 * 36000])
    data = good.read_bytes()
    cut = tmp_path / "cut.mp4"                     # MP4 with its index at the end: the index is gone
    cut.write_bytes(data[:len(data) // 2])
    indexed = write_clip(tmp_path / "indexed.mp4", frames=20, faststart=True)
    cut_indexed = tmp_path / "cut_indexed.mp4"     # index first: it promises frames the file lacks
    cut_indexed.write_bytes(indexed.read_bytes()[:len(indexed.read_bytes()) // 2])
    mkv = write_clip(tmp_path / "clip.mkv", frames=60)
    cut_mkv = tmp_path / "cut.mkv"
    cut_mkv.write_bytes(mkv.read_bytes()[:len(mkv.read_bytes()) // 2])
    unknown = tmp_path / "unknown.mkv"             # the codec ID of the track made unknown
    assert mkv.read_bytes().count(b"V_MPEG4/ISO/AVC") == 1
    unknown.write_bytes(mkv.read_bytes().replace(b"V_MPEG4/ISO/AVC", b"V_QQQQQ/QQQ/QQQ"))
    return {
        "not a video": (text, "not a video"),
        "a still image": (image, "still image"),
        "no video stream": (audio, "no video stream"),
        "a 10-hour header": (long, "10:00:00"),
        "truncated, index lost": (cut, "cut short"),
        "truncated, index first": (cut_indexed, "truncated"),
        "truncated Matroska": (cut_mkv, "truncated"),
        "an unknown codec": (unknown, "codec is unknown"),
    }


def test_bad_inputs_are_refused_in_one_line_and_nothing_is_written(tmp_path, capsys):
    cases = bad_inputs(tmp_path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for what, (path, words) in cases.items():
        with pytest.raises(ValueError, match=words):
            video.probe(path)
        code = cli.main(["video", str(path), "-o", str(out_dir / "result.mp4"), "--scale", "2", "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == cli.EXIT_USAGE, what
        assert len(err) == 1 and words in err[0] and path.name in err[0], (what, err)
        assert list(out_dir.iterdir()) == [], what


def test_the_limit_is_a_flag_and_a_stopped_run_leaves_nothing(tmp_path):
    long = write_clip(tmp_path / "long.mp4", frames=2, pts=[0, 25 * 700])
    with pytest.raises(ValueError, match="over the limit of 600 s"):
        video.probe(long)
    assert video.probe(long, max_seconds=None).frames == 2
    source = write_clip(tmp_path / "in.mp4", frames=10)

    def stop(done, total):
        if done == 4:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        video.restore_video("bicubic", source, tmp_path / "out.mp4", scale=2, progress=stop)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.mp4", "long.mp4"]


def test_the_command_line_refuses_before_work_and_keeps_existing_files(tmp_path, capsys):
    source = write_clip(tmp_path / "in.mp4", frames=4)
    target = tmp_path / "out.mp4"
    target.write_bytes(b"keep me")
    assert cli.main(["video", str(source), "-o", str(target), "--scale", "2"]) == cli.EXIT_USAGE
    assert "--overwrite" in capsys.readouterr().err and target.read_bytes() == b"keep me"
    assert cli.main(["video", str(source), "-o", str(tmp_path / "out.avi"), "--scale", "2"]) == cli.EXIT_USAGE
    assert cli.main(["video", str(source), "-o", str(tmp_path / "o.mp4"), "--scale", "2", "--crf", "60"]) == 2
    assert cli.main(["video", str(source), "-o", str(tmp_path / "o.mp4")]) == cli.EXIT_USAGE  # no size given
    assert not (tmp_path / "o.mp4").exists()
    code = cli.main(["video", str(source), "-o", str(target), "--width", "96", "--model", "bicubic", "--overwrite",
                     "--no-progress"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_OK and "wrote" in err and read_back(target)["size"] == (72, 96)


# ----------------------------------------------------------------------------- the demo's Video tab
def test_the_video_tab_returns_before_and_after_and_refuses_over_its_limits(tmp_path, monkeypatch):
    from demo import footage
    from demo.errors import InputError
    source = write_clip(tmp_path / "face.mp4", frames=4, size=(96, 128), frame_fn=moving_face, audio="aac")
    shown = []
    result = footage.enhance_video(str(source), 2.0, progress=lambda fraction, what: shown.append(fraction))
    before, after = read_back(result.bicubic_path), read_back(result.result_path)
    assert before["size"] == after["size"] == (192, 256) and len(after["pts"]) == 4 and after["audio"] == ["aac"]
    assert "1 face track" in result.report and "super-resolved in 4 of 4 frames" in result.report
    assert "Auto chose" in result.report and shown[-1] == pytest.approx(1.0)
    long = write_clip(tmp_path / "long.mp4", frames=2, pts=[0, 25 * 11])
    with pytest.raises(InputError, match="over the limit of 10 s"):
        footage.enhance_video(str(long), 2.0)
    with pytest.raises(InputError, match="1 to 4"):
        footage.enhance_video(str(source), 5.0)
    with pytest.raises(InputError, match="1280 x 720"):
        footage.check_clip(str(write_clip(tmp_path / "wide.mp4", frames=1, size=(480, 640))), 2.5)
    monkeypatch.setattr(footage, "MAX_FRAMES", 3)
    with pytest.raises(InputError, match="4 frames; this page takes up to 3"):
        footage.check_clip(str(source), 2.0)
    with pytest.raises(InputError, match="Upload a video"):
        footage.enhance_video(None, 2.0)
