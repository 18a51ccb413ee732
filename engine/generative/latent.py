"""Latent diffusion (Rombach et al. 2022; lecture 004): a DDPM trained on the latent codes of a trained VAE, kept
frozen, and decoded to images by it. The VAE's latent is a vector, so the ε-model is a small residual MLP with the
same sinusoidal time embedding as the U-Net. Codes are the encoder's means, divided by their standard deviation
over the training set so that the diffusion starts from unit-variance data as in pixel space (the factor is kept
with the model). Every step is one pass of the MLP on a vector instead of the U-Net on an image, which is where
the speed comes from; what the samples can show is bounded by the VAE's decoder.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.generative.unet import timestep_embedding


class LatentEps(nn.Module):
    """ε̂(z_t, t) for latent vectors (B, dim): ``blocks`` residual layers of width ``hidden``."""

    def __init__(self, dim: int, hidden: int = 256, blocks: int = 4) -> None:
        super().__init__()
        self.base = hidden // 4
        self.time_mlp = nn.Sequential(nn.Linear(self.base, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.inp = nn.Linear(dim, hidden)
        self.blocks = nn.ModuleList([nn.Sequential(nn.LayerNorm(hidden), nn.SiLU(), nn.Linear(hidden, hidden))
                                     for _ in range(blocks)])
        self.out = nn.Linear(hidden, dim)
        nn.init.zeros_(self.out.weight)  # ε̂ = 0 at the start, as the U-Net
        nn.init.zeros_(self.out.bias)

    def forward(self, z: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_mlp(timestep_embedding(t, self.base))
        h = self.inp(z)
        for block in self.blocks:
            h = h + block(h + temb)
        return self.out(F.silu(h))


@torch.no_grad()
def encode_all(vae: nn.Module, images: torch.Tensor, batch: int = 256) -> torch.Tensor:
    """The encoder's means μ(x) of every image, (N, dim)."""
    vae.eval()
    return torch.cat([vae.encode(images[i:i + batch])[0] for i in range(0, len(images), batch)])
