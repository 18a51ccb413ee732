"""Regional colour consistency loss: each class's colours in an image should form a compact distribution (the
regional term of GrabCut, with its colour models estimated from the network's own soft segmentation):

    R(S) = (1/N) Σ_k Σ_p S_p^k · (−log θ_k(b_p)),    θ_k(b) = (Σ_{q: b_q = b} S_q^k + α/M) / (Σ_q S_q^k + α)

b_p is pixel p's colour bin (``bins`` levels per channel, M = bins^C bins), α a small prior mass spread over all
bins that keeps log θ finite. With α = 0 this is Σ_k |S^k|·H(θ_k) / N, the soft segments' colour entropies weighted by their size,
and its gradient is exactly −log θ_k(b_p) (the terms through θ sum to zero): a pixel is pushed toward the class
whose colour model already explains its colour best. image I: (B, C, H, W), C = 3 or 1, 0..255; probs S:
(B, K, H, W); the loss is the mean over the batch of each image's R.

Unlike the pairwise Potts terms it has no preference for small segments: a class's cost grows with its size only
as fast as its colours spread, so an object whose colours differ from its surroundings is not pulled into them.
"""
from __future__ import annotations

import torch

from engine.losses.dense_crf import _check

PRIOR_COUNT = 0.01
"""α, in pixels, spread evenly over all bins"""


def _bins(image: torch.Tensor, bins: int) -> torch.Tensor:
    """(B, N) int64 joint colour bin of every pixel."""
    b, c = image.shape[:2]
    q = (image.to(torch.float32).clamp(0, 255) * (bins / 256.0)).long().clamp_(0, bins - 1).reshape(b, c, -1)
    index = torch.zeros_like(q[:, 0])
    for ch in range(c):
        index = index * bins + q[:, ch]
    return index


def colour_consistency_loss(image: torch.Tensor, probs: torch.Tensor, bins: int = 16) -> torch.Tensor:
    """R(S) averaged over the batch; a scalar differentiable with respect to ``probs`` (autograd through the
    histograms). Cost: one scatter-add and one gather of K channels per image."""
    _check(image, probs, 1.0, 1.0)
    b, k, h, w = probs.shape
    index = _bins(image.to(probs.device), bins)
    m = bins ** image.shape[1]
    s = probs.reshape(b, k, h * w)
    counts = s.new_zeros(b, k, m).scatter_add_(2, index[:, None].expand(b, k, -1), s)
    theta = (counts + PRIOR_COUNT / m) / (counts.sum(2, keepdim=True) + PRIOR_COUNT)
    neg_log = -torch.log(theta).gather(2, index[:, None].expand(b, k, -1))
    return (s * neg_log).sum((1, 2)).mean() / (h * w)


def colour_consistency_gradient(image: torch.Tensor, probs: torch.Tensor, bins: int = 16) -> torch.Tensor:
    """∂R/∂S_k as a (B, K, H, W) map (the gradient of the batch mean), for display."""
    with torch.enable_grad():
        p = probs.detach().float().requires_grad_(True)
        (grad,) = torch.autograd.grad(colour_consistency_loss(image, p, bins), p)
    return grad.to(probs.dtype)


def colour_consistency_bruteforce(image: torch.Tensor, probs: torch.Tensor, bins: int = 16) -> torch.Tensor:
    """The same batch mean pixel by pixel and bin by bin in float64, for tests (small images)."""
    b, k, h, w = probs.shape
    c = image.shape[1]
    total = 0.0
    for i in range(b):
        pix = image[i].reshape(c, -1).T.tolist()
        keys = [tuple(min(bins - 1, int(v * bins / 256.0)) for v in px) for px in pix]
        s = probs[i].reshape(k, -1).to(torch.float64)
        m = bins ** c
        for j in range(k):
            hist: dict[tuple, float] = {}
            for key, v in zip(keys, s[j].tolist()):
                hist[key] = hist.get(key, 0.0) + v
            mass = sum(hist.values())
            total += sum(v * -torch.log(torch.tensor((hist[key] + PRIOR_COUNT / m) / (mass + PRIOR_COUNT),
                                                     dtype=torch.float64)).item()
                         for key, v in zip(keys, s[j].tolist())) / (h * w)
    return torch.tensor(total / b, dtype=torch.float64)
