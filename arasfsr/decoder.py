"""The implicit query: from a grid of latent codes to the RGB of any continuous coordinate.

Shapes: latent (B, C, h, w); coord (B, N, 2) in [-1, 1] (row, col); cell (B, N, 2) = output
pixel size. Every decoder returns (B, N, 3) in normalised units (before the skip).

Local ensemble: each query reads the four latent codes around it. Corner t in
(-1,-1), (-1,+1), (+1,-1), (+1,+1) shifts the query by half an LR pixel towards that corner and
takes the nearest latent; the four predictions are blended with area weights (see
`local_ensemble_corners`).

`LocalImplicitDecoder` is LIIF's and ARASFSR's decoder; it has two formulations:
- `forward_reference`: the straightforward one (as the papers' code): per corner, unfold the
  latent (3x3 neighbourhood, 9C numbers), concatenate the decoder input, run the whole MLP.
- `forward_fast`: same numbers, less work. The first layer's product with the unfolded latent
  (and, with GCM, with the latent centre x_t) is the same for every query that reads that LR
  pixel, so it is computed once per LR pixel as a 3x3 convolution (`project`); per query only a
  rank-4 update [rel, rel_cell] remains. The sine stream runs once per query, and the four
  corners go through each layer as one matrix product.

`arasfsr-fast` (issue 21) moves the decoder's capacity from the query to the LR pixel, as LMF
(latent modulated functions, CVPR 2024) does: a per-pixel network (`pixel_net`: a 3x3 conv of the
latent to `projection_hidden` channels, ReLU, a 1x1 conv to the hidden width) replaces the first
layer's unfolded-latent product and runs once per LR pixel inside `project`; per query and corner
only a narrow MLP remains (48 wide, 3 layers, GCM's sine stream as wide), 10x fewer FLOPs than the
default decoder's. The fast path is the same code (the first Linear then reads only
[rel, x_t, rel_cell]). It is trained by distillation (`train --teacher`): the encoder and LFE are the
default model's, copied and frozen, and the student learns the teacher's output at random
coordinates and scales of the training faces, so it needs no more faces than the encoder saw.
Three ways to give the student more capacity without a wider per-query MLP; two run per LR pixel:
`pixel_modulation` (LMF's modulation) makes the pixel network emit a term for *every* hidden layer's
pre-activation, not only the first (the per-query cost grows by one wider gather, not by any
matrix product), and `projection_blocks` adds residual blocks (3x3 conv, ReLU, 1x1 conv) inside it.
The third runs per query: `rel_frequencies` K adds Fourier features of the offset, sin and cos of
pi 2^k rel (k < K; 4K numbers), to the first layer (`rel_features`), so the narrow MLP can draw
structure finer than an LR pixel without more width. All start as the identity (their last weights
are zero), so a trained student can be grown into them and continue from the same function
(`model.grow_state_dict`).
`blend_hidden` changes where the local ensemble blends: each corner runs only the first layer (its
pixel term plus the rank-4 query part, then ReLU), the four first hidden layers are blended with the
area weights, and the rest of the MLP runs once per query. The corners' own offsets still enter
nonlinearly, and the output stays continuous (a corner changes LR pixel where its weight is 0); the
later layers cost a quarter as much, so at the same cost they can be wider or deeper (issue 21,
results/fast.md "One evaluation per query"). It starts from scratch (no `grow_state_dict`). The
shipped `arasfsr-fast` file is such a student from release 0.9 on (family `arasfsr-fast-blend`: 80
wide, 3 layers, 0.087 MFLOP per output pixel); the 0.7 and 0.8 files, the 48-wide student
above, still load.

Tiles (`inference.render_tiled`): a latent grid may be one tile of a larger image. Its `frame`
(scale_y, scale_x, offset_y, offset_x) maps the tile's [-1, 1] coordinates to the whole image's,
global = local * scale + offset; the local ensemble reads the tile in its own frame, and GCM's
global inputs (the latent centre x_t and the sine stream's query position) are taken in the whole
image's frame, so a tiled face gets the same face prior as an untiled one. None: the whole image.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar

import torch
import torch.nn.functional as F
from torch import nn

from .coords import make_coord, pixel_centres
from .gcm import SineStream
from .threads import CPU_BLOCK, GPU_BLOCK

# Queries per block in no-grad CPU inference (4 corners each): the activations fit in cache.
# (`render` picks blocks per device and thread count: `threads.inference_plan`.)
INFERENCE_BLOCK = CPU_BLOCK

# Corner shifts (vy, vx) of the local ensemble, in this order; flipping this axis maps each
# corner to its diagonal partner (0<->3, 1<->2).
CORNERS = ((-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0))

Frame = tuple[float, float, float, float]  # (scale_y, scale_x, offset_y, offset_x), see the docstring


def to_global(coord: torch.Tensor, frame: Frame | None) -> torch.Tensor:
    """(..., 2) coordinates in a tile's frame -> the same points in the whole image's frame."""
    if frame is None:
        return coord
    sy, sx, oy, ox = frame
    return coord * coord.new_tensor([sy, sx]) + coord.new_tensor([oy, ox])


def tile_frame(rows: tuple[int, int], cols: tuple[int, int], shape: tuple[int, int]) -> Frame:
    """The frame of LR rows [p0, p1) and columns [q0, q1) of an (h, w) image: pixel centres of the
    tile land on the image's pixel centres."""
    (p0, p1), (q0, q1), (h, w) = rows, cols, shape
    return ((p1 - p0) / h, (q1 - q0) / w, (p1 - p0 + 2 * p0) / h - 1, (q1 - q0 + 2 * q0) / w - 1)


def per_axis(like: torch.Tensor, a, b) -> torch.Tensor:
    """The pair (a, b) as a (2,) tensor of `like`'s dtype and device. Built by arithmetic rather
    than `new_tensor`, so that under `torch.export` (the ONNX export, `arasfsr.onnx`) sizes that
    are symbolic stay symbolic instead of being baked into the graph."""
    one = like.new_ones(())
    return torch.stack([one * a, one * b])


def local_ensemble_corners(coord: torch.Tensor, latent_shape: tuple[int, int], eps: float = 1e-6):
    """Find the four latent codes around each query.

    Args:
        coord: (B, N, 2) query coordinates.
        latent_shape: (h, w) of the latent grid.
    Returns:
        index: (4, B, N) flat index y * w + x of each corner's latent within its image.
        centre: (4, B, N, 2) global coordinate x_t of that latent's pixel centre.
        rel: (4, B, N, 2) (x_q - x_t) * (h, w): the offset in LR pixels.
        weight: (4, B, N) blend weights, summing to 1 over the corners.
    """
    h, w = latent_shape
    shifts = coord.new_tensor(CORNERS) * per_axis(coord, 1.0 / h, 1.0 / w)  # (4, 2): half a pixel
    shifted = (coord.unsqueeze(0) + (shifts + eps)[:, None, None, :]).clamp_(-1 + 1e-6, 1 - 1e-6)
    size = per_axis(coord, h, w)
    # nearest pixel: the one whose cell [-1 + 2i/n, -1 + 2(i+1)/n) contains the shifted point
    pix = ((shifted + 1) * (size / 2)).floor_().long()
    pix[..., 0].clamp_(0, h - 1)
    pix[..., 1].clamp_(0, w - 1)
    centre = torch.stack([pixel_centres(h, pix[..., 0].to(coord.dtype)),
                          pixel_centres(w, pix[..., 1].to(coord.dtype))], dim=-1)
    rel = (coord.unsqueeze(0) - centre) * size
    index = pix[..., 0] * w + pix[..., 1]
    # Area blend: the area of the rectangle between the query and corner t's latent centre
    # grows as that latent gets farther away, so each corner takes the area of its *diagonal
    # partner* (the opposite rectangle): nearer latents weigh more, and the weights sum to 1.
    # That area weight factorises per axis, |d_partner| / (|d_low| + |d_high|), and we compute
    # it per axis so that the one degenerate case is decided by a rule, not by rounding: at the
    # border both corners of an axis read the same pixel (both offsets can be 0, giving 0 / 0);
    # their predictions are then equal on that axis and each takes half.
    dist = rel.abs()  # (4, B, N, 2); corners 0,1 are low in y, 0,2 are low in x
    axis_weight = []
    for axis, (low, high) in enumerate(((0, 2), (0, 1))):
        d_low, d_high = dist[low, ..., axis], dist[high, ..., axis]
        same = pix[low, ..., axis] == pix[high, ..., axis]
        w_low = torch.where(same, torch.full_like(d_low, 0.5), d_high / (d_low + d_high).clamp_min(1e-12))
        axis_weight.append((w_low, 1 - w_low))
    (wy_low, wy_high), (wx_low, wx_high) = axis_weight
    weight = torch.stack([wy_low * wx_low, wy_low * wx_high, wy_high * wx_low, wy_high * wx_high])
    return index, centre, rel, weight


def gather_rows(table: torch.Tensor, index: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """table (B, h*w, D), index (..., B, N) -> (..., B, N, D) (written into `out` if given)."""
    b, hw, d = table.shape
    offset = torch.arange(b, device=index.device).view(b, 1) * hw  # image b's rows start at b*hw
    flat = (index + offset).reshape(-1)
    table = table.reshape(b * hw, d)
    rows = table.index_select(0, flat) if out is None else torch.index_select(table, 0, flat, out=out)
    return rows.view(*index.shape, d)


# Block settings for the no-grad query, set by `render` per call (see `inference_blocks`); a
# ContextVar, so two renders in two threads (a web app) each keep their own.
_BLOCKS: ContextVar[tuple[int, int] | None] = ContextVar("arasfsr_inference_blocks", default=None)


@contextlib.contextmanager
def inference_blocks(block: int, workers: int = 1) -> Iterator[None]:
    """Within this context, no-grad fast queries run in blocks of `block` queries, spread over
    `workers` single-threaded CPU workers when `workers` > 1 (see `threads.inference_plan`).

    Args:
        block: queries per block (at least 1).
        workers: CPU worker threads (1: blocks run in order on the calling thread, each op
            using torch's intra-op threads). Ignored on a GPU.
    """
    if block < 1 or workers < 1:
        raise ValueError(f"block and workers must be at least 1, got block={block}, workers={workers}")
    token = _BLOCKS.set((int(block), int(workers)))
    try:
        yield
    finally:
        _BLOCKS.reset(token)


def in_blocks(fn, projection, latent_shape, coord, cell) -> torch.Tensor:
    """Run a no-grad query `fn` on blocks of queries.

    On the CPU a block is small enough that each layer's activations stay in the cache: the
    elementwise passes (bias, ReLU, gating) then cost little next to the matrix products, and
    each worker reuses one workspace of buffers (no fresh memory per block). With several
    workers, each runs whole blocks with one thread and takes the next block when done: there is
    no barrier between threads inside a block, so a worker the OS parks (a busy machine) delays
    only its own block, where torch's intra-op threads would all wait for it at every op. On a
    GPU a block is large (few, big kernels). Default without `inference_blocks`: CPU blocks of
    INFERENCE_BLOCK over `torch.get_num_threads()` workers, GPU blocks of GPU_BLOCK. Under
    torch.compile: one block (the compiler fuses the elementwise passes itself).
    """
    settings = _BLOCKS.get()
    on_cpu = coord.device.type == "cpu"
    if settings is None:  # as `threads.inference_plan` for the calling thread's thread count
        settings = (INFERENCE_BLOCK, torch.get_num_threads()) if on_cpu else (GPU_BLOCK, 1)
    block, workers = settings
    if torch.compiler.is_compiling():  # one block: a loop of blocks would be unrolled into the graph
        block, workers = coord.shape[0] * coord.shape[1], 1
    step = max(1, block // coord.shape[0])
    starts = range(0, coord.shape[1], step)
    workers = min(workers, len(starts)) if on_cpu else 1
    if workers == 1:
        workspace: dict[str, torch.Tensor] = {}
        blocks = [fn(projection, latent_shape, coord[:, i:i + step], cell[:, i:i + step], workspace)
                  for i in starts]
    else:
        blocks = _spread_over_workers(fn, projection, latent_shape, coord, cell, starts, step, workers)
    return blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=1)


def _spread_over_workers(fn, projection, latent_shape, coord, cell, starts, step, workers):
    """Blocks on `workers` single-threaded threads, handed out in order as workers free up."""
    inference = torch.is_inference_mode_enabled()  # grad modes are per thread: copy the caller's
    local = threading.local()

    def run(i):
        if not hasattr(local, "workspace"):  # first block of this worker thread
            local.workspace = {}
            torch.set_num_threads(1)  # this thread's ops run single-threaded
        with torch.inference_mode(inference), torch.no_grad():
            return fn(projection, latent_shape, coord[:, i:i + step], cell[:, i:i + step], local.workspace)

    caller_threads = torch.get_num_threads()
    try:
        with ThreadPoolExecutor(workers, thread_name_prefix="arasfsr-block") as pool:
            return list(pool.map(run, starts))
    finally:
        # set_num_threads in a worker also sets the default for threads created later; restore it
        torch.set_num_threads(caller_threads)


def buffer(workspace: dict, name: str, rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
    """A (rows, cols) scratch tensor from `workspace`, allocated once at the largest size seen."""
    buf = workspace.get(name)
    if buf is None or buf.shape[0] < rows or buf.shape[1] != cols:
        buf = workspace[name] = like.new_empty(rows, cols)
    return buf[:rows]


def to_rows(latent: torch.Tensor) -> torch.Tensor:
    """(B, C, h, w) -> (B, h*w, C), one row per LR pixel."""
    return latent.flatten(2).transpose(1, 2).contiguous()


class LocalImplicitDecoder(nn.Module):
    """LIIF / ARASFSR decoder.

    Input per corner: [z_t (9C), rel (2), x_t (2, with GCM), rel_cell (2)]; with `projection_hidden`
    > 0, [rel, x_t, rel_cell] plus `pixel_net(latent)` at the corner's LR pixel (arasfsr-fast).
    Without GCM: a ReLU MLP (LIIF). With GCM: hidden layer i takes [h_{i-1}; m_{i-1}] where
    m_i = h_i * g_i gates the ReLU stream with the sine stream g_i.
    """

    def __init__(self, latent_channels: int, hidden_dim: int = 256, hidden_layers: int = 4,
                 use_gcm: bool = True, gcm_frequencies: int = 10, projection_hidden: int = 0,
                 pixel_modulation: bool = False, projection_blocks: int = 0, rel_frequencies: int = 0,
                 blend_hidden: bool = False):
        super().__init__()
        if (pixel_modulation or projection_blocks or rel_frequencies or blend_hidden) and not projection_hidden:
            raise ValueError("pixel_modulation, projection_blocks, rel_frequencies and blend_hidden need a pixel "
                             "network (projection_hidden > 0)")
        if blend_hidden and pixel_modulation:
            raise ValueError("blend_hidden and pixel_modulation do not combine (the later layers run once per query)")
        # blend_hidden: the corners are blended after the first hidden layer, the rest runs once per query
        self.blend_hidden = blend_hidden
        self.latent_channels = latent_channels
        self.use_gcm = use_gcm
        # projection_hidden > 0 (arasfsr-fast): the LR pixel's part of the first layer is a small
        # network of its own, run once per LR pixel, and the first Linear reads only the query part;
        # with pixel_modulation it also emits an additive term for each later hidden layer
        self.modulated_layers = hidden_layers if pixel_modulation else 1
        self.pixel_net = nn.Sequential(
            nn.Conv2d(latent_channels, projection_hidden, 3, padding=1), nn.ReLU(),
            nn.Conv2d(projection_hidden, hidden_dim * self.modulated_layers, 1)) if projection_hidden else None
        self.pixel_blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(projection_hidden, projection_hidden, 3, padding=1), nn.ReLU(),
                          nn.Conv2d(projection_hidden, projection_hidden, 1)) for _ in range(projection_blocks))
        with torch.no_grad():  # the added capacity starts as the identity (see `model.grow_state_dict`)
            for block in self.pixel_blocks:
                block[2].weight.zero_(), block[2].bias.zero_()
            if pixel_modulation:
                self.pixel_net[2].weight[hidden_dim:].zero_(), self.pixel_net[2].bias[hidden_dim:].zero_()
        self.unfolded_dim = 0 if projection_hidden else 9 * latent_channels
        in_dim = self.unfolded_dim + 2 + (2 if use_gcm else 0) + 2
        stream = 2 if use_gcm else 1  # hidden layers read [h; m] with GCM
        self.layers = nn.ModuleList([nn.Linear(in_dim, hidden_dim)] + [
            nn.Linear(stream * hidden_dim, hidden_dim) for _ in range(hidden_layers - 1)])
        self.out = nn.Linear(hidden_dim, 3)
        self.sine = SineStream(gcm_frequencies, hidden_dim, hidden_layers) if use_gcm else None
        self.rel_frequencies = rel_frequencies
        self.rel_features = nn.Linear(4 * rel_frequencies, hidden_dim, bias=False) if rel_frequencies else None
        if self.rel_features is not None:
            nn.init.zeros_(self.rel_features.weight)  # starts as the identity (see `model.grow_state_dict`)

    def offset_features(self, rel: torch.Tensor) -> torch.Tensor:
        """(..., 2) offsets in LR pixels -> (..., 4K): sin and cos of pi 2^k rel_y, then rel_x."""
        scales = torch.pi * 2.0 ** torch.arange(self.rel_frequencies, device=rel.device, dtype=rel.dtype)
        angles = (rel.unsqueeze(-1) * scales).flatten(-2)
        return torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)

    def pixel_terms(self, latent: torch.Tensor) -> torch.Tensor:
        """The pixel network: (B, C, h, w) -> (B, D * modulated_layers, h, w), no layer biases."""
        x = torch.relu(self.pixel_net[0](latent))
        for block in self.pixel_blocks:
            x = x + block(x)
        return self.pixel_net[2](x)

    # ---- the straightforward formulation -------------------------------------------------
    def forward_reference(self, latent: torch.Tensor, coord: torch.Tensor, cell: torch.Tensor,
                          frame: Frame | None = None) -> torch.Tensor:
        b, c, h, w = latent.shape
        if self.pixel_net is None:
            pixel_rows = to_rows(F.unfold(latent, 3, padding=1).view(b, 9 * c, h, w))  # (B, h*w, 9C)
        else:
            pixel_rows = to_rows(self.pixel_terms(latent))  # (B, h*w, D * modulated_layers), added after each Linear
        d = self.layers[0].out_features
        index, centre, rel, weight = local_ensemble_corners(coord, (h, w))
        rel_cell = cell * per_axis(cell, h, w)  # = 2 / scale: the decoder knows the zoom
        pred = blended = 0
        for t in range(4):
            parts = [rel[t]]
            if self.use_gcm:
                parts.append(to_global(centre[t], frame))
            parts.append(rel_cell)
            mods = [0] * len(self.layers)  # the pixel network's term for each layer (0: none)
            if self.pixel_net is None:
                x = self.layers[0](torch.cat([gather_rows(pixel_rows, index[t])] + parts, dim=-1))
            else:
                terms = gather_rows(pixel_rows, index[t]).split(d, dim=-1)
                mods[:len(terms)] = terms
                x = self.layers[0](torch.cat(parts, dim=-1)) + mods[0]
            if self.rel_features is not None:
                x = x + self.rel_features(self.offset_features(rel[t]))
            x = torch.relu(x)
            if self.blend_hidden:  # only the first layer runs per corner
                blended = blended + x * weight[t].unsqueeze(-1)
            else:
                pred = pred + self.out(self._rest(x, coord, frame, mods)) * weight[t].unsqueeze(-1)
        return self.out(self._rest(blended, coord, frame, mods)) if self.blend_hidden else pred

    def _rest(self, x: torch.Tensor, coord: torch.Tensor, frame: Frame | None, mods: list) -> torch.Tensor:
        """The reference path's hidden layers after the first: (B, N, D) first-layer activations -> the
        last hidden layer's (B, N, D); `mods` holds each layer's pixel term (0: none)."""
        if self.use_gcm:
            gates = self.sine(to_global(coord, frame))  # (as the authors' code: once per corner)
            m = x * gates[0]
            for i, (layer, g) in enumerate(zip(self.layers[1:], gates[1:]), 1):
                x = torch.relu(layer(torch.cat([x, m], dim=-1)) + mods[i])
                m = x * g
            return m
        for i, layer in enumerate(self.layers[1:], 1):
            x = torch.relu(layer(x) + mods[i])
        return x

    # ---- the fast formulation ------------------------------------------------------------
    def project(self, latent: torch.Tensor, frame: Frame | None = None) -> torch.Tensor:
        """First-layer terms that depend only on the LR pixel: (B, C, h, w) -> (B, h*w, D).

        W_z applied to the 3x3-unfolded latent is a 3x3 convolution: unfold lays channel c's
        window at entries 9c..9c+8 in row-major order, which is exactly a conv weight's
        (out, in, kh, kw) layout, and unfold's zero padding is the conv's zero padding.
        """
        first = self.layers[0]
        d, n = first.out_features, self.unfolded_dim
        if self.pixel_net is None:
            weight_z = first.weight[:, :n].reshape(d, self.latent_channels, 3, 3)
            proj = F.conv2d(latent, weight_z, first.bias, padding=1)  # (B, D, h, w)
        else:  # the pixel network's output, plus each modulated layer's bias
            biases = torch.cat([layer.bias for layer in self.layers[:self.modulated_layers]])
            proj = self.pixel_terms(latent) + biases.view(1, -1, 1, 1)
        rows = to_rows(proj)  # (B, h*w, D * modulated_layers)
        if self.use_gcm:  # + W_xt x_t, x_t = the LR pixel's centre (the first layer's columns)
            centres = to_global(make_coord(latent.shape[-2:], device=latent.device, dtype=latent.dtype), frame)
            xt = centres @ first.weight[:, n + 2:n + 4].t()
            if self.modulated_layers == 1:
                return rows + xt
            return torch.cat([rows[..., :d] + xt, rows[..., d:]], dim=-1)
        return rows

    def forward_fast(self, projection: torch.Tensor, latent_shape: tuple[int, int],
                     coord: torch.Tensor, cell: torch.Tensor, frame: Frame | None = None) -> torch.Tensor:
        if torch.is_grad_enabled():
            return self._fast_autograd(projection, latent_shape, coord, cell, frame=frame)
        return in_blocks(functools.partial(self._fast_inference, frame=frame), projection, latent_shape, coord, cell)

    def _first_layer(self, projection, latent_shape, coord, cell, out=None, gathered=None):
        """First-layer pre-activations for the four corners: (4*B*N, D), the blend weights, and
        the later layers' pixel terms [(4*B*N, D), ...] (empty without pixel_modulation).
        Without modulation the gathered rows are written straight into `out`; with it they go to
        `gathered` (4BN, D * layers) and the first layer's part is added into `out`."""
        h, w = latent_shape
        b, nq, _ = coord.shape
        first = self.layers[0]
        n, d = self.unfolded_dim, first.out_features
        index, _, rel, weight = local_ensemble_corners(coord, (h, w))
        rel_cell = (cell * per_axis(cell, h, w)).expand(4, b, nq, 2)
        cols = [n, n + 1, first.in_features - 2, first.in_features - 1]  # rel_y, rel_x, cell_y, cell_x
        w_query = first.weight[:, cols]  # (D, 4)
        query_part = torch.cat([rel, rel_cell], -1).view(-1, 4)
        if self.rel_features is not None:  # + the offset's Fourier features (one product with both)
            query_part = torch.cat([query_part, self.offset_features(rel).view(-1, 4 * self.rel_frequencies)], -1)
            w_query = torch.cat([w_query, self.rel_features.weight], 1)
        # per-pixel projection gathered for each corner + the rank-4 per-query part
        if self.modulated_layers == 1:
            x = gather_rows(projection, index, out=out).view(4 * b * nq, -1)  # (4BN, D)
            x = torch.addmm(x, query_part, w_query.t()) if out is None else x.addmm_(query_part, w_query.t())
            return x, weight, []
        rows = gather_rows(projection, index, out=gathered).view(4 * b * nq, -1)  # (4BN, D * layers)
        mods = list(rows.split(d, dim=1))
        x = torch.addmm(mods[0], query_part, w_query.t(), out=out)
        return x, weight, mods[1:]

    def _fast_autograd(self, projection, latent_shape, coord, cell, frame=None):
        b, nq, _ = coord.shape
        x, weight, mods = self._first_layer(projection, latent_shape, coord, cell)
        x = torch.relu(x)
        corners = 4
        if self.blend_hidden:  # the four corners' first hidden layers, blended: one row per query from here
            x = (x.view(4, b * nq, -1) * weight.view(4, b * nq, 1)).sum(0)
            corners = 1

        def linear(i, inputs):  # layer i; with modulation its bias is in the gathered pixel term
            layer = self.layers[i]
            if mods:
                return F.linear(inputs, layer.weight) + mods[i - 1].reshape(inputs.shape[:-1] + (-1,))
            return layer(inputs)

        if self.use_gcm:
            gates = [g.reshape(1, b * nq, -1) for g in self.sine(to_global(coord, frame))]  # once per query
            x = x.view(corners, b * nq, -1)
            m = x * gates[0]
            for i, g in enumerate(gates[1:], 1):
                x = torch.relu(linear(i, torch.cat([x, m], dim=-1)))
                m = x * g
            x = m
        else:
            for i in range(1, len(self.layers)):
                x = torch.relu(linear(i, x))
        if self.blend_hidden:
            return self.out(x).view(b, nq, 3)
        pred = self.out(x).view(4, b, nq, 3)
        return (pred * weight.unsqueeze(-1)).sum(0)

    def _fast_inference(self, projection, latent_shape, coord, cell, workspace, frame=None):
        """Same numbers as `_fast_autograd` with fewer passes over memory: W [h; m] is computed
        as W_h h + W_m m (no concatenated copy), in place, in reused buffers."""
        b, nq, _ = coord.shape
        rows, d = 4 * b * nq, self.layers[0].out_features
        gathered = buffer(workspace, "g", rows, projection.shape[-1], projection) if self.modulated_layers > 1 else None
        x, weight, mods = self._first_layer(projection, latent_shape, coord, cell,
                                            out=buffer(workspace, "h0", rows, d, projection), gathered=gathered)
        h = x.relu_()  # (4BN, D)
        corners = 4
        if self.blend_hidden:  # blend the corners' first hidden layers: one row per query from here
            blended = buffer(workspace, "b", b * nq, d, projection)
            h4, w4 = h.view(4, b * nq, d), weight.view(4, b * nq, 1)
            torch.mul(h4[0], w4[0], out=blended)
            for t in range(1, 4):
                blended.addcmul_(h4[t], w4[t])
            h, rows, corners = blended, b * nq, 1
        spare = buffer(workspace, "h1", rows, d, projection)
        # the term each later layer adds to W h: its bias, or (modulated) the gathered pixel term holding it
        adds = mods or [layer.bias for layer in self.layers[1:]]
        if self.use_gcm:
            gates = [g.reshape(b * nq, d) for g in self.sine(to_global(coord, frame))]  # (BN, D), once per query
            m = buffer(workspace, "m", rows, d, projection)
            torch.mul(h.view(corners, -1, d), gates[0], out=m.view(corners, -1, d))
            for layer, g, add in zip(self.layers[1:], gates[1:], adds):
                h, spare = torch.addmm(add, h, layer.weight[:, :d].t(), out=spare), h
                h.addmm_(m, layer.weight[:, d:].t()).relu_()
                torch.mul(h.view(corners, -1, d), g, out=m.view(corners, -1, d))  # m = h * g
            h = m
        else:
            for layer, add in zip(self.layers[1:], adds):
                h, spare = torch.addmm(add, h, layer.weight.t(), out=spare).relu_(), h
        pred = torch.addmm(self.out.bias, h, self.out.weight.t())
        if self.blend_hidden:
            return pred.view(b, nq, 3)
        return (pred.view(4, b, nq, 3) * weight.unsqueeze(-1)).sum(0)


class LTEDecoder(nn.Module):
    """LTE (local texture estimator): a Fourier basis estimated per LR pixel.

    Amplitude (coefficient) and frequency maps come from 3x3 convs on the latent; a phase term
    comes from the cell. Per corner: f_k = <freq_k, rel> + phase_k(rel_cell),
    input = amplitude * [cos(pi f); sin(pi f)], then a ReLU MLP. All four corners are batched.
    """

    def __init__(self, latent_channels: int, hidden_dim: int = 256, hidden_layers: int = 4):
        super().__init__()
        if hidden_dim % 2:
            raise ValueError(f"LTE needs an even hidden_dim, got {hidden_dim}")
        self.amplitude = nn.Conv2d(latent_channels, hidden_dim, 3, padding=1)
        self.frequency = nn.Conv2d(latent_channels, hidden_dim, 3, padding=1)
        self.phase = nn.Linear(2, hidden_dim // 2, bias=False)
        dims = [hidden_dim] * (hidden_layers + 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))
        self.out = nn.Linear(hidden_dim, 3)

    def project(self, latent: torch.Tensor, frame: Frame | None = None) -> torch.Tensor:
        """(B, C, h, w) -> (B, h*w, 2D): amplitude and frequency per LR pixel (no global input:
        `frame` is accepted and unused)."""
        return to_rows(torch.cat([self.amplitude(latent), self.frequency(latent)], dim=1))

    def forward_fast(self, projection, latent_shape, coord, cell, frame=None):
        if torch.is_grad_enabled():
            return self._query(projection, latent_shape, coord, cell)
        return in_blocks(self._query, projection, latent_shape, coord, cell)

    def _query(self, projection, latent_shape, coord, cell, workspace=None):
        h, w = latent_shape
        b, nq, _ = coord.shape
        index, _, rel, weight = local_ensemble_corners(coord, (h, w))
        amp, freq = gather_rows(projection, index).chunk(2, dim=-1)  # (4, B, N, D) each
        freq = freq.unflatten(-1, (-1, 2))  # (4, B, N, D/2, 2): one (f_y, f_x) pair per basis
        arg = (freq * rel.unsqueeze(-2)).sum(-1) + self.phase(cell * per_axis(cell, h, w))
        x = amp * torch.cat([torch.cos(torch.pi * arg), torch.sin(torch.pi * arg)], dim=-1)
        for layer in self.layers:
            x = torch.relu(layer(x))
        pred = self.out(x)  # (4, B, N, 3)
        return (pred * weight.unsqueeze(-1)).sum(0)

    def forward_reference(self, latent, coord, cell, frame=None):
        return self.forward_fast(self.project(latent), latent.shape[-2:], coord, cell)
