"""Natural photographs (no faces): the set the `natural` model learns from and is judged on.

    python -m arasfsr.data.natural --out data/natural

LIIF and LTE learn from DIV2K; this project cannot download it, so it builds its own from the
photographs that Debian's wallpaper packages ship (`SOURCES`: .deb files from deb.debian.org,
pinned by sha256, read without unpacking, cached in `$ARASFSR_CACHE` or .cache/arasfsr/, never
committed). Every picture of those packages was looked at; only photographs are kept, no renders,
illustrations or logos (`DROPPED` lists what was left out and why). `mate-backgrounds` and
`ukui-wallpapers` are reserved for independent evaluation and are not used.

Each photograph is first reduced by `REDUCE` (PIL Lanczos with antialiasing) so that the wallpapers'
own JPEG artefacts and sensor noise fall below a pixel; the masters are then cut into square
`TILE` px tiles (train: stride TILE / 2, so neighbouring tiles overlap by half, as random crops
would; val and test: non-overlapping). 512 px is what `SRBatchCollate` needs for a 64 px input at
x8. The split is by photographer, so no scene is in two splits. Output:

    out/{train,val,test}/<photo>_<row>_<col>.png   and   out/manifest.json (sources, licences, tiles)

`FaceFolder(out, split="train")` reads it like the face set (the name says faces; the tiles are
just square masters), so `python -m arasfsr train --data data/natural` trains on it.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

from PIL import Image

from .folder import MANIFEST, SPLITS, load_rgb
from .offline import default_cache_dir, download, read_member

TILE = 512
REDUCE = {"lomiri": 2.0, "plasma": 2.0, "budgie": 2.0, "gnome": 2.0}
_POOL = "http://deb.debian.org/debian/pool/main/"
MEMBERS = {"plasma": "./usr/share/wallpapers/{}/contents/images/2560x1600.jpg",
           "lomiri": "./usr/share/backgrounds/{}.jpg",
           "budgie": "./usr/share/backgrounds/budgie/{}.jpg",
           "gnome": "./usr/share/backgrounds/gnome/{}.jpg"}

# (package, deb url, sha256, licence, {member: (photo name, split, photographer)})
SOURCES = (
    {"package": "lomiri-wallpapers-16.04 20.04.0-2 (Debian 12)", "group": "lomiri",
     "url": _POOL + "l/lomiri-wallpapers/lomiri-wallpapers-16.04_20.04.0-2_all.deb",
     "sha256": "a99ff6a3bfe451e4cc0682ecb3cc82e71740626d59e4845ae34a0a0e45421eab",
     "licence": "per photo, from the package's debian/copyright",
     "photos": {
         "Bridge_by_Sander_Klootwijk": ("test", "Sander Klootwijk", "CC-BY-SA-4.0"),
         "Dragonfly_by_Bolly": ("val", "Bolly", "CC-BY-SA-4.0"),
         "Picture_0B_by_freespace": ("train", "Trevor Freespace", "CC-BY-4.0"),
         "Picture_1A_by_freespace": ("train", "Trevor Freespace", "CC-BY-4.0"),
         "Wine_by_Jakkub_Mede": ("test", "Jakub Mede", "CC-BY-4.0"),
         "aitzgorri_by_Aitzol_Berasategi": ("train", "Aitzol Berasategi", "CC-BY-4.0"),
         "free_by_Peter_Nerlich": ("train", "Peter Nerlich", "CC-BY-SA-4.0"),
         "friends_by_Aitzol_Berasategi": ("train", "Aitzol Berasategi", "CC-BY-4.0"),
         "greentock_by_Peter_Nerlich": ("train", "Peter Nerlich", "CC-BY-SA-4.0"),
         "life_by_Aitzol_Berasategi": ("train", "Aitzol Berasategi", "CC-BY-4.0"),
         "picosdeeuropa_by_Aitzol_Berasategi": ("train", "Aitzol Berasategi", "CC-BY-4.0"),
         "seeding_by_Clements_Engelhardt": ("test", "Clemens Engelhardt", "CC0-1.0"),
         "sunset_by_Aitzol_Berasategi": ("train", "Aitzol Berasategi", "CC-BY-4.0"),
     }},
    {"package": "lomiri-wallpapers-20.04 20.04.0-2 (Debian 12)", "group": "lomiri",
     "url": _POOL + "l/lomiri-wallpapers/lomiri-wallpapers-20.04_20.04.0-2_all.deb",
     "sha256": "d44e89b8473aafe64a5b678f014862dc31335aaaf18665c544d985d854f1a709",
     "licence": "per photo, from the package's debian/copyright",
     "photos": {"Kleiber_by_Lukas_Baubkus": ("test", "Lukas Baubkus", "CC-BY-SA-3.0")}},
    {"package": "plasma-workspace-wallpapers 4:5.27.5-2 (Debian 12)", "group": "plasma",
     "url": _POOL + "p/plasma-workspace-wallpapers/plasma-workspace-wallpapers_5.27.5-2_all.deb",
     "sha256": "32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b",
     "licence": "LGPL-3.0 (each wallpaper's metadata.json)",
     "photos": {
         "ColdRipple": ("train", "Risto Saukonpää", "LGPL-3.0"),
         "DarkestHour": ("train", "Risto Saukonpää", "LGPL-3.0"),
         "Kite": ("train", "Risto Saukonpää", "LGPL-3.0"),
         "OneStandsOut": ("train", "Risto Saukonpää", "LGPL-3.0"),
         "Path": ("train", "Risto Saukonpää", "LGPL-3.0"),
         "summer_1am": ("train", "Risto Saukonpää", "LGPL-3.0"),
         "FallenLeaf": ("val", "Martin Klapetek", "LGPL-3.0"),
         "Grey": ("val", "Sigi Sagi", "LGPL-3.0"),
         "BytheWater": ("test", "Maciej Wiklo", "LGPL-3.0"),
         "ColorfulCups": ("test", "Dmitri Popov", "LGPL-3.0"),
         "EveningGlow": ("test", "Ian Hex", "LGPL-3.0"),
     }},
    # added for issue 18, train only: the val and test photos stay those of 0.5
    {"package": "budgie-backgrounds 3.0-1 (Debian 13)", "group": "budgie",
     "url": _POOL + "b/budgie-backgrounds/budgie-backgrounds_3.0-1_all.deb",
     "sha256": "b91c2d5209558bc11d8d3a161f22a608857e3f8c735980cfab0d6650b03014ca",
     "licence": "CC0-1.0 (debian/copyright: Files: *)",
     "photos": {name: ("train", "Budgie Desktop Developers (photographers not named)", "CC0-1.0") for name in (
         "abstract-spiral", "beacon-street-sunset", "blue-periwinkle", "canyon-wren", "casa-mila",
         "extreme-desert-hike", "high-trestle-trail", "lake-sherburne", "oakland-zoo-otters", "perched-osprey",
         "piazza-gae-aulenti", "roman-colosseum", "singaporean-cityscape", "tea-gardens")}},
    {"package": "gnome-backgrounds 3.38.0-1 (Debian 11)", "group": "gnome",
     "url": _POOL + "g/gnome-backgrounds/gnome-backgrounds_3.38.0-1_all.deb",
     "sha256": "76d8a4c52e5f346d9cb08bc8a1f58ad443d2bae211721af8a7248457c7a520e8",
     "licence": "per photo, from the package's copyright file",
     "photos": {"Dark_Ivy": ("train", "Garrett LeSage", "CC-BY-SA-3.0"),
                "Road": ("train", "Garrett LeSage", "CC-BY-SA-3.0")}},
)
FIRST_SET = SOURCES[:3]  # the set of releases 0.5-0.9 (15 train photos): `--first-set`
DROPPED = {
    "gnome-backgrounds 43.1-1": "renders and patterns only (adwaita, grid, pixels, truchet, ...)",
    "sway-backgrounds 1.7-6": "one logo illustration in eight sizes",
    "lomiri-wallpapers 20.04.0-2": "the Ubuntu render (warty-final)",
    "lomiri-wallpapers-16.04": "analogpattern (a texture), umang (a gradient render)",
    "lomiri-wallpapers-20.04": "Fossa, Infinite-Sea, Painting-Colors (renders and an illustration)",
    "plasma-workspace-wallpapers": "the renders and illustrations (Altai, Autumn, Canopee, Cascade, Cluster, "
                                   "Elarun, Flow, FlyingKonqui, Honeywave, IceCold, Kay, Kokkini, MilkyWay, "
                                   "Opal, PastelHills, Patak, SafeLanding, Shell, Volna)",
    "budgie-backgrounds 3.0-1": "ocean-waves (a painting), saturnian-profile (a space probe's picture, "
                                "mostly black), valley-midnight and waves-midnight (renders)",
    "gnome-backgrounds 3.38.0-1": "the renders and a painting (Acrylic, Endless-shapes, LightWaves, Stripes, "
                                  "Symbolics-1/-2, Wood, adwaita-*); ColdWarm, Icetwigs and SeaSunset are "
                                  "photographs, but the copyright file names no author or licence for them",
    "oxygen-wallpapers 4:6.7.4-1": "renders only (Air, Horos)",
    "breeze-wallpaper 6.3.5-1": "one render (Next, light and dark) in many sizes",
    "mate-backgrounds, ukui-wallpapers": "reserved for independent evaluation",
}


def _member(source: dict, name: str) -> str:
    return MEMBERS[source["group"]].format(name)


def fetch(cache: Path, sources=SOURCES):
    """Yield (source, photo name, RGB master) for every photo, each reduced by its group's REDUCE."""
    for source in sources:
        try:
            archive = download(source["url"], source["sha256"], cache / "natural")
        except RuntimeError as error:
            raise RuntimeError(f"{source['package']}: {str(error).split('; to build')[0]}; Debian's "
                               "package mirror must be reachable to build the set once") from None
        for name in source["photos"]:
            photo = load_rgb(Image.open(io.BytesIO(read_member(archive, _member(source, name)))))
            factor = REDUCE[source["group"]]
            if factor != 1:
                size = (round(photo.width / factor), round(photo.height / factor))
                photo = photo.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
            yield source, name, photo


def tiles(photo: Image.Image, tile: int, stride: int) -> list[tuple[int, int, Image.Image]]:
    """Square tiles (row, col, image) on a grid with `stride`, centred in the photo."""
    w, h = photo.size
    if min(w, h) < tile:
        return []
    rows, cols = (h - tile) // stride + 1, (w - tile) // stride + 1
    top0, left0 = (h - tile - (rows - 1) * stride) // 2, (w - tile - (cols - 1) * stride) // 2
    return [(r, c, photo.crop((left0 + c * stride, top0 + r * stride, left0 + c * stride + tile,
                               top0 + r * stride + tile)))
            for r in range(rows) for c in range(cols)]


def build(out: str | Path, cache: str | Path | None = None, tile: int = TILE, sources=SOURCES,
          progress: bool = True) -> dict:
    """Write the tiles and the manifest; returns the manifest."""
    out = Path(out)
    cache = Path(cache) if cache else default_cache_dir()
    for split in SPLITS:
        (out / split).mkdir(parents=True, exist_ok=True)
    files, photos = [], []
    for source, name, photo in fetch(cache, sources):
        split, author, licence = source["photos"][name]
        stride = tile // 2 if split == "train" else tile
        cut = tiles(photo, tile, stride)
        for r, c, image in cut:
            rel = f"{split}/{name}_{r}_{c}.png"
            image.save(out / rel, optimize=False)
            files.append({"name": rel, "split": split, "size": tile, "identity": name,
                          "source": f"{source['package']}:{_member(source, name)}"})
        photos.append({"photo": name, "package": source["package"], "split": split, "author": author,
                       "licence": licence, "master_size": list(photo.size), "tiles": len(cut)})
        if progress:
            print(f"{split:5s} {name}: {photo.width}x{photo.height} -> {len(cut)} tiles", file=sys.stderr)
    counts = {s: sum(f["split"] == s for f in files) for s in SPLITS}
    manifest = {"version": 1, "kind": "natural photographs without faces, square tiles (arasfsr.data.natural)",
                "tile": tile, "reduce": REDUCE, "split_rule": "by photographer; train tiles overlap by half",
                "summary": counts, "sources": [{k: v for k, v in s.items() if k != "photos"} for s in sources],
                "photos": photos, "dropped": DROPPED, "files": files}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1, ensure_ascii=False), encoding="utf-8")
    return manifest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m arasfsr.data.natural", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="data/natural", help="output folder (default: data/natural)")
    parser.add_argument("--cache", default=None, help="download cache (default: $ARASFSR_CACHE or .cache/arasfsr)")
    parser.add_argument("--tile", type=int, default=TILE, help=f"tile side in px (default {TILE})")
    parser.add_argument("--first-set", action="store_true",
                        help="only the packages of releases 0.5-0.9 (15 train photos; the same val and test), "
                             "to reproduce the files trained on them")
    args = parser.parse_args(argv)
    if args.tile < 64:
        parser.error("--tile must be at least 64 px")
    try:
        manifest = build(args.out, args.cache, tile=args.tile, sources=FIRST_SET if args.first_set else SOURCES)
    except (RuntimeError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{args.out}: " + ", ".join(f"{n} {s} tiles" for s, n in manifest["summary"].items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
