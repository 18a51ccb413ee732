"""Dense CRF regularized loss (Tang et al., ECCV 2018, "On Regularized Losses for Weakly-supervised CNN
Segmentation"), in O(N) per image:

    R(S) = (1/N) Σ_k Σ_{p≠q} w_pq S_p^k (1 − S_q^k),
    w_pq = exp(−||x_p − x_q||² / 2σ_xy² − ||I_p − I_q||² / 2σ_rgb²)

image I: (B, C, H, W), C = 3 (RGB) or 1 (grayscale), values in 0..255; probs S: (B, K, H, W) softmax
probabilities; x: pixel position (column, row) in pixels; N = H·W. σ_rgb is in intensity units (0..255), σ_xy in
pixels. The loss is the mean over the batch of each image's R, as written (non-negative; no constant dropped).

    from engine.losses.dense_crf import dense_crf_loss
    loss = pce + weight * dense_crf_loss(images, torch.softmax(logits, 1), sigma_rgb=15, sigma_xy=100)

With W' the kernel matrix without its diagonal and D' = W'·1 (the degree without the pixel itself):
    N·R = Σ_p D'_p Σ_k S_p^k − Σ_k S^k · W'S^k,     ∂(N·R)/∂S_p^k = D'_p − 2 (W'S^k)_p   (W' symmetric),
which holds for any S. One Gaussian filtering gives W'S and D' at once: of the K channels of S where every
pixel's probabilities sum to 1 (as softmax's do; then W·1 = Σ_k W S^k), and of K + 1 channels, S and a channel
of ones, where they do not (``_sums_to_one``). The forward pass keeps G = D' − 2 W'S (all the backward needs),
so forward + backward cost one filtering; the lattice is rebuilt on every call, as augmentation changes the
image every step.

The filtering is ``permutohedral.GaussianFilter`` on the features (x/σ_xy, y/σ_xy, I/σ_rgb). Its kernel w̃ is
the lattice's approximation of w, symmetric and non-negative; its own diagonal w̃_pp (≈ 1) is removed exactly,
so the energy is the sum over p ≠ q of the lattice weights and never negative. Against the brute-force sum
(``dense_crf_energy_bruteforce``) the energy is within 2% on photo crops, synthetic and grayscale images at
σ_xy = 100 and 5, for smooth, near one-hot and edge-following probabilities (tests/test_dense_crf.py); per
pixel, D' is within about 1.3% (median) and 4% (95th percentile).

Small σ_xy is much dearer than the default 100, as the lattice then has about one vertex per pixel (its times:
``wsv bench crf``, docs/benchmarks.md).
"""
from __future__ import annotations

import functools

import torch

from engine.losses.permutohedral import GaussianFilter, beside, gaussian_filter_exact


def _sums_to_one(deviation: float, dtype: torch.dtype) -> bool:
    """Whether probabilities whose sums stray from 1 by at most ``deviation`` count as summing to 1, so that the
    degree W·1 is taken as Σ_k W S^k and no channel of ones is filtered (a third less filtering with two
    classes): within √ε of the dtype, which covers softmax's rounding. The degree then errs by at most that
    fraction. Further off (unnormalised scores, or a float64 input perturbed as gradcheck does), the ones channel
    keeps the energy the function of S that its gradient is the gradient of."""
    return deviation <= torch.finfo(dtype).eps ** 0.5


def pixel_features(image: torch.Tensor, sigma_rgb: float, sigma_xy: float) -> torch.Tensor:
    """(N, 2 + C) features (x/σ_xy, y/σ_xy, I/σ_rgb) of one image (C, H, W), pixels in row-major order. Stored
    feature by feature (a transposed view), as the image is and as the CPU lattice reads them: written in one
    pass per feature, with no transposing copy, on every training step."""
    if not image.is_floating_point():
        image = image.float()
    c, h, w = image.shape
    f = image.new_empty(c + 2, h, w)
    f[0] = torch.arange(w, dtype=image.dtype, device=image.device) / sigma_xy
    f[1] = (torch.arange(h, dtype=image.dtype, device=image.device) / sigma_xy)[:, None]
    torch.div(image, sigma_rgb, out=f[2:])
    return f.view(c + 2, h * w).T


def _check(image: torch.Tensor, probs: torch.Tensor, sigma_rgb: float, sigma_xy: float) -> torch.dtype:
    """Validate shapes and bandwidths; return the dtype to compute in (float32 unless probs are float64)."""
    if probs.dim() != 4 or image.dim() != 4:
        raise ValueError("image must be (B, C, H, W) and probs (B, K, H, W)")
    if image.shape[0] != probs.shape[0] or image.shape[-2:] != probs.shape[-2:]:
        raise ValueError(f"image {tuple(image.shape)} and probs {tuple(probs.shape)} differ in batch or size")
    if image.shape[1] not in (1, 3):
        raise ValueError("image must have 3 (RGB) or 1 (grayscale) channels")
    if not (sigma_rgb > 0 and sigma_xy > 0):
        raise ValueError("sigma_rgb and sigma_xy must be positive")
    return torch.float64 if probs.dtype == torch.float64 else torch.float32


def _filtered(image: torch.Tensor, probs: torch.Tensor, sigma_rgb: float, sigma_xy: float, dtype: torch.dtype
              ) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """R per image (B,) in float64, and per image G = D' − 2 W'S = N·∂R/∂S as (K, N) in ``dtype``."""
    b, k, h, w = probs.shape
    n = h * w
    energy = probs.new_empty(b, dtype=torch.float64)
    grads = []
    image = image.to(device=probs.device, dtype=dtype)
    for i in range(b):
        filt = GaussianFilter(pixel_features(image[i], sigma_rgb, sigma_xy))
        s = probs[i].reshape(k, n).to(dtype).contiguous()
        if s.device.type == "cpu":
            from engine.losses import dense_crf_cpu  # numba, as the CPU lattice

            vals, g, halves = s.new_empty(n, k), torch.empty_like(s), ((0, n // 2), (n // 2, n))
            if not _sums_to_one(max(beside(*(functools.partial(dense_crf_cpu.values, s.numpy(), vals.numpy(), *h)
                                             for h in halves))), dtype):
                vals = torch.cat([vals, vals.new_ones(n, 1)], 1)
            out, self_weight = filt(vals).numpy(), filt.self_weight[0].item()
            twice = sum(beside(*(functools.partial(dense_crf_cpu.terms, out, s.numpy(), self_weight, g.numpy(), *h)
                                 for h in halves)))
            energy[i] = max(twice / (2 * n), 0.0)
        else:
            vals = s.T.contiguous()
            if not _sums_to_one((s.sum(0) - 1).abs().max().item(), dtype):
                vals = torch.cat([vals, vals.new_ones(n, 1)], 1)
            twice, g = _terms(filt(vals), s, filt.self_weight[0])
            energy[i] = (twice.double() / (2 * n)).clamp_min(0.0)
        grads.append(g)
    return energy, grads


def _terms(filtered: torch.Tensor, s: torch.Tensor, self_weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """2·N·R and G = D' − 2 W'S (K, N) from the filtered (N, K + 1) (W S and the degree W 1), or (N, K) where the
    degree is their sum (``_sums_to_one``), and S (K, N):
    D'_p = Σ_{q≠p} w̃_pq, N·R = Σ_p D'_p Σ_k S_p^k − Σ S·W'S = (Σ_p D'_p Σ_k S_p^k + Σ S·G) / 2, ≥ 0 up to
    rounding. ``dense_crf_cpu.terms`` does the same on the CPU in one pass."""
    k = s.shape[0]
    deg = (filtered[:, k] if filtered.shape[1] > k else filtered.sum(1)) - self_weight
    g = (deg - 2 * filtered[:, :k].T).addcmul_(s, 2 * self_weight)
    return (s.sum(0) * deg).sum() + (s * g).sum(), g


def _gradient(grads: list[torch.Tensor], shape: torch.Size, scale) -> torch.Tensor:
    """G · scale for every image, in the (B, K, H, W) layout."""
    out = grads[0].new_empty(shape)
    for i, g in enumerate(grads):
        torch.mul(g.view(shape[1:]), scale, out=out[i])
    return out


class _DenseCRFLoss(torch.autograd.Function):
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
        grads = ctx.saved_tensors
        b, _, h, w = ctx.shape
        grad = _gradient(grads, ctx.shape, grad_out.to(grads[0].dtype) / (b * h * w))
        return grad.to(ctx.dtype), None, None, None


def dense_crf_loss(image: torch.Tensor, probs: torch.Tensor, sigma_rgb: float = 15.0,
                   sigma_xy: float = 100.0) -> torch.Tensor:
    """Dense CRF energy R(S), averaged over the batch; a scalar differentiable with respect to ``probs``.

    image: (B, C, H, W), C = 3 or 1, float (or uint8) in 0..255; probs: (B, K, H, W) softmax probabilities of
    the same H, W. sigma_rgb in intensity units, sigma_xy in pixels of these images. Computed in float32
    (float64 if probs are float64) on probs' device. Cost: see the module docstring.
    """
    return _DenseCRFLoss.apply(probs, image, float(sigma_rgb), float(sigma_xy))


def dense_crf_gradient(image: torch.Tensor, probs: torch.Tensor, sigma_rgb: float = 15.0,
                       sigma_xy: float = 100.0) -> torch.Tensor:
    """∂R/∂S_k as a (B, K, H, W) map, for showing where the regularizer pushes each class. It is the gradient
    of ``dense_crf_loss`` (the batch mean), so each image's map is its own gradient divided by B."""
    dtype = _check(image, probs, sigma_rgb, sigma_xy)
    with torch.no_grad():
        _, grads = _filtered(image, probs, float(sigma_rgb), float(sigma_xy), dtype)
    b, _, h, w = probs.shape
    return _gradient(grads, probs.shape, 1.0 / (b * h * w)).to(probs.dtype)


def dense_crf_energy_bruteforce(image: torch.Tensor, probs: torch.Tensor, sigma_rgb: float = 15.0,
                                sigma_xy: float = 100.0, chunk_bytes: int = 64 << 20) -> torch.Tensor:
    """The same batch-mean R by the definition, O(N²) in float64, evaluating w_pq block by block (about
    ``chunk_bytes`` at a time), so N up to a few 10⁴ pixels fits in memory. The reference for tests."""
    _check(image, probs, sigma_rgb, sigma_xy)
    b, k, h, w = probs.shape
    n = h * w
    rows = max(1, chunk_bytes // (8 * n))
    total = torch.zeros((), dtype=torch.float64, device=probs.device)
    for i in range(b):
        f = pixel_features(image[i].to(device=probs.device, dtype=torch.float64), sigma_rgb, sigma_xy)
        s = probs[i].reshape(k, n).T.to(torch.float64)                             # (N, K)
        for start in range(0, n, rows):
            stop = min(start + rows, n)
            wpq = torch.exp(-0.5 * torch.cdist(f[start:stop], f).square_())
            wpq[torch.arange(stop - start), torch.arange(start, stop)] = 0.0      # p ≠ q
            total += (s[start:stop] * (wpq @ (1 - s))).sum() / n
    return total / b


def dense_crf_accuracy(image: torch.Tensor, probs: torch.Tensor, sigma_rgb: float = 15.0,
                       sigma_xy: float = 100.0) -> dict[str, float]:
    """How far the fast energy and filtering are from brute force, for a benchmark. O(N²): small images only.

    Keys: ``energy`` and ``energy_exact`` (batch means) and ``rel_error`` (signed, of the energy); over all
    pixels of the batch, with D'_p = Σ_{q≠p} w_pq exact: ``degree_err_median`` / ``degree_err_p95``
    (|D̃' − D'| / D') and ``filter_err_median`` / ``filter_err_p95`` (|(W̃'S)_p^k − (W'S)_p^k| / D'_p).
    """
    dtype = _check(image, probs, sigma_rgb, sigma_xy)
    b, k, h, w = probs.shape
    with torch.no_grad():
        energy, _ = _filtered(image, probs, float(sigma_rgb), float(sigma_xy), dtype)
        exact = dense_crf_energy_bruteforce(image, probs, sigma_rgb, sigma_xy)
        deg_err, ws_err = [], []
        for i in range(b):
            f = pixel_features(image[i].to(device=probs.device, dtype=torch.float64), sigma_rgb, sigma_xy)
            vals = torch.cat([probs[i].reshape(k, h * w).T.to(torch.float64), f.new_ones(h * w, 1)], 1)
            filt = GaussianFilter(f.to(dtype))
            fast = filt(vals.to(dtype)).double() - filt.self_weight.double()[:, None] * vals
            ref = gaussian_filter_exact(f, vals) - vals
            deg_err.append((fast[:, k] - ref[:, k]).abs() / ref[:, k])
            ws_err.append(((fast[:, :k] - ref[:, :k]).abs() / ref[:, k:]).flatten())
        deg_err, ws_err = torch.cat(deg_err).sort().values, torch.cat(ws_err).sort().values
    fast_energy = energy.mean()
    return {"energy": fast_energy.item(), "energy_exact": exact.item(), "rel_error": (fast_energy / exact - 1).item(),
            "degree_err_median": deg_err[len(deg_err) // 2].item(),
            "degree_err_p95": deg_err[int(0.95 * (len(deg_err) - 1))].item(),
            "filter_err_median": ws_err[len(ws_err) // 2].item(),
            "filter_err_p95": ws_err[int(0.95 * (len(ws_err) - 1))].item()}
