"""pCE and grid CRF loss against brute-force references and hand-worked cases."""
import math

import numpy as np
import torch

from engine.losses.grid_crf import contrast_sigma, grid_crf_gradient, grid_crf_loss
from engine.losses.pce import partial_cross_entropy


def test_pce_worked_example():
    logits = torch.zeros(1, 2, 1, 3)
    logits[0, 0, 0, 0] = math.log(3.0)  # softmax = (3/4, 1/4)
    seeds = torch.tensor([[[0, 1, 255]]])
    # pixel 0: -log(3/4); pixel 1: uniform -> -log(1/2); pixel 2 ignored
    expected = (-math.log(0.75) - math.log(0.5)) / 2
    assert abs(partial_cross_entropy(logits, seeds).item() - expected) < 1e-6


def test_balanced_pce_worked_example():
    logits = torch.zeros(1, 3, 1, 5)
    logits[0, 0, 0, 0] = math.log(3.0)  # softmax over 3 classes = (3/5, 1/5, 1/5)
    seeds = torch.tensor([[[0, 0, 0, 1, 255]]])
    # class 0: pixels -log(3/5), -log(1/3), -log(1/3); class 1: -log(1/3); class 2 unseeded, not counted
    class0 = (-math.log(0.6) - 2 * math.log(1 / 3)) / 3
    expected = (class0 - math.log(1 / 3)) / 2
    assert abs(partial_cross_entropy(logits, seeds, balanced=True).item() - expected) < 1e-6
    plain = (-math.log(0.6) - 3 * math.log(1 / 3)) / 4
    assert abs(partial_cross_entropy(logits, seeds).item() - plain) < 1e-6


def test_balanced_pce_matches_per_class_means_on_random_batches():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 6, 7, generator=g)
    seeds = torch.randint(0, 4, (2, 6, 7), generator=g)
    seeds[torch.rand(2, 6, 7, generator=g) < 0.6] = 255
    seeds[seeds == 2] = 255  # one class without seeds
    logp = torch.log_softmax(logits, 1)
    per_class = []
    for k in (0, 1, 3):
        b, y, x = torch.nonzero(seeds == k, as_tuple=True)
        per_class.append(-logp[b, k, y, x].mean())
    expected = torch.stack(per_class).mean()
    assert torch.allclose(partial_cross_entropy(logits, seeds, balanced=True), expected, atol=1e-6)
    assert partial_cross_entropy(logits, torch.full_like(seeds, 255), balanced=True).item() == 0.0


def test_pce_no_seeds_is_zero_with_gradient():
    logits = torch.randn(2, 3, 4, 4, requires_grad=True)
    loss = partial_cross_entropy(logits, torch.full((2, 4, 4), 255))
    loss.backward()
    assert loss.item() == 0.0 and torch.all(logits.grad == 0)


def brute_grid(image, probs, sigma):
    """Direct sum over every unordered 8-neighbour pair."""
    img = image.double().numpy()
    s = probs.double().numpy()
    _, h, w = s.shape[1:] if s.ndim == 4 else s.shape
    total = 0.0
    for y in range(h):
        for x in range(w):
            for yy in range(h):
                for xx in range(w):
                    if (yy, xx) <= (y, x) or max(abs(yy - y), abs(xx - x)) != 1:
                        continue
                    d = math.hypot(yy - y, xx - x)
                    wpq = math.exp(-np.sum((img[:, y, x] - img[:, yy, xx]) ** 2) / (2 * sigma ** 2)) / d
                    total += wpq * np.sum((s[:, y, x] - s[:, yy, xx]) ** 2)
    return total / (h * w)


def test_grid_crf_matches_brute_force_rgb_and_gray():
    g = torch.Generator().manual_seed(0)
    for c in (3, 1):
        image = torch.rand(1, c, 6, 7, generator=g) * 255
        probs = torch.softmax(torch.randn(1, 4, 6, 7, generator=g) * 2, 1)
        got = grid_crf_loss(image, probs, sigma=40.0).item()
        assert abs(got - brute_grid(image[0], probs[0], 40.0)) < 1e-5 * max(1, got)


def test_grid_crf_worked_two_pixels():
    # Two pixels side by side, colour difference 10, sigma 10: w = exp(-100/200); ||S_p - S_q||^2 = 2 * 0.5^2.
    image = torch.tensor([[[[0.0, 10.0]]]])
    probs = torch.tensor([[[[1.0, 0.5]], [[0.0, 0.5]]]])
    expected = math.exp(-0.5) * 0.5 / 2
    assert abs(grid_crf_loss(image, probs, sigma=10.0).item() - expected) < 1e-7


def test_grid_crf_auto_sigma_and_batch_mean():
    g = torch.Generator().manual_seed(1)
    image = torch.rand(2, 3, 8, 8, generator=g) * 255
    probs = torch.softmax(torch.randn(2, 3, 8, 8, generator=g), 1)
    sig = contrast_sigma(image)
    each = [grid_crf_loss(image[i:i + 1], probs[i:i + 1], sigma=float(sig[i])) for i in range(2)]
    assert torch.allclose(grid_crf_loss(image, probs), (each[0] + each[1]) / 2, rtol=1e-5)


def test_grid_crf_gradient_is_autograd_gradient_and_zero_for_constant_probs():
    g = torch.Generator().manual_seed(2)
    image = torch.rand(1, 3, 5, 5, generator=g, dtype=torch.float64) * 255
    probs = torch.softmax(torch.randn(1, 2, 5, 5, generator=g, dtype=torch.float64), 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: grid_crf_loss(image, p, sigma=30.0), (probs,))
    grad = grid_crf_gradient(image, probs, sigma=30.0)
    (auto,) = torch.autograd.grad(grid_crf_loss(image, probs, sigma=30.0), probs)
    assert torch.allclose(grad, auto)
    flat = torch.full((1, 2, 5, 5), 0.5, dtype=torch.float64)
    assert grid_crf_loss(image, flat, sigma=30.0).item() == 0.0


def test_the_losses_import_from_the_package_as_the_readme_shows():
    import engine.losses as losses
    from engine.losses import dense_crf_loss, partial_cross_entropy as pce

    assert pce is partial_cross_entropy and callable(dense_crf_loss)
    assert all(callable(getattr(losses, name)) for name in losses.__all__)
