"""Partial cross-entropy: the supervised term of weakly-supervised segmentation, on the marked pixels only."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def partial_cross_entropy(logits: torch.Tensor, seeds: torch.Tensor, ignore_index: int = 255) -> torch.Tensor:
    """Mean over seed pixels of −log S_p[y_p], with S = softmax(logits) over classes.

    logits: (B, K, H, W) raw network outputs; seeds: (B, H, W) integer class index per pixel, ``ignore_index``
    where unlabeled. The mean is taken over all seed pixels of the batch, so an image with more marks weighs
    more, as in the pCE of Tang et al. A batch without a single seed gives 0 (still differentiable) rather
    than NaN, because a user may press Train before marking anything.
    """
    seeds = seeds.long()
    if not (seeds != ignore_index).any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits, seeds, ignore_index=ignore_index, reduction="mean")
