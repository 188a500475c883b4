"""CNN encoders that turn an LR image into a grid of latent codes (no upsampling).

`EDSRBaseline` is the encoder of LIIF, LTE and ARASFSR; `RDN` is the paper's larger option.
Module names follow the published EDSR-baseline layout (`head.0`, `body.{i}.body.{0,2}`,
`body.{n_blocks}`) so published LIIF checkpoints map onto it key for key.
"""
from __future__ import annotations

import torch
from torch import nn


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, padding=1)


class ResBlock(nn.Module):
    """conv -> activation -> conv, plus the identity."""

    def __init__(self, channels: int, activation: type[nn.Module] = nn.ReLU):
        super().__init__()
        self.body = nn.Sequential(conv3x3(channels, channels), activation(), conv3x3(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class EDSRBaseline(nn.Module):
    """EDSR-baseline without its upsampler: (B, 3, h, w) -> (B, channels, h, w)."""

    def __init__(self, channels: int = 64, blocks: int = 16, in_channels: int = 3):
        super().__init__()
        self.out_channels = channels
        self.head = nn.Sequential(conv3x3(in_channels, channels))
        self.body = nn.Sequential(*[ResBlock(channels) for _ in range(blocks)], conv3x3(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        return x + self.body(x)  # long skip around the residual blocks


class DenseBlock(nn.Module):
    """Residual dense block: `layers` densely connected convs, 1x1 fusion, local residual."""

    def __init__(self, channels: int, growth: int, layers: int):
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Sequential(conv3x3(channels + i * growth, growth), nn.ReLU()) for i in range(layers))
        self.fuse = nn.Conv2d(channels + layers * growth, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feats = [x]
        for conv in self.convs:
            feats.append(conv(torch.cat(feats, dim=1)))
        return x + self.fuse(torch.cat(feats, dim=1))


class RDN(nn.Module):
    """Residual dense network without its upsampler: (B, 3, h, w) -> (B, channels, h, w)."""

    def __init__(self, channels: int = 64, blocks: int = 16, growth: int = 64, layers: int = 8,
                 in_channels: int = 3):
        super().__init__()
        self.out_channels = channels
        self.shallow1 = conv3x3(in_channels, channels)
        self.shallow2 = conv3x3(channels, channels)
        self.blocks = nn.ModuleList(DenseBlock(channels, growth, layers) for _ in range(blocks))
        self.global_fuse = nn.Sequential(nn.Conv2d(blocks * channels, channels, 1), conv3x3(channels, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f1 = self.shallow1(x)
        x = self.shallow2(f1)
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return f1 + self.global_fuse(torch.cat(outs, dim=1))  # global residual learning


ENCODERS = {"edsr-baseline": EDSRBaseline, "rdn": RDN}
