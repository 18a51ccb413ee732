"""Plain-data messages from the generative trainer to whoever drives it (CLI, GUI worker, tests).

Only numbers, strings and numpy arrays: they cross threads safely and never keep tensors or models alive.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True, eq=False)
class GenerativePreview:
    """What the model makes now, from the same fixed noise every time, so previews are comparable over time."""

    step: int
    samples: np.ndarray
    """(H, W, 3) uint8 grid of samples: VAE decodes fixed prior draws, GAN its fixed noise batch, DDPM runs
    deterministic DDIM (EMA weights) from a fixed x_T"""
    reconstructions: np.ndarray | None = None
    """VAE: (H, W, 3) uint8 grid of fixed training images and their reconstructions in column pairs"""
    diversity: float | None = None
    """GAN: mean pairwise distance of the samples over that of real images (< 0.5 hints at mode collapse)"""


@dataclass(frozen=True)
class GenerativeRecord:
    step: int
    total_steps: int
    losses: dict[str, float]
    """VAE: 'recon', 'kl', 'total'; GAN: 'd_loss', 'g_loss', 'd_real', 'd_fake' (mean D output, probabilities);
    DDPM: 'loss'"""
    lr: float
    steps_per_s: float
    elapsed_s: float
    device: str
    preview: GenerativePreview | None = None
    notes: list[str] = field(default_factory=list)
    """one-off messages: model and data at the start, data warnings, time limit reached"""
