"""arasfsr: arbitrary-scale, arbitrary-resolution face super-resolution with implicit networks.

    import arasfsr
    model = arasfsr.load_model("arasfsr")            # shipped names: arasfsr.list_models()
    image = arasfsr.upscale(model, "face.png", scale=3.7)

Importing the package does no work: the names below load their module on first use (so that
`python -m arasfsr --help` answers before torch is imported).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.6.0"  # the only place the version is written (pyproject.toml reads it)

# public name -> the module that defines it
_EXPORTS = {
    "create_model": "model", "ModelConfig": "model", "SRModel": "model", "Features": "model",
    "load_model": "weights", "save_model": "weights", "list_models": "weights",
    "upscale": "inference", "output_size": "sizes", "read_image": "io",
    "make_coord": "coords", "make_cell": "coords",
}
_SUBMODULES = {"cli", "coords", "data", "decoder", "degrade", "encoder", "evaluate", "faces", "gcm",
               "inference", "io", "lfe", "metrics", "model", "presets", "restore", "sizes", "threads", "train",
               "weights", "damage", "augment", "onnx"}

__all__ = [*_EXPORTS, "__version__"]

if TYPE_CHECKING:
    from .coords import make_cell, make_coord
    from .inference import upscale
    from .io import read_image
    from .model import Features, ModelConfig, SRModel, create_model
    from .sizes import output_size
    from .weights import list_models, load_model, save_model


def __getattr__(name: str):
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'arasfsr' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS, *_SUBMODULES])
