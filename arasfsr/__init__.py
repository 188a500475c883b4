"""arasfsr: arbitrary-scale, arbitrary-resolution face super-resolution with implicit networks."""
from .coords import make_cell, make_coord
from .inference import upscale
from .model import Features, ModelConfig, SRModel, create_model
from .weights import load_model, save_model

__version__ = "0.1.0"
__all__ = ["create_model", "load_model", "save_model", "upscale", "ModelConfig", "SRModel",
           "Features", "make_coord", "make_cell", "__version__"]
