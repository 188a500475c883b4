"""Face data: folders, Hugging Face mirrors, training batches and evaluation pairs.

Importing this package loads neither `datasets` nor OpenCV; the offline face-set builder lives in
`arasfsr.data.offline` (run it with `python -m arasfsr.data.offline --out data/faces`).
"""
from .folder import FaceFolder, deterministic_split, list_images, load_rgb
from .hf import authors_split, hub_reachable, load_hf_faces, prepare_celebahq
from .samples import SRBatchCollate, make_eval_pair, to_tensor

__all__ = ["FaceFolder", "deterministic_split", "list_images", "load_rgb", "load_hf_faces",
           "authors_split", "hub_reachable", "prepare_celebahq", "SRBatchCollate", "make_eval_pair", "to_tensor"]
