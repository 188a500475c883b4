"""Command line: `python -m arasfsr {upscale,restore,video,export-onnx,train,evaluate} ...`.

Exit codes (the README lists them too):
    0  everything asked was done
    1  a batch (folder input) finished, but some files failed: the others were written, and a
       summary names each failed file and why
    2  usage or input error: nothing was written (one line on stderr names the file and the reason)
    3  training stopped (the NaN / divergence guard of `train`)

The upscale path checks its arguments, the output plan (no file destroyed without --overwrite)
and, for a single file, the image header before it imports torch or loads a model, so usage errors
answer at once. `plan_jobs` / `run_jobs` (or `run_batch`, both in one call) are the batch logic
any image-to-image subcommand reuses: give it a function path -> PIL image. The `train` options
(`add_train_arguments`, `cmd_train`) build an `arasfsr.train.TrainConfig`; they import torch, and
only when `train` is the command.
"""
from __future__ import annotations

import argparse
import os
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_TRAINING_STOPPED = 3


class UsageError(ValueError):
    """A request the command line refuses before doing any work (exit code 2)."""


# ----------------------------------------------------------------------------- batch logic
@dataclass(frozen=True)
class Job:
    """One input file and the file its result goes to."""
    source: Path
    target: Path
    note: str = ""   # why the target is not SOURCE-STEM.png (a name collision), else ""


@dataclass(frozen=True)
class Plan:
    jobs: list[Job]
    batch: bool      # folder input: a bad file is reported and skipped (exit 1), not fatal (exit 2)
    out_dir: Path


def _same_file(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    try:  # hard links, bind mounts
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _writable_format(path: Path) -> str | None:
    from PIL import Image
    Image.init()
    return Image.registered_extensions().get(path.suffix.lower())


def unique_targets(files: Sequence[Path], out_dir: Path) -> list[Job]:
    """Output names for a folder of inputs, never two the same (case-insensitively).

    A file keeps STEM.png unless another input shares its stem (face.png + face.jpg): then a
    .png input keeps STEM.png and the others become STEM_EXT.png (face_jpg.png); a name still
    taken gets _2, _3, ... Names that need no renaming are claimed first.
    """
    stems = Counter(p.stem.lower() for p in files)
    taken: set[str] = set()
    jobs: list[Job | None] = [None] * len(files)

    def claim(name: str) -> str:
        candidate, k = name, 1
        while candidate.lower() in taken:
            k += 1
            candidate = f"{name[:-len('.png')]}_{k}.png"
        taken.add(candidate.lower())
        return candidate

    for i, p in enumerate(files):  # pass 1: names that need no renaming
        if stems[p.stem.lower()] == 1 or p.suffix.lower() == ".png":
            name = claim(p.stem + ".png")
            jobs[i] = Job(p, out_dir / name, "" if name == p.stem + ".png" else "a file of the same name came first")
    for i, p in enumerate(files):  # pass 2: stems shared with another input
        if jobs[i] is None:
            name = claim(f"{p.stem}_{p.suffix[1:].lower()}.png")
            jobs[i] = Job(p, out_dir / name, f"another input is also named {p.stem!r}")
    return jobs


def plan_jobs(input_path: str | os.PathLike, output_path: str | os.PathLike, *, overwrite: bool = False) -> Plan:
    """Decide every output file before any work, refusing plans that would destroy a file.

    Args:
        input_path: an image file, or a folder (its image files, not recursive).
        output_path: for a file: an output file (format from its suffix) or an existing folder;
            for a folder: a folder (created if needed; PNG files named after the inputs).
        overwrite: allow replacing existing files, the input included.
    Returns:
        A `Plan`. Raises UsageError (one line) for: a missing input, an output that is the input
        (same file, or the input folder), outputs that exist already, an unwritable suffix.
    """
    from .io import IMAGE_SUFFIXES, list_image_files

    src, dst = Path(input_path), Path(output_path)
    hint = "pass --overwrite to replace"
    if not src.exists():
        raise UsageError(f"input {src} does not exist")
    if src.is_file():
        target = dst / (src.stem + ".png") if dst.is_dir() else dst
        if _writable_format(target) is None:
            raise UsageError(f"output {target} needs an image suffix Pillow can write, e.g. .png")
        if _same_file(target, src) and not overwrite:
            raise UsageError(f"output {target} is the input file and would be replaced; choose another "
                             f"output ({hint} it)")
        if target.exists() and not overwrite:
            raise UsageError(f"output {target} already exists; {hint} it or choose another name")
        return Plan([Job(src, target)], batch=False, out_dir=target.parent)
    files = list_image_files(src)
    if not files:
        raise UsageError(f"no images in folder {src} (suffixes: {' '.join(sorted(IMAGE_SUFFIXES))})")
    if dst.exists() and not dst.is_dir():
        raise UsageError(f"input is a folder, so the output must be a folder; {dst} is a file")
    if _same_file(dst, src) and not overwrite:
        raise UsageError(f"output folder {dst} is the input folder: results would replace or mix with the "
                         f"originals; choose another folder (or pass --overwrite to allow it)")
    jobs = unique_targets(files, dst)
    existing = [job.target for job in jobs if job.target.exists()]
    if existing and not overwrite:
        raise UsageError(f"{len(existing)} of {len(jobs)} outputs already exist in {dst}, e.g. "
                         f"{existing[0].name}; {hint} them or choose another folder")
    return Plan(jobs, batch=True, out_dir=dst)


def write_image(image, target: Path, overwrite: bool = False) -> None:
    """Save a PIL image, never clobbering a file unless `overwrite`; never leaving half a file.

    Without overwrite the file is created exclusively (a file that appeared since planning is
    kept); with overwrite the image goes to a temporary file that then replaces the target.
    """
    fmt = _writable_format(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    if overwrite:
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            image.save(tmp, format=fmt)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)
        return
    try:
        handle = open(target, "xb")
    except FileExistsError:
        raise UsageError(f"output {target} already exists; pass --overwrite to replace it") from None
    try:
        with handle:
            image.save(handle, format=fmt)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _named(path: Path, err: BaseException) -> str:
    """The error's message, starting with the file's name unless it already names it."""
    reason = str(err) or type(err).__name__
    return reason if path.name in reason else f"{path}: {reason}"


def run_jobs(plan: Plan, fn: Callable[[Path], object], *, overwrite: bool = False,
             progress: bool = True, desc: str = "upscale") -> int:
    """Run `fn` on every planned input and write its image; returns the exit code.

    Args:
        plan: from `plan_jobs`.
        fn: path -> PIL image (e.g. `lambda p: upscale(model, p, scale=2)`). Its ValueError /
            OSError / MemoryError count as that file's failure.
        overwrite: as given to `plan_jobs`.
        progress: show a progress bar for batches.
        desc: the progress bar's label (the subcommand's name).
    Returns:
        EXIT_OK, or EXIT_SOME_FAILED when a batch had failures (the others are written and a
        summary is printed). A single-file plan raises instead (the caller reports it, exit 2).
    """
    for job in plan.jobs:
        if job.note:
            print(f"{job.source.name} -> {job.target.name} ({job.note})")
    if not plan.batch:
        job = plan.jobs[0]
        try:
            image = fn(job.source)
        except ValueError as err:
            raise UsageError(_named(job.source, err)) from None
        write_image(image, job.target, overwrite)
        print(f"wrote {job.target}")
        return EXIT_OK
    jobs = plan.jobs
    if progress:
        from tqdm import tqdm
        jobs = tqdm(jobs, desc=desc, unit="img")
    written, failed = 0, []
    for job in jobs:
        try:
            write_image(fn(job.source), job.target, overwrite)
            written += 1
        except (ValueError, OSError, MemoryError) as err:  # one bad file must not lose the others
            failed.append(_named(job.source, err))
    for line in failed:
        print(f"failed: {line}", file=sys.stderr)
    print(f"wrote {written} of {len(plan.jobs)} images to {plan.out_dir}"
          + (f"; {len(failed)} failed (listed above)" if failed else ""))
    return EXIT_SOME_FAILED if failed else EXIT_OK


def run_batch(input_path: str | os.PathLike, output_path: str | os.PathLike, fn: Callable[[Path], object], *,
              overwrite: bool = False, progress: bool = True, desc: str = "upscale") -> int:
    """`plan_jobs` then `run_jobs` in one call; returns the exit code (UsageError for a bad plan).

    E.g. a `restore` subcommand: `run_batch(args.input, args.output,
    lambda p: restore(model, p, scale=s)[0], overwrite=args.overwrite, desc="restore")`.
    """
    return run_jobs(plan_jobs(input_path, output_path, overwrite=overwrite), fn, overwrite=overwrite,
                    progress=progress, desc=desc)


# ----------------------------------------------------------------------------- upscale
def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W): height x width, as everywhere in the package."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like HEIGHTxWIDTH, e.g. 512x384, got {text!r}") from None
    if h < 1 or w < 1:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return h, w


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a number from 0 to 1, got {text!r}")
    return value


def size_request(args: argparse.Namespace) -> tuple[float | None, tuple[int | None, int | None] | None]:
    """(scale, size) from --scale / --size / --width / --height, exactly one way given."""
    ways = [args.scale is not None, args.size is not None, args.width is not None or args.height is not None]
    if sum(ways) != 1:
        raise UsageError("give exactly one of --scale, --size HEIGHTxWIDTH, or --width and/or --height")
    if args.scale is not None:
        return args.scale, None
    if args.size is not None:
        return None, args.size
    return None, (args.height, args.width)  # a missing side keeps the aspect ratio


def check_model_arguments(args: argparse.Namespace) -> str:
    """The model family to use; refuses contradictory flags. Torch-free (reads file headers only)."""
    from .weights import family_of, read_metadata, resolve_weights

    if args.weights and args.random_weights:
        raise UsageError("give --weights or --random-weights, not both")
    if args.model == "bicubic" and (args.weights or args.random_weights):
        raise UsageError("--model bicubic uses no weights; drop --weights / --random-weights")
    if not args.weights:
        family = args.model or "arasfsr"
        if family != "bicubic" and not args.random_weights:
            resolve_weights(family)  # the shipped file must exist (the error says how to point at one)
        return family
    path = resolve_weights(args.weights)
    if path.suffix in (".pth", ".pt"):
        family = "liif"  # the only published checkpoints we import
    else:
        family = family_of(read_metadata(path)["config"]) or "unknown"
    if args.model is not None and args.model != family:
        raise UsageError(f"--model {args.model} disagrees with --weights {path}, which holds {family!r} weights; "
                         "drop --model or give matching weights")
    return family


def _load(args: argparse.Namespace, family: str):
    if family == "bicubic":
        return "bicubic"
    from .model import create_model
    from .weights import load_model
    if args.random_weights:
        return create_model(family, preset=args.random_weights)
    return load_model(args.weights or family, device=args.device)


def _is_auto(args: argparse.Namespace) -> bool:
    """No --weights, --model or --random-weights: the weights are chosen per input by its damage."""
    return not (args.weights or args.model or args.random_weights)


def _picker(args: argparse.Namespace, family: str, mode: str = "upscale"):
    """path -> (the model, the share of its detail kept) for that input. Given flags: one model for
    all, its full detail (or --detail). None: per input, by `arasfsr.damage.choose` (JPEG quality from
    the tables or from the pixels) and `choose_detail`, the choice and its reason printed.
    The device is checked first: a bad --device is one line before any work."""
    from .threads import resolve_device
    try:
        resolve_device(args.device)
    except ValueError as err:
        raise UsageError(f"--device: {err}") from None
    if not _is_auto(args):
        model = _load(args, family)
        detail = 1.0 if args.detail is None else args.detail
        return lambda path: (model, detail)
    from .damage import choose, choose_detail, describe
    from .weights import load_model
    cache: dict = {}

    def pick(path: Path):
        name, damage = choose(path, mode=mode)
        detail = choose_detail(damage) if args.detail is None else args.detail
        print(f"{Path(path).name}: {describe(name, damage, detail)}", file=sys.stderr)
        if name not in cache:
            cache[name] = "bicubic" if name == "bicubic" else load_model(name, device=args.device)
        return cache[name], detail
    return pick


def cmd_upscale(args: argparse.Namespace) -> int:
    from .io import image_size
    from .sizes import check_request, output_size

    scale, size = size_request(args)
    check_request(scale, size)
    family = check_model_arguments(args)
    plan = plan_jobs(args.input, args.output, overwrite=args.overwrite)
    if not plan.batch:  # one file: its header decides whether the request fits, before any model load
        source = plan.jobs[0].source
        try:
            output_size(image_size(source), scale, size)
        except ValueError as err:
            raise UsageError(_named(source, err)) from None
    pick = _picker(args, family)  # imports torch
    from .inference import upscale

    def fn(path: Path):
        model, detail = pick(path)
        return upscale(model, path, scale=scale, size=size, chunk_size=args.chunk_size, device=args.device,
                       sample=args.sample, seed=args.seed, detail=detail, self_ensemble=args.self_ensemble)
    return run_jobs(plan, fn, overwrite=args.overwrite, progress=not args.no_progress)


def _background(args: argparse.Namespace):
    """--background -> path -> (model or None, words for the report). auto: by the photo's damage
    (`arasfsr.damage.choose_background`) when the natural-photo weights are installed, else bicubic."""
    from PIL import Image

    from .damage import assess, choose_background
    from .io import read_image
    from .weights import background_name, load_model
    name = background_name() if args.background == "auto" else args.background
    if name in (None, "bicubic"):
        return lambda path: (None, "bicubic")
    model = load_model(name, device=args.device)
    words = f"the natural-photo model ({name})"
    if args.background != "auto":
        return lambda path: (model, words)

    def pick(path: Path):
        pil = read_image(path, max_pixels=None)
        with Image.open(path) as raw:  # a rotated or converted image has lost its JPEG tables
            pil.quantization = getattr(raw, "quantization", None)
        choice, reason = choose_background(assess(pil))
        return (model if choice == "natural" else None), (f"{reason} ({name})" if choice == "natural" else reason)
    return pick


def cmd_restore(args: argparse.Namespace) -> int:
    """Whole photos: every face found super-resolved in place over a bicubic background."""
    from .io import image_size
    from .sizes import MAX_PHOTO_PIXELS, check_request, output_size

    scale, size = size_request(args)
    check_request(scale, size)
    family = check_model_arguments(args)
    plan = plan_jobs(args.input, args.output, overwrite=args.overwrite)
    if not plan.batch:
        source = plan.jobs[0].source
        try:
            output_size(image_size(source), scale, size, max_input_pixels=MAX_PHOTO_PIXELS)
        except ValueError as err:
            raise UsageError(_named(source, err)) from None
    pick = _picker(args, family, "restore")  # imports torch
    from .restore import restore
    background_for = _background(args)

    def fn(path: Path):
        background, drawn_by = background_for(path)
        model, detail = pick(path)
        image, reports = restore(model, path, scale=scale, size=size, max_faces=args.max_faces,
                                 device=args.device, chunk_size=args.chunk_size, background=background,
                                 ensemble=not args.no_ensemble, detail=detail)
        enhanced = sum(r.status == "enhanced" for r in reports)
        kept = [f"face {r.index}: {r.reason}" for r in reports if r.status != "enhanced"]
        print(f"{path.name}: {len(reports)} face(s) found, {enhanced} enhanced"
              + (f"; left to the background: {'; '.join(kept)}" if kept else "")
              + f"; background: {drawn_by}", file=sys.stderr)
        return image
    return run_jobs(plan, fn, overwrite=args.overwrite, progress=not args.no_progress, desc="restore")


def _import_video():
    try:
        from . import video
    except ImportError as err:  # PyAV is an optional extra
        raise UsageError(str(err)) from None
    return video


def cmd_video(args: argparse.Namespace) -> int:
    """Video: every frame through `restore`, faces tracked, the audio kept (`arasfsr.video`)."""
    scale, size = size_request(args)
    from .sizes import check_request
    check_request(scale, size)
    if not 0 <= args.crf <= 51:
        raise UsageError(f"--crf must be 0 to 51, got {args.crf}")
    video = _import_video()
    target = video.check_output(args.output, args.overwrite)
    source = Path(args.input)
    if target.exists() and _same_file(source, target):
        raise UsageError(f"{target.name}: the output would overwrite the input")
    info = video.probe(source, args.max_seconds or None)
    out_h, out_w = video.output_size(info, scale, size)
    family = check_model_arguments(args)
    from .threads import resolve_device
    try:
        resolve_device(args.device)
    except ValueError as err:
        raise UsageError(f"--device: {err}") from None
    print(f"{source.name}: {info.text} -> {out_w}x{out_h} px", file=sys.stderr)
    first = next(video.frames_of(source, limit=1))
    if _is_auto(args):  # one choice for the whole clip (weights switching mid-clip would flicker)
        from PIL import Image

        from .damage import choose, choose_detail, describe
        from .weights import load_model
        name, damage = choose(Image.fromarray(first), mode="restore")
        detail = choose_detail(damage) if args.detail is None else args.detail
        print(f"{source.name}: the first frame is {describe(name, damage, detail)}", file=sys.stderr)
        model = "bicubic" if name == "bicubic" else load_model(name, device=args.device)
    else:
        model, damage = _load(args, family), None
        detail = 1.0 if args.detail is None else args.detail
    background, drawn_by = _video_background(args, first, damage)
    from tqdm import tqdm
    with tqdm(total=info.frames, unit="frame", desc="video", disable=args.no_progress, dynamic_ncols=True) as bar:
        report = video.restore_video(model, source, target, scale=scale, size=size, background=background,
                                     ensemble=not args.no_ensemble, max_faces=args.max_faces, device=args.device,
                                     chunk_size=args.chunk_size, crf=args.crf, max_seconds=args.max_seconds or None,
                                     overwrite=args.overwrite, info=info, detail=detail,
                                     progress=lambda done, total: bar.update(done - bar.n))
    print(f"wrote {target}: {report.text}; background: {drawn_by}", file=sys.stderr)
    return EXIT_OK


def _video_background(args: argparse.Namespace, first, damage):
    """(model or None, words) for the whole clip, as `_background` does per photo, judged on the first frame."""
    from .damage import assess, choose_background
    from .weights import background_name, load_model
    name = background_name() if args.background == "auto" else args.background
    if name in (None, "bicubic"):
        return None, "bicubic"
    if args.background != "auto":
        return load_model(name, device=args.device), f"the natural-photo model ({name})"
    choice, reason = choose_background(damage if damage is not None else assess(first))
    if choice != "natural":
        return None, reason
    return load_model(name, device=args.device), f"{reason} ({name})"


def add_upscale_arguments(up: argparse.ArgumentParser, restore: bool = False, video: bool = False) -> None:
    from .presets import FAMILIES, PRESETS
    from .sizes import MAX_SCALE

    if video:
        up.add_argument("input", help="video file: any container and codec PyAV's FFmpeg reads")
        up.add_argument("-o", "--output", required=True, help="output video: .mp4, .m4v, .mov or .mkv (H.264)")
    else:
        up.add_argument("input", help="image file, or folder of images (not recursive)")
        up.add_argument("-o", "--output", required=True,
                        help="output file (format from its suffix) or folder (PNG files named after the inputs)")
    up.add_argument("--scale", type=float, help=f"any scale in [1, {MAX_SCALE:g}], e.g. 3.7")
    up.add_argument("--size", type=parse_size, help="output HEIGHTxWIDTH, e.g. 512x384 (height first)")
    up.add_argument("--width", type=_positive_int,
                    help="output width in px (alone: the height keeps the aspect ratio)")
    up.add_argument("--height", type=_positive_int,
                    help="output height in px (alone: the width keeps the aspect ratio)")
    up.add_argument("--model", default=None, choices=[*FAMILIES, "bicubic"],
                    help="model family (default: the one in --weights; with neither, the shipped weights are "
                         "chosen per input by its damage, JPEG quality from the file or its pixels, and the choice "
                         "is printed)")
    up.add_argument("--weights", help="weight file (.safetensors or a LIIF .pth) or a shipped name; "
                                      "default: the shipped weights of --model")
    up.add_argument("--random-weights", metavar="PRESET", choices=list(PRESETS),
                    help=f"a randomly initialised model of this preset, for testing ({', '.join(PRESETS)})")
    up.add_argument("--overwrite", action="store_true",
                    help="allow replacing existing files, the input included (never done without it)")
    up.add_argument("--chunk-size", type=_positive_int, default=None,
                    help="queries per chunk (bounds memory; default: chosen per device)")
    up.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda, ...")
    up.add_argument("--detail", type=_share, default=None,
                    help="the share of the model's detail over bicubic kept, 0 to 1 (default: 0.7 on JPEG inputs "
                         "when the weights are chosen per input, else 1; the choice is printed)")
    if not (restore or video):
        up.add_argument("--self-ensemble", type=int, default=1, choices=(1, 2, 4, 8), metavar="N",
                        help="render N times (1, 2, 4 or 8), flipped and turned, and average: N times the time; "
                             "8 adds 0.11 dB at x4 with the natural model on its test split (MODEL_CARD.md); "
                             "for photographs, not faces (default 1)")
    up.add_argument("--no-progress", action="store_true", help="no progress bar")
    if restore or video:
        up.add_argument("--max-faces", type=int, default=12, help="super-resolve at most this many faces per photo")
        up.add_argument("--background", choices=("auto", "natural-fast", "natural", "bicubic"), default="auto",
                        help="what draws everything but the faces: the natural-photo model (natural-fast: its "
                             "distilled student, whole photos in 0.57x the time), or bicubic as before 0.5 (default "
                             "auto: by the photo's damage, natural-fast when installed)")
        up.add_argument("--no-ensemble", action="store_true",
                        help="render each face once (default: twice, as it is and mirrored, averaged; "
                             "measured better on faces from other sources, twice the faces' time)")
        if video:
            from .sizes import VIDEO_CRF as DEFAULT_CRF
            from .sizes import VIDEO_MAX_SECONDS as MAX_SECONDS
            up.add_argument("--crf", type=int, default=DEFAULT_CRF,
                            help=f"H.264 quality, 0 (lossless) to 51 (default {DEFAULT_CRF}: visually close to lossless)")
            up.add_argument("--max-seconds", type=float, default=MAX_SECONDS,
                            help=f"refuse clips longer than this (default {MAX_SECONDS:g}; 0: no limit)")
            up.set_defaults(func=cmd_video)
            return
        up.set_defaults(func=cmd_restore)
        return
    up.add_argument("--sample", action="store_true", help="sample the LFE latent (default: deterministic)")
    up.add_argument("--seed", type=int, default=0)
    up.set_defaults(func=cmd_upscale)


# ----------------------------------------------------------------------------- train
def _pair(kind):
    def parse(text: str):
        values = tuple(kind(v) for v in text.split(","))
        if len(values) != 2:
            raise argparse.ArgumentTypeError(f"expected two comma-separated values, got {text!r}")
        return values
    return parse


def _degradation(text: str) -> str:
    from .degrade import check_kind
    try:
        return check_kind(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err))


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """The `train` options: one per `TrainConfig` field, its defaults (imports torch)."""
    from .presets import FAMILIES, PRESETS
    from .train import PRESET_LEARNING_RATES, TrainConfig

    d = TrainConfig()
    parser.add_argument("--model", default=d.model, choices=list(FAMILIES))
    parser.add_argument("--preset", default=d.preset, choices=list(PRESETS))
    parser.add_argument("--data", default=d.data, help="folder of aligned faces (a manifest.json selects the train split)")
    parser.add_argument("--out", default=None, help="run folder (default: runs/MODEL_PRESET)")
    parser.add_argument("--steps", type=int, default=d.steps)
    parser.add_argument("--batch-size", type=int, default=d.batch_size)
    parser.add_argument("--num-queries", type=int, default=d.num_queries)
    parser.add_argument("--learning-rate", type=float, default=None,
                        help="Adam learning rate (default per preset: " +
                        ", ".join(f"{k} {v:g}" for k, v in PRESET_LEARNING_RATES.items()) + ")")
    parser.add_argument("--lr-decay-at", type=float, default=d.lr_decay_at)
    parser.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    parser.add_argument("--grad-clip", type=float, default=d.grad_clip, help="max gradient norm (0: off)")
    parser.add_argument("--ema-decay", type=float, default=d.ema_decay, help="EMA of the weights (0: off)")
    parser.add_argument("--rollback-drop", type=float, default=d.rollback_drop,
                        help="roll back to the best weights when validation falls this many dB below them (0: off)")
    parser.add_argument("--input-sizes", type=_pair(int), default=d.input_sizes, help="min,max LR side, e.g. 16,64")
    parser.add_argument("--scale-range", type=_pair(float), default=d.scale_range, help="min,max scale, e.g. 1,8")
    parser.add_argument("--degradation", default=d.degradation, type=_degradation,
                        help="bicubic | nn_jpeg | realistic (random blur, noise, JPEG 30-95) | mixed (clean, light JPEG "
                             "or realistic) | jpegQ")
    parser.add_argument("--no-hflip", dest="hflip", action="store_false", help="no random horizontal flips")
    parser.add_argument("--photometric", type=float, default=d.photometric,
                        help="probability of a random colour cast, gamma, contrast and saturation per face (0: off)")
    parser.add_argument("--geometric", type=float, default=d.geometric,
                        help="probability of a random roll (up to 10 degrees), zoom and shift per face (0: off)")
    parser.add_argument("--select-data", default=d.select_data,
                        help="faces from other sources than the training set (their val split): the weights that "
                             "score best on them are also written as MODEL_PRESET.selected.safetensors")
    parser.add_argument("--kl-weight", type=float, default=d.kl_weight)
    parser.add_argument("--init-from", default=d.init_from, help="start from these weights (fine-tuning)")
    parser.add_argument("--teacher", default=d.teacher,
                        help="distil this model: its encoder is copied and frozen and the decoder learns its output "
                             "(arasfsr-fast from arasfsr)")
    parser.add_argument("--val-every", type=int, default=d.val_every)
    parser.add_argument("--crop", action="store_true",
                        help="train on random HR patches at native pixels (photographs) instead of whole faces")
    parser.add_argument("--val-input-size", type=int, default=d.val_input_size,
                        help="validation LR side in px, judged at x4 (default 16: faces; 64 for photo tiles)")
    parser.add_argument("--ckpt-every", type=int, default=d.ckpt_every)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--threads", type=int, default=d.threads)
    parser.add_argument("--workers", type=int, default=d.workers, help="DataLoader worker processes")
    parser.add_argument("--device", default=d.device)
    parser.add_argument("--amp", action="store_true", help="bfloat16 autocast (CUDA)")
    parser.add_argument("--compile", action="store_true", help="torch.compile (CPU with a C compiler, or CUDA)")
    parser.add_argument("--data-description", default=d.data_description)
    parser.add_argument("--recipe", default=d.recipe,
                        help="one name for the whole schedule (legs included), written to the weights' metadata")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/last.pt")
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=cmd_train)


def cmd_train(args: argparse.Namespace) -> int:
    """A `TrainConfig` from the options, then `arasfsr.train.train`; exit 3 when the guard stops it."""
    from dataclasses import fields

    from .train import PRESET_LEARNING_RATES, TrainConfig, _rank, train

    names = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names and v is not None}
    cfg = TrainConfig(**values)
    if args.learning_rate is None:
        cfg.learning_rate = PRESET_LEARNING_RATES[cfg.preset]
    if args.out is None:
        cfg.out = f"runs/{cfg.model}_{cfg.preset}"
    if cfg.steps < 1 or cfg.batch_size < 1:
        raise ValueError("steps and batch_size must be positive")
    if not Path(cfg.data).is_dir():
        raise FileNotFoundError(f"data folder {cfg.data} not found; build the offline faces with "
                                f"`python -m arasfsr.data.offline --out {cfg.data}`")
    try:
        path = train(cfg, resume=args.resume, progress=not args.no_progress)
    except FloatingPointError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_TRAINING_STOPPED
    if _rank()[0] == 0:
        print(f"exported {path}")
    return EXIT_OK


def _command(argv: Sequence[str]) -> str | None:
    """The subcommand named in argv (the first word that is not an option)."""
    return next((a for a in argv if not a.startswith("-")), None)


def cmd_export_onnx(args) -> int:
    """`export-onnx`: refuse before any work if --out holds an export (without --overwrite)."""
    from .onnx import FILES
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder")
    present = [name for name in FILES if (out / name).exists()]
    if present and not args.overwrite:
        raise UsageError(f"{out} already holds {', '.join(present)}: pass --overwrite to replace them")
    from .onnx import export
    try:
        paths = export(args.model, out)
    except ImportError as err:
        raise UsageError(str(err)) from None
    sizes = ", ".join(f"{p.name} {p.stat().st_size / 1e6:.1f} MB" for p in paths.values())
    print(f"wrote {out}: {sizes}")
    return EXIT_OK


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser; the arguments of `train` (`add_train_arguments`) and `evaluate` (defined there)
    import torch, so they are only filled in when argv names them."""
    command = _command(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="python -m arasfsr",
        description="Arbitrary-scale face super-resolution (ARASFSR, LIIF, LTE).",
        epilog="exit codes: 0 ok, 1 some files of a batch failed, 2 usage or input error, 3 training stopped")
    sub = parser.add_subparsers(dest="command", required=True)
    add_upscale_arguments(sub.add_parser("upscale", help="upscale an image or every image in a folder"))
    add_upscale_arguments(sub.add_parser(
        "restore", help="whole photos: find every face, super-resolve it in place over a background drawn by the "
                   "natural-photo model (or bicubic)"),
        restore=True)
    add_upscale_arguments(sub.add_parser(
        "video", help="a video: every frame, faces found, tracked and super-resolved, the rest by the natural-photo "
                      "model (or bicubic); frame rate and audio kept, H.264 out"),
        video=True)
    export = sub.add_parser("export-onnx", help="write a model as two ONNX graphs (encoder, decoder) that "
                            "arasfsr.onnx.upscale renders with onnxruntime alone")
    export.add_argument("model", help="a shipped name (arasfsr, lte, ...) or a weight file")
    export.add_argument("-o", "--out", required=True, help="folder for encoder.onnx, decoder.onnx, model.json")
    export.add_argument("--overwrite", action="store_true", help="replace an export already in --out")
    export.set_defaults(func=cmd_export_onnx)
    train_parser = sub.add_parser("train", help="train a model")
    evaluate_parser = sub.add_parser("evaluate", help="evaluate models with the authors' protocol")
    if command == "train":
        add_train_arguments(train_parser)
    elif command == "evaluate":
        from . import evaluate
        evaluate.add_arguments(evaluate_parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser(argv).parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error argparse already printed (2)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    try:
        return args.func(args)
    except (ValueError, OSError) as err:  # one line, no traceback: every input and usage problem
        lines = str(err).strip().splitlines() or [type(err).__name__]
        # an error re-raised from a DataLoader worker carries the worker's traceback: keep its last line
        print(f"error: {lines[-1] if 'Traceback' in str(err) else lines[0]}", file=sys.stderr)
        return EXIT_USAGE
