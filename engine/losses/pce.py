"""Partial cross-entropy: the supervised term of weakly-supervised segmentation, on the marked pixels only."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def partial_cross_entropy(logits: torch.Tensor, seeds: torch.Tensor, ignore_index: int = 255,
                          balanced: bool = False) -> torch.Tensor:
    """Mean over seed pixels of −log S_p[y_p], with S = softmax(logits) over classes.

    logits: (B, K, H, W) raw network outputs; seeds: (B, H, W) integer class index per pixel, ``ignore_index``
    where unlabeled. The mean is taken over all seed pixels of the batch, so an image with more marks weighs
    more, as in the pCE of Tang et al. A batch without a single seed gives 0 (still differentiable) rather
    than NaN, because a user may press Train before marking anything.

    ``balanced``: the mean of the per-class means over the classes seeded in the batch, (1/|C|) Σ_{k∈C}
    (1/|Ω_k|) Σ_{p∈Ω_k} −log S_p[k]. People draw one long stroke around what they do not want and short ones
    inside thin structures; with the plain mean those short strokes hardly count.
    """
    seeds = seeds.long()
    valid = seeds != ignore_index
    if not valid.any():
        return logits.sum() * 0.0
    if not balanced:
        return F.cross_entropy(logits, seeds, ignore_index=ignore_index, reduction="mean")
    ce = F.cross_entropy(logits, seeds, ignore_index=ignore_index, reduction="none")[valid]
    labels = seeds[valid]
    counts = torch.bincount(labels, minlength=logits.shape[1]).to(ce.dtype)
    return (ce / counts[labels]).sum() / (counts > 0).sum()
