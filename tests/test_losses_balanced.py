"""Normalized cut and regional colour consistency losses against their definitions computed by brute force."""
from __future__ import annotations

import pytest
import torch

import engine.losses.normalized_cut as nc
from engine.losses import colour_consistency_loss, normalized_cut_loss
from engine.losses.colour import PRIOR_COUNT, colour_consistency_bruteforce, colour_consistency_gradient
from engine.losses.normalized_cut import normalized_cut_bruteforce, normalized_cut_gradient
from engine.losses.permutohedral import gaussian_filter_exact
from tests.test_dense_crf import label_probs, noise_probs, synthetic_image


class _ExactFilter:
    """The lattice filter's interface with the exact O(N²) Gaussian: isolates the loss's algebra from the
    lattice's approximation."""

    def __init__(self, features):
        self.features = features.double()
        self.self_weight = torch.ones(len(features), dtype=features.dtype)

    def __call__(self, values):
        return gaussian_filter_exact(self.features, values.double()).to(values.dtype)


@pytest.mark.parametrize("sigma_xy", [100.0, 5.0])
@pytest.mark.parametrize("k", [2, 5])
def test_normalized_cut_energy_matches_brute_force(k, sigma_xy):
    image, labels = synthetic_image(40, seed=k)
    for probs in (noise_probs(40, k, 1.5, seed=1), label_probs(labels, k, seed=2)):
        fast = normalized_cut_loss(image, probs, sigma_xy=sigma_xy)
        exact = normalized_cut_bruteforce(image, probs, sigma_xy=sigma_xy)
        assert float(fast) == pytest.approx(float(exact), rel=0.03)
        assert 0 <= float(exact) <= k


def test_normalized_cut_gradient_is_the_derivative(monkeypatch):
    """With the exact kernel in place of the lattice, the closed-form gradient equals autograd through the
    brute-force definition."""
    monkeypatch.setattr(nc, "GaussianFilter", _ExactFilter)
    image, _ = synthetic_image(16, seed=3)
    probs = noise_probs(16, 3, 1.0, seed=4).double().repeat(2, 1, 1, 1)
    probs[1] = probs[1].flip(-1)
    image = image.repeat(2, 1, 1, 1)
    p = probs.clone().requires_grad_(True)
    normalized_cut_bruteforce(image, p, sigma_xy=6.0).backward()
    q = probs.clone().requires_grad_(True)
    loss = normalized_cut_loss(image, q, sigma_xy=6.0)
    loss.backward()
    assert loss.item() == pytest.approx(float(normalized_cut_bruteforce(image, probs, sigma_xy=6.0)), rel=1e-9)
    torch.testing.assert_close(q.grad, p.grad, rtol=1e-7, atol=1e-12)
    torch.testing.assert_close(normalized_cut_gradient(image, probs, sigma_xy=6.0), p.grad, rtol=1e-7, atol=1e-12)


def test_normalized_cut_prefers_no_small_segment():
    """The bias it exists to remove: on an image of two equally coloured halves, cutting off a sliver costs the
    relaxed Potts cut less than the even split, while the normalized cut prefers the even split."""
    image = torch.full((1, 3, 24, 24), 100.0)
    even, sliver = torch.zeros(1, 2, 24, 24), torch.zeros(1, 2, 24, 24)
    even[0, 0, :, :12] = 1
    sliver[0, 0, :, :2] = 1
    even[0, 1], sliver[0, 1] = 1 - even[0, 0], 1 - sliver[0, 0]
    from engine.losses import dense_crf_loss
    assert float(dense_crf_loss(image, sliver, sigma_xy=10)) < float(dense_crf_loss(image, even, sigma_xy=10))
    assert float(normalized_cut_loss(image, even, sigma_xy=10)) < float(normalized_cut_loss(image, sliver, sigma_xy=10))


@pytest.mark.parametrize("gray", [False, True])
def test_colour_consistency_matches_brute_force(gray):
    image, labels = synthetic_image(12, seed=5, gray=gray)
    probs = torch.cat([noise_probs(12, 3, 1.0, seed=6), label_probs(labels, 3, seed=7)])
    image = image.repeat(2, 1, 1, 1)
    assert float(colour_consistency_loss(image, probs, bins=8)) == pytest.approx(
        float(colour_consistency_bruteforce(image, probs, bins=8)), rel=1e-5)


def test_colour_consistency_gradient_is_the_derivative():
    """N·∂R/∂S_p^k = −log θ_k(b) − n_b / (n_b + α/M) + m / (m + α) for p in bin b, with n_b the class's mass in
    the bin and m in all bins: −log θ_k(b) as α → 0."""
    image, _ = synthetic_image(10, seed=8)
    probs = noise_probs(10, 2, 1.0, seed=9).double()
    grad = colour_consistency_gradient(image, probs, bins=4)
    b = (image[0].clamp(0, 255) * 4 / 256).long().clamp(0, 3)
    index = (b[0] * 4 + b[1]) * 4 + b[2]
    for k in range(2):
        s = probs[0, k]
        counts = torch.zeros(64, dtype=torch.float64).index_add_(0, index.flatten(), s.flatten())
        n_b, m, alpha = counts[index], s.sum(), PRIOR_COUNT
        theta = (n_b + alpha / 64) / (m + alpha)
        expected = -torch.log(theta) - n_b / (n_b + alpha / 64) + m / (m + alpha)
        torch.testing.assert_close(grad[0, k], expected / 100, rtol=1e-6, atol=1e-10)


def test_colour_consistency_keeps_distinct_colours_apart():
    """Two flat colours: labelling them apart costs nothing; mixing them costs about log 2 per pixel."""
    image = torch.zeros(1, 3, 8, 8)
    image[..., 4:] = 200
    apart = torch.zeros(1, 2, 8, 8)
    apart[0, 0, :, :4] = 1
    apart[0, 1] = 1 - apart[0, 0]
    mixed = torch.full((1, 2, 8, 8), 0.5)
    assert float(colour_consistency_loss(image, apart)) == pytest.approx(0.0, abs=1e-3)
    assert float(colour_consistency_loss(image, mixed)) == pytest.approx(torch.log(torch.tensor(2.0)).item(), rel=1e-3)
