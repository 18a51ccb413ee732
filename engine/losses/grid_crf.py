"""Grid CRF loss: a relaxed, contrast-sensitive Potts model on the 8-neighbourhood.

    R(S) = (1/N) Σ_{(p,q) ∈ 8-nbhd, each pair once} w_pq ||S_p − S_q||²,
    w_pq = exp(−||I_p − I_q||² / 2σ²) / dist(p, q)

Neighbouring pixels of similar colour are pushed to the same prediction; across colour edges the weight is
small, so the boundary settles on edges. Dividing by N keeps one loss weight valid across image sizes.
"""
from __future__ import annotations

import torch

# Offsets (dy, dx) that visit every unordered 8-neighbour pair exactly once, with their lengths.
_OFFSETS = ((0, 1, 1.0), (1, 0, 1.0), (1, 1, 2 ** 0.5), (1, -1, 2 ** 0.5))


def _shifted(t: torch.Tensor, dy: int, dx: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The two views of ``t`` (…, H, W) that pair each pixel p with p + (dy, dx) where both are inside."""
    h, w = t.shape[-2:]
    x0, x1 = (0, w - dx) if dx >= 0 else (-dx, w)
    a = t[..., 0:h - dy, x0:x1]
    b = t[..., dy:h, x0 + dx:x1 + dx]
    return a, b


def contrast_sigma(image: torch.Tensor) -> torch.Tensor:
    """Per-image σ with 2σ² = mean ||I_p − I_q||² over 4-neighbour pairs (Boykov & Jolly; GrabCut's β), so the
    weights adapt to each image's contrast. Shape (B, 1, 1)."""
    sq = []
    for dy, dx, _ in _OFFSETS[:2]:
        a, b = _shifted(image, dy, dx)
        sq.append(((a - b) ** 2).sum(1).flatten(1))
    mean = torch.cat(sq, 1).mean(1)
    return torch.sqrt(mean / 2).clamp_min(1e-3).view(-1, 1, 1)


def grid_crf_loss(image: torch.Tensor, probs: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
    """Grid CRF energy averaged over the batch.

    image: (B, C, H, W), C = 3 or 1, float in 0..255; probs: (B, K, H, W) softmax probabilities.
    sigma: colour bandwidth in 0..255 units; None estimates it per image (``contrast_sigma``).
    Returns a scalar tensor differentiable with respect to ``probs``.
    """
    image = image.to(probs.dtype)
    s = contrast_sigma(image) if sigma is None else torch.full((image.shape[0], 1, 1), float(sigma),
                                                                dtype=probs.dtype, device=probs.device)
    n = probs.shape[-1] * probs.shape[-2]
    total = probs.new_zeros(probs.shape[0])
    for dy, dx, dist in _OFFSETS:
        ia, ib = _shifted(image, dy, dx)
        pa, pb = _shifted(probs, dy, dx)
        w = torch.exp(-((ia - ib) ** 2).sum(1) / (2 * s * s)) / dist
        total = total + (w * ((pa - pb) ** 2).sum(1)).flatten(1).sum(1)
    return (total / n).mean()


def grid_crf_gradient(image: torch.Tensor, probs: torch.Tensor, sigma: float | None = None) -> torch.Tensor:
    """∂R/∂S_k as a (B, K, H, W) map, for showing where the regularizer pushes each class (for the batch-mean
    loss, so each image's map is its own gradient divided by B)."""
    with torch.enable_grad():
        p = probs.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(grid_crf_loss(image.detach(), p, sigma), p)
    return grad
