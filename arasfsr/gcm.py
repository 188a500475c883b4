"""Global coordinate modulation (GCM): where in the face is this query?

gamma(x) = [x, sin(2^k x), cos(2^k x) for k = 0..K-1] encodes the query's global position
(2 + 4K numbers; K = 10 gives 42). A sine stream g_1 = sin(V_1 gamma + d_1),
g_i = sin(V_i g_{i-1} + d_i) runs beside the decoder's ReLU stream and gates each hidden layer
(m_i = h_i * g_i). It depends only on the query position, so it is evaluated once per query,
never once per local-ensemble corner.
"""
from __future__ import annotations

import torch
from torch import nn


def positional_encoding(coord: torch.Tensor, frequencies: int = 10) -> torch.Tensor:
    """(..., 2) coordinates -> (..., 2 + 4 * frequencies), no pi factor."""
    scales = 2.0 ** torch.arange(frequencies, device=coord.device, dtype=coord.dtype)  # (K,)
    angles = (coord.unsqueeze(-1) * scales).flatten(-2)  # (..., 2K): [y * 2^k for k], then [x * 2^k]
    return torch.cat([coord, torch.sin(angles), torch.cos(angles)], dim=-1)


class SineStream(nn.Module):
    """gamma(x_q) -> [g_1, ..., g_L], each (..., width)."""

    def __init__(self, frequencies: int, width: int, layers: int):
        super().__init__()
        self.frequencies = frequencies
        dims = [2 + 4 * frequencies] + [width] * layers
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:]))

    def forward(self, coord: torch.Tensor) -> list[torch.Tensor]:
        g = positional_encoding(coord, self.frequencies)
        gates = []
        for layer in self.layers:
            g = torch.sin(layer(g))
            gates.append(g)
        return gates
