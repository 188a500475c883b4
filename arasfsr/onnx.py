"""ONNX export, and rendering with onnxruntime alone (no torch).

    python -m arasfsr export-onnx arasfsr -o onnx/arasfsr         # needs torch, onnx, onnxscript
    import arasfsr.onnx
    image = arasfsr.onnx.upscale("onnx/arasfsr", "face.png", scale=4)   # needs onnxruntime only

A model becomes two graphs with dynamic sizes, as the torch path splits it:

- `encoder.onnx`: the LR image (1, 3, h, w) in [0, 1] -> the per-LR-pixel decoder terms
  `projection` (1, h*w, D) (the first layer's part that depends only on the LR pixel, or LTE's
  amplitudes and frequencies) and the normalised image `lr_norm` (1, 3, h, w) for the skip.
- `decoder.onnx`: (projection, lr_norm, coord (1, N, 2), cell (1, N, 2)) -> RGB (1, N, 3) in
  [0, 1] units, unclamped: the local ensemble, GCM, the MLP, the skip, as `SRModel.query`.

`model.json` beside them names the model and what it was trained on. `upscale` reads the image with
the package's intake (`arasfsr.io`, torch-free), encodes the whole input once, and queries the
output grid in chunks of `chunk_size` pixel centres, so the decoder's memory is bounded by the
chunk. The encoder is not tiled here (the torch path tiles inputs over 2 x 192^2 px), so inputs are
limited to `MAX_ONNX_INPUT_PIXELS`; larger ones get a one-line refusal that points to the torch
path. LFE runs with z = mu (deterministic), as `arasfsr.upscale` does by default. Outputs match
torch's within a thousandth of an 8-bit level before rounding (`tests/test_onnx.py`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .io import ImageSource, merge_image, read_planes
from .sizes import output_size

FORMAT = "arasfsr-onnx"
FORMAT_VERSION = 1
FILES = ("encoder.onnx", "decoder.onnx", "model.json")
MAX_ONNX_INPUT_PIXELS = 512 * 512   # the encoder runs on the whole input (not tiled)
DEFAULT_CHUNK = 4096                # queries per decoder call (measured: 4096 as fast as 1024, 65536 2.8x slower)


def _check_export_dependencies() -> None:
    missing = [name for name in ("onnx", "onnxscript") if not _importable(name)]
    if missing:
        raise ImportError(f"export-onnx needs {' and '.join(missing)}: pip install 'arasfsr[export]'")


def _importable(name: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(name) is not None


def export(model_or_name, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write `encoder.onnx`, `decoder.onnx` and `model.json` for a model (an SRModel, a shipped
    name or a weight file path) into `out_dir`; returns the paths. Needs torch, onnx and onnxscript."""
    _check_export_dependencies()
    import torch

    from . import __version__
    from .coords import sample_at
    from .weights import load_model

    model = load_model(model_or_name, device="cpu") if not isinstance(model_or_name, torch.nn.Module) else model_or_name
    model = model.cpu().eval()
    for p in model.parameters():
        p.requires_grad_(False)

    class Encoder(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, lr):
            features = self.net.encode(lr, sample=False, project=True)
            return features.projection, features.lr_norm

    class Decoder(torch.nn.Module):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def forward(self, projection, lr_norm, coord, cell):
            net = self.net
            with torch.enable_grad():  # the straight path of forward_fast: no worker blocks to trace
                pred = net.decoder.forward_fast(projection, lr_norm.shape[-2:], coord, cell)
            if net.config.use_skip:
                pred = pred + sample_at(lr_norm, coord, mode="bilinear", padding_mode="border")
            return pred * net.config.norm_std + net.config.norm_mean

    import shutil
    import tempfile
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out))  # written whole, then moved in place
    paths = {name: staging / name for name in FILES}
    h, w = torch.export.Dim("h", min=4, max=4096), torch.export.Dim("w", min=4, max=4096)
    pixels = torch.export.Dim("pixels", min=16, max=4096 * 4096)
    queries = torch.export.Dim("queries", min=1, max=2 ** 26)
    try:
        try:
            _export_graphs(Encoder(model), Decoder(model), paths, (h, w, pixels, queries))
        except (RuntimeError, TypeError, ValueError) as err:  # torch.onnx's OnnxExporterError is a RuntimeError
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise ValueError(f"{model_or_name}: the ONNX exporter failed ({first[:300]})") from None
        info = {"format": FORMAT, "format_version": FORMAT_VERSION, "arasfsr_version": __version__,
                "model": model.config.name,
                "source": str(model_or_name) if isinstance(model_or_name, (str, Path)) else None,
                "training": model.training_info, "lfe": "z = mu (deterministic)",
                "max_input_pixels": MAX_ONNX_INPUT_PIXELS}
        paths["model.json"].write_text(json.dumps(info, indent=1))
        final = {name: out / name for name in FILES}
        for name in FILES:
            os.replace(paths[name], final[name])
        return final
    finally:
        shutil.rmtree(staging, ignore_errors=True)  # a failed export leaves the folder as it was


def _export_graphs(encoder, decoder, paths: dict[str, Path], dims) -> None:
    """Trace both halves at small example sizes with symbolic h, w and query counts."""
    import contextlib
    import io as _io
    import warnings

    import torch

    from .coords import make_cell, make_coord
    h, w, pixels, queries = dims
    lr = torch.rand(1, 3, 24, 20, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings(), contextlib.redirect_stdout(_io.StringIO()):  # the exporter's chatter
        warnings.simplefilter("ignore")
        torch.onnx.export(encoder, (lr,), str(paths["encoder.onnx"]), dynamic_shapes=({2: h, 3: w},),
                          input_names=["lr"], output_names=["projection", "lr_norm"], dynamo=True,
                          optimize=True, verbose=False, external_data=False)
        with torch.no_grad():
            projection, lr_norm = encoder(lr)
        coord = make_coord((50, 44))[None]
        cell = make_cell((50, 44)).expand_as(coord).contiguous()
        torch.onnx.export(decoder, (projection, lr_norm, coord, cell), str(paths["decoder.onnx"]),
                          dynamic_shapes=({1: pixels}, {2: h, 3: w}, {1: queries}, {1: queries}),
                          input_names=["projection", "lr_norm", "coord", "cell"], output_names=["rgb"],
                          dynamo=True, optimize=True, verbose=False, external_data=False)


class OnnxModel:
    """The two graphs of an exported model, opened with onnxruntime (`threads` intra-op threads)."""

    def __init__(self, folder: str | os.PathLike, threads: int = 1):
        try:
            import onnxruntime
        except ImportError:
            raise ImportError("arasfsr.onnx needs onnxruntime: pip install 'arasfsr[onnx]'") from None
        folder = Path(folder)
        missing = [name for name in FILES if not (folder / name).is_file()]
        if missing:
            raise FileNotFoundError(f"{folder} is not an exported model: {', '.join(missing)} missing "
                                    "(write one with: python -m arasfsr export-onnx NAME -o DIR)")
        try:
            self.info = json.loads((folder / "model.json").read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{folder / 'model.json'}: not readable JSON ({err})") from None
        if not isinstance(self.info, dict) or self.info.get("format") != FORMAT:
            raise ValueError(f"{folder / 'model.json'}: not an {FORMAT} description")
        if int(self.info.get("format_version", 0)) > FORMAT_VERSION:
            raise ValueError(f"{folder}: written by a newer arasfsr (format {self.info['format_version']}); "
                             "upgrade arasfsr")
        if not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a positive integer, got {threads!r}")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors
        refusals = tuple(getattr(ort_errors, name) for name in (
            "Fail", "InvalidArgument", "InvalidProtobuf", "InvalidGraph", "NoSuchFile", "RuntimeException",
            "NotImplemented") if hasattr(ort_errors, name)) + (OSError, RuntimeError)
        try:
            self.encoder = onnxruntime.InferenceSession(str(folder / "encoder.onnx"), options,
                                                        providers=["CPUExecutionProvider"])
            self.decoder = onnxruntime.InferenceSession(str(folder / "decoder.onnx"), options,
                                                        providers=["CPUExecutionProvider"])
        except refusals as err:  # onnxruntime's own exception types, for damaged graphs
            raise ValueError(f"{folder}: onnxruntime cannot open the graphs ({str(err).splitlines()[0]})") from None
        self.max_input_pixels = int(self.info.get("max_input_pixels", MAX_ONNX_INPUT_PIXELS))

    def render(self, rgb: np.ndarray, out_size: tuple[int, int], chunk_size: int = DEFAULT_CHUNK,
               progress=None) -> np.ndarray:
        """(h, w, 3) float32 in [0, 1] -> (H, W, 3) float32 in [0, 1], queried in chunks."""
        lr = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32)
        projection, lr_norm = self.encoder.run(None, {"lr": lr})
        height, width = out_size
        total = height * width
        cell = np.array([2.0 / height, 2.0 / width], dtype=np.float32)
        out = np.empty((total, 3), dtype=np.float32)
        for start in range(0, total, chunk_size):
            flat = np.arange(start, min(total, start + chunk_size))
            coord = grid_coord(out_size, flat)[None]
            cells = np.broadcast_to(cell, coord.shape).copy()
            out[start:start + len(flat)] = self.decoder.run(
                None, {"projection": projection, "lr_norm": lr_norm, "coord": coord, "cell": cells})[0][0]
            if progress is not None:
                progress(start + len(flat), total)
        return np.clip(out, 0.0, 1.0).reshape(height, width, 3)


def pixel_centres(n: int, index: np.ndarray) -> np.ndarray:
    """Centres of pixels `index` on an axis of n pixels in [-1, 1], in float32, computed as
    `arasfsr.coords.pixel_centres` computes them (so that the coordinates are the same numbers)."""
    r = 1.0 / n
    return (-1 + r + 2 * r * index.astype(np.float32)).astype(np.float32)


def grid_coord(shape: tuple[int, int], flat: np.ndarray) -> np.ndarray:
    """(row, col) centres of the pixels with row-major flat indices `flat` of an H x W grid: (N, 2)."""
    height, width = shape
    return np.stack([pixel_centres(height, flat // width), pixel_centres(width, flat % width)], axis=-1)


def upscale(folder: str | os.PathLike | OnnxModel, image: ImageSource, scale: float | None = None,
            size: tuple[int | None, int | None] | None = None, chunk_size: int = DEFAULT_CHUNK,
            threads: int = 1, progress=None):
    """Super-resolve `image` with an exported model (onnxruntime only; torch is not imported).

    Args:
        folder: what `export` wrote (or an open `OnnxModel`).
        image, scale, size: as `arasfsr.upscale` (a path, PIL image or array; one of scale / size).
        chunk_size: output pixels per decoder call (bounds the decoder's memory).
        threads: onnxruntime's intra-op threads (1: the fast choice on a shared machine).
    Returns:
        A PIL image in the input's mode family, as `arasfsr.upscale`.
    Raises:
        ValueError / FileNotFoundError with a one-line message (bad image, bad request, an input
        over `MAX_ONNX_INPUT_PIXELS`, a folder that is not an export).
    """
    if not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive number of queries, got {chunk_size!r}")
    net = folder if isinstance(folder, OnnxModel) else OnnxModel(folder, threads=threads)
    rgb, alpha, mode, _ = read_planes(image)
    in_h, in_w = rgb.shape[:2]
    out_h, out_w = output_size((in_h, in_w), scale, size)
    if in_h * in_w > net.max_input_pixels:
        raise ValueError(f"input has {in_h * in_w} pixels ({in_h}x{in_w}), over the ONNX path's "
                         f"{net.max_input_pixels} (its encoder is not tiled): use arasfsr.upscale, which tiles")
    if (out_h, out_w) == (in_h, in_w):  # scale 1: the input itself, as arasfsr.upscale
        return merge_image(rgb, alpha, mode)
    if alpha is not None:
        from PIL import Image
        alpha = np.asarray(Image.fromarray(alpha, "F").resize((out_w, out_h), Image.BICUBIC))
    return merge_image(net.render(rgb, (out_h, out_w), chunk_size, progress), alpha, mode)
