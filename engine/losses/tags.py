"""Losses for image-level tags: which classes are present (every other class is absent).

* Tag consistency, −(1/N) Σ_p log Σ_{k∈T} S_p^k: every pixel belongs to some present class.
* That alone is satisfied by calling everything background (background is always present), so two terms
  stop the trivial answer: an image-level classification loss on pooled scores — a present class must
  score high somewhere, an absent one nowhere — using the mean of each class's top-ρ fraction of pixel
  probabilities as its image score (between global max and average pooling, robust to a few noisy pixels);
  and suppression of absent classes, the mean probability mass they receive.
"""
from __future__ import annotations

import torch

TOP_FRACTION = 0.1
"""share of an image's pixels whose class probabilities are averaged into that class's image-level score"""


def tag_consistency_loss(probs: torch.Tensor, present: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """probs (B, K, H, W); present (B, K) bool. Mean over images and pixels of −log Σ_{k present} S_p^k."""
    mass = (probs * present[:, :, None, None]).sum(1)
    return -torch.log(mass + eps).mean()


def pooled_scores(probs: torch.Tensor, top_fraction: float = TOP_FRACTION) -> torch.Tensor:
    """(B, K) image-level scores: mean of each class's highest ``top_fraction`` of pixel probabilities."""
    b, k = probs.shape[:2]
    flat = probs.reshape(b, k, -1)
    n = max(1, int(round(flat.shape[-1] * top_fraction)))
    return flat.topk(n, dim=-1).values.mean(-1)


def tag_classification_loss(probs: torch.Tensor, present: torch.Tensor, top_fraction: float = TOP_FRACTION,
                            eps: float = 1e-6) -> torch.Tensor:
    """Binary cross-entropy of the pooled scores against the tags, averaged over images and classes."""
    s = pooled_scores(probs, top_fraction).clamp(eps, 1 - eps)
    t = present.to(s.dtype)
    return -(t * torch.log(s) + (1 - t) * torch.log(1 - s)).mean()


def absent_suppression_loss(probs: torch.Tensor, present: torch.Tensor) -> torch.Tensor:
    """Mean over images and pixels of the probability mass on absent classes."""
    return (probs * (~present)[:, :, None, None]).sum(1).mean()
