"""Normalized cut loss (Tang, Djelouah, Perazzi, Boykov & Schroers, CVPR 2018, "Normalized Cut Loss for
Weakly-supervised CNN Segmentation"), with the dense CRF loss's Gaussian bilateral kernel, in O(N) per image:

    R(S) = Σ_k S^kᵀ W' (1 − S^k) / (d'ᵀ S^k),    d' = W'·1,

W' the kernel matrix w_pq = exp(−||x_p − x_q||² / 2σ_xy² − ||I_p − I_q||² / 2σ_rgb²) without its diagonal (as in
engine.losses.dense_crf). image I: (B, C, H, W), C = 3 or 1, 0..255; probs S: (B, K, H, W). The loss is the
mean over the batch of each image's R (between 0 and K).

Why it is here: the dense CRF loss is the relaxed Potts cut Σ_k S^kᵀ W'(1 − S^k) / N, and a cut is cheapest
when one side is small. With long strokes that hardly matters, but with one short stroke through an object and
a few on the background, most of the object is unmarked and the cheapest labelling gives it to the background,
which already holds most of the kernel's mass: the object shrinks to its stroke. Dividing each class's cut by
its volume d'ᵀS^k — how much kernel weight its pixels hold — removes that bias toward small segments.

With c_k = S^kᵀ W'(1 − S^k) and v_k = d'ᵀ S^k, the gradient is
    ∂R/∂S_p^k = (d'_p − 2 (W'S^k)_p) / v_k − c_k d'_p / v_k²   (W' symmetric),
so one filtering of K + 1 channels (S and ones) gives the loss and its gradient, as for the dense CRF loss.
"""
from __future__ import annotations

import torch

from engine.losses.dense_crf import _check, pixel_features
from engine.losses.permutohedral import GaussianFilter

_EPS = 1e-9
"""relative floor on a class's volume (a class with no probability mass anywhere has no cut to normalise)"""


def _filtered(image: torch.Tensor, probs: torch.Tensor, sigma_rgb: float, sigma_xy: float, dtype: torch.dtype
              ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """R per image (B,) in float64, and per image ∂R/∂S as (N, K) in ``dtype``."""
    b, k, h, w = probs.shape
    n = h * w
    energy = probs.new_empty(b, dtype=torch.float64)
    grads = []
    image = image.to(device=probs.device, dtype=dtype)
    for i in range(b):
        filt = GaussianFilter(pixel_features(image[i], sigma_rgb, sigma_xy))
        vals = probs.new_empty(n, k + 1, dtype=dtype)
        vals[:, :k].copy_(probs[i].reshape(k, n).T)
        vals[:, k] = 1.0
        s, out = vals[:, :k], filt(vals)
        deg = out[:, k] - filt.self_weight                                   # d'_p
        ws = out[:, :k] - filt.self_weight[:, None] * s                      # (W'S)_p^k
        vol = (deg[:, None] * s).sum(0).clamp_min(_EPS * float(deg.sum()))   # v_k
        cut = (s * (deg[:, None] - ws)).sum(0)                               # c_k
        energy[i] = (cut.double() / vol.double()).sum().clamp_min(0.0)
        grads.append((deg[:, None] - 2 * ws) / vol - deg[:, None] * (cut / vol.square()))
    return energy, grads


class _NormalizedCutLoss(torch.autograd.Function):
    @staticmethod
    def forward(ctx, probs, image, sigma_rgb, sigma_xy):
        dtype = _check(image, probs, sigma_rgb, sigma_xy)
        with torch.no_grad():
            energy, grads = _filtered(image, probs.detach(), sigma_rgb, sigma_xy, dtype)
        ctx.save_for_backward(*grads)
        ctx.shape, ctx.dtype = probs.shape, probs.dtype
        return energy.mean().to(probs.dtype)

    @staticmethod
    def backward(ctx, grad_out):
        return _gradient_map(ctx.saved_tensors, ctx.shape, grad_out).to(ctx.dtype), None, None, None


def _gradient_map(grads, shape: torch.Size, scale) -> torch.Tensor:
    """The per-image (N, K) gradients as one (B, K, H, W) map of the batch mean, times ``scale``."""
    b = shape[0]
    return torch.stack([g.T.reshape(shape[1:]) for g in grads]) * (scale / b)


def normalized_cut_loss(image: torch.Tensor, probs: torch.Tensor, sigma_rgb: float = 15.0,
                        sigma_xy: float = 100.0) -> torch.Tensor:
    """Normalized cut R(S), averaged over the batch; a scalar differentiable with respect to ``probs``.
    Shapes and units as ``engine.losses.dense_crf_loss``."""
    return _NormalizedCutLoss.apply(probs, image, float(sigma_rgb), float(sigma_xy))


def normalized_cut_gradient(image: torch.Tensor, probs: torch.Tensor, sigma_rgb: float = 15.0,
                            sigma_xy: float = 100.0) -> torch.Tensor:
    """∂R/∂S_k as a (B, K, H, W) map (the gradient of the batch mean), for display."""
    dtype = _check(image, probs, sigma_rgb, sigma_xy)
    with torch.no_grad():
        _, grads = _filtered(image, probs, float(sigma_rgb), float(sigma_xy), dtype)
    return _gradient_map(grads, probs.shape, 1.0).to(probs.dtype)


def normalized_cut_bruteforce(image: torch.Tensor, probs: torch.Tensor, sigma_rgb: float = 15.0,
                              sigma_xy: float = 100.0) -> torch.Tensor:
    """The same batch mean by the definition, with the exact O(N²) kernel in float64: the reference for tests
    (a few thousand pixels at most)."""
    _check(image, probs, sigma_rgb, sigma_xy)
    b, k, h, w = probs.shape
    total = torch.zeros((), dtype=torch.float64)
    for i in range(b):
        f = pixel_features(image[i].to(torch.float64), sigma_rgb, sigma_xy)
        wpq = torch.exp(-0.5 * torch.cdist(f, f).square())
        wpq.fill_diagonal_(0.0)
        s = probs[i].reshape(k, h * w).T.to(torch.float64)
        deg = wpq.sum(1)
        total = total + sum((s[:, j] @ wpq @ (1 - s[:, j])) / (deg @ s[:, j]) for j in range(k))
    return total / b
