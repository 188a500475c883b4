"""The models a visitor can choose, their weight files, a load-once cache, and the model card.

Choices map to weight files in `arasfsr.weights.WEIGHTS_DIR`. The optional ones ("Real photo (JPEG,
noise)", "Badly compressed photo", "Photo (no face needed)") are offered only when their files exist;
the natural-photo model also draws the background of whole photos (`background`).
"""
from __future__ import annotations

import threading
from pathlib import Path

from arasfsr import weights

from .errors import InputError, quote

AUTO = "Auto (by the input's damage)"
REAL_PHOTO = "Real photo (JPEG, noise)"
REAL_PHOTO_FILE = weights.DEFAULT_WEIGHTS["arasfsr-real"]
PHOTO = "Photo (no face needed)"   # the natural-photo weights: any picture, no face prior
HEAVY = "Badly compressed photo"   # the weights Auto picks for heavy JPEG damage
FAST = "ARASFSR fast (distilled)"  # arasfsr-fast: Auto's choice for large clean outputs, and the preview
# label -> weight file name in WEIGHTS_DIR, or "bicubic"
CHOICES = {AUTO: "auto", "ARASFSR": weights.DEFAULT_WEIGHTS["arasfsr"],
           FAST: weights.DEFAULT_WEIGHTS["arasfsr-fast"], "LIIF": weights.DEFAULT_WEIGHTS["liif"],
           "LTE": weights.DEFAULT_WEIGHTS["lte"], REAL_PHOTO: REAL_PHOTO_FILE,
           HEAVY: weights.DEFAULT_WEIGHTS["arasfsr-heavy"], PHOTO: weights.DEFAULT_WEIGHTS["natural"],
           "Bicubic": "bicubic"}
SHORT = {AUTO: "auto", "ARASFSR": "arasfsr", FAST: "arasfsr-fast", "LIIF": "liif", "LTE": "lte", REAL_PHOTO: "arasfsr-real",
         HEAVY: "arasfsr-heavy", PHOTO: "natural", "Bicubic": "bicubic"}
DEFAULT_MODEL = "ARASFSR"   # loaded at start; the robustness view's default
FACE_DEFAULT = AUTO         # the Face tab's and the Whole-photo tab's default
OPTIONAL = (REAL_PHOTO, HEAVY, PHOTO, FAST)   # hidden, not reported missing, when its file is absent
NOT_FOR_FACES_IN_PHOTOS = (PHOTO,)      # draws the background in whole-photo mode, not the faces

# The model card's limits, on the page in two sentences.
LIMITS = ("Trained on small aligned, frontal face crops: other framings, poses and whole scenes work less "
          "well, and the details it adds are plausible, not the person's true detail, so never use a result "
          "to identify anyone. The training faces are a few hundred studio headshots, mostly of young men, so "
          "expect worse results on other ages, genders, skin tones and lighting.")

_models: dict[str, object] = {}
_models_lock = threading.Lock()


def model_path(label: str) -> Path:
    return Path(weights.WEIGHTS_DIR) / CHOICES[label]


def available_models() -> dict[str, bool]:
    """Each choice and whether it can run (its weight file exists; bicubic always can)."""
    return {label: CHOICES[label] in ("bicubic", "auto") or model_path(label).is_file() for label in CHOICES}


def face_choices() -> list[str]:
    """The dropdown's entries: every choice but optional ones whose file is missing."""
    available = available_models()
    return [label for label in CHOICES if available[label] or label not in OPTIONAL]


def photo_choices() -> list[str]:
    """Whole-photo mode needs a face model (bicubic, or the natural-photo model, draws its background)."""
    return [label for label in face_choices() if CHOICES[label] != "bicubic" and label not in NOT_FOR_FACES_IN_PHOTOS]


def background(image=None, found=None) -> tuple[object, str]:
    """What draws everything but the faces in whole-photo mode, and why: the natural-photo model
    when its file is installed and the photo is not heavily compressed (`arasfsr.damage.
    choose_background`, measured on photos from other sources), else ("bicubic", the reason).
    `image`: the photo as `demo.images.load_image` read it (or its path); `found`: its
    `arasfsr.damage.assess`, when known already."""
    if not available_models()[PHOTO]:
        return "bicubic", "bicubic interpolation (the natural-photo weights are not installed)"
    if image is not None or found is not None:
        from arasfsr import damage
        if found is None:
            found = damage.choose(image, mode="restore")[1]
        name, reason = damage.choose_background(found)
        if name == "bicubic":
            return "bicubic", f"bicubic interpolation ({reason})"
    fast = Path(weights.WEIGHTS_DIR) / weights.DEFAULT_WEIGHTS["natural-fast"]
    if fast.is_file():  # its distilled student: about half the full model's time (MODEL_CARD.md, "Unreleased")
        with _models_lock:
            if str(fast) not in _models:
                _models[str(fast)] = weights.load_model(fast).eval()
            return _models[str(fast)], "the natural-photo model's distilled student (natural-fast)"
    return get_model(PHOTO), f"the natural-photo model ({SHORT[PHOTO]}, LTE trained on photographs)"


def photo_default() -> str:
    """Auto: the weights are chosen per photo by its damage (`arasfsr.damage`)."""
    return AUTO


def resolve(label: str, image, mode: str = "upscale", found=None, out_pixels: int = 0) -> tuple[str, str]:
    """(the choice to run, a note for the page): Auto becomes the choice that `arasfsr.damage.choose`
    makes for this input (JPEG quality from its tables, or from its pixels), with its reason; where
    that is ARASFSR and the output has more than `limits.FAST_ABOVE_PIXELS` (face mode), its
    distilled student draws it instead. `image`: the input as `demo.images.load_image` read it (or
    its path); `found`: its damage, when known; `out_pixels`: the output's pixels (0: unknown)."""
    if label != AUTO:
        return label, ""
    from arasfsr import damage

    from . import limits
    name, found = damage.choose(image, mode=mode, found=found)
    chosen = next((k for k, v in SHORT.items() if v == name), DEFAULT_MODEL)
    note = damage.describe(name, found)
    if not available_models().get(chosen, False):
        chosen, note = DEFAULT_MODEL, note + f" ({chosen} is not installed here: {DEFAULT_MODEL} instead)"
    if chosen == DEFAULT_MODEL and out_pixels > limits.FAST_ABOVE_PIXELS and available_models()[FAST]:
        chosen, note = FAST, (note + f"; the output is larger than {limits.pixels_text(limits.FAST_ABOVE_PIXELS)}, so "
                              f"its distilled student draws it, {limits.FAST_SPEEDUP}x faster ('{FULL_BUTTON}' runs "
                              f"{DEFAULT_MODEL} itself)")
    return chosen, f"Auto chose {chosen}: {note}"


def detail_for(label: str, found) -> float:
    """The share of the model's detail over bicubic kept: for Auto, the per-input choice
    (`arasfsr.damage.choose_detail`: 0.7 on JPEG inputs, which `resolve`'s note states); a model
    chosen by name draws with all of it. `found`: the input's `arasfsr.damage.assess`."""
    if label != AUTO:
        return 1.0
    from arasfsr import damage
    return damage.choose_detail(found)


FULL_BUTTON = "Full model"   # the Face tab's button that renders with ARASFSR itself


def preview_choice(chosen: str, out_pixels: int) -> str | None:
    """The model that draws a preview before `chosen` runs: the distilled student, where ARASFSR
    draws an output over `limits.PREVIEW_ABOVE_PIXELS` and the student is installed."""
    from . import limits
    if chosen == DEFAULT_MODEL and out_pixels > limits.PREVIEW_ABOVE_PIXELS and available_models()[FAST]:
        return FAST
    return None


def get_model(label: str):
    """The cached model for a choice ("bicubic" for Bicubic), loaded on first use."""
    if label not in CHOICES:
        raise InputError(f"Unknown model {quote(label)}; choose one of {', '.join(face_choices())}.")
    if CHOICES[label] == "bicubic":
        return "bicubic"
    if CHOICES[label] == "auto":
        raise InputError("Auto picks its model per input: resolve it with the input first (demo.models.resolve).")
    path = model_path(label)
    key = str(path)
    with _models_lock:
        if key not in _models:
            if not path.is_file():
                raise InputError(f"The {label} weights are not installed on this server: {path.name} is missing "
                                 f"from the weights folder ({path.parent.name}/). Choose another model.")
            _models[key] = weights.load_model(path).eval()
        return _models[key]


def model_card() -> str:
    """A Markdown table of the models with what their weight files say they were trained on."""
    rows = ["| Model | Weights | Trained on |", "|---|---|---|"]
    for label, name in CHOICES.items():
        if name == "bicubic":
            rows.append("| Bicubic | none | Pillow's bicubic resize: the baseline every model must beat |")
            continue
        if name == "auto":
            rows.append(f"| {AUTO} | chosen per input | clean inputs: ARASFSR; JPEG or once-JPEG inputs: the weights "
                        "measured best on such faces from other sources (or bicubic where none helps); the page "
                        "says which and why |")
            continue
        path = model_path(label)
        if not path.is_file():
            if label not in OPTIONAL:
                rows.append(f"| {label} | `{path.name}` missing | not available on this server |")
            continue
        training = weights.read_metadata(path)["training"]
        facts = [str(training[k]) for k in ("data",) if training.get(k)]
        if training.get("scale_range"):
            facts.append(f"scales {training['scale_range'][0]}-{training['scale_range'][1]}")
        if training.get("input_sizes"):
            facts.append(f"inputs {training['input_sizes'][0]}-{training['input_sizes'][-1]} px")
        if training.get("steps"):
            facts.append(f"{training['steps']} steps")
        rows.append(f"| {label} | `{path.name}` | {'; '.join(facts) or 'no description in the file'} |")
    return "\n".join(rows)
