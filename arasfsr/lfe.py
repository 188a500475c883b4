"""Local frequency estimation (LFE): a probabilistic, image-specific high-frequency latent.

A small conv network reads the normalised LR image and predicts, per LR pixel, a Gaussian
(mu, log sigma^2) over `latent_channels` numbers. The latent z is decoded to a few channels F_f
that are concatenated to the encoder features, giving the implicit decoder local cues about
high-frequency content that an MLP on coordinates struggles to produce (spectral bias).

Training samples z = mu + eps * sigma (reparameterisation); inference is deterministic by
default (z = mu) and samples only when asked, with an explicit generator.
"""
from __future__ import annotations

import torch
from torch import nn

from .encoder import ResBlock, conv3x3

# The log-variance is clamped to this range. The authors leave it unbounded and train without a KL
# term; then nothing holds it: measured on the tiny preset at a high learning rate, it reached
# +137 within 30 steps (sigma = e^68), the sampled latent exploded and the loss jumped by 10
# orders of magnitude (MODEL_CARD.md, "Training stability"). Inside the range the clamp is the
# identity; deterministic inference (z = mu) never reads the log-variance.
LOGVAR_RANGE = (-10.0, 2.0)

# Activation inside the residual blocks. The authors' network uses plain ReLU (as EDSR does);
# weight files of format 1 were trained with LeakyReLU(0.01) and load with "leaky_relu".
BLOCK_ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU}


class _ConvStack(nn.Module):
    """conv-LeakyReLU(0.2) head, residual blocks (conv-act-conv) with a long skip, conv tail."""

    def __init__(self, in_channels: int, channels: int, blocks: int, out_channels: int,
                 block_activation: str = "relu"):
        super().__init__()
        activation = BLOCK_ACTIVATIONS[block_activation]
        self.head = nn.Sequential(conv3x3(in_channels, channels), nn.LeakyReLU(0.2))
        self.body = nn.Sequential(*[ResBlock(channels, activation) for _ in range(blocks)],
                                  conv3x3(channels, channels))
        self.tail = conv3x3(channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(x)
        return self.tail(x + self.body(x))


class LocalFrequencyEstimator(nn.Module):
    """(B, 3, h, w) normalised LR -> F_f (B, out_channels, h, w), plus mu and log-variance."""

    def __init__(self, channels: int = 64, blocks: int = 4, latent_channels: int = 64, out_channels: int = 8,
                 block_activation: str = "relu"):
        super().__init__()
        self.latent_channels = latent_channels
        self.out_channels = out_channels
        # -> (mu, log sigma^2)
        self.encoder = _ConvStack(3, channels, blocks, 2 * latent_channels, block_activation)
        self.decoder = _ConvStack(latent_channels, channels, blocks, out_channels, block_activation)

    def forward(self, lr_norm: torch.Tensor, sample: bool = False,
                generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Returns (F_f, mu, logvar); mu and logvar are (B, latent_channels, h, w)."""
        mu, logvar = self.encoder(lr_norm).chunk(2, dim=1)
        logvar = logvar.clamp(*LOGVAR_RANGE)
        if sample:
            # randn_like when no generator: torch.compile traces it with symbolic shapes
            eps = torch.randn_like(mu) if generator is None else torch.randn(
                mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
            z = mu + eps * torch.exp(0.5 * logvar)
        else:
            z = mu  # deterministic inference: the mean of the latent distribution
        return self.decoder(z), mu, logvar


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """Mean KL(N(mu, sigma^2) || N(0, 1)) per latent element (a scalar)."""
    return -0.5 * torch.mean(1 + logvar - mu.pow(2) - logvar.exp())
