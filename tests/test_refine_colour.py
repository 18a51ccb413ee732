"""Per-image colour models: the mixture density against the formula, and fits that recover known clusters."""
import numpy as np
import pytest

from engine.refine.colour import REGULARIZATION, GaussianMixture, fit_mixture


def test_log_density_is_the_mixture_formula():
    means = np.array([[10.0, 20.0, 30.0], [200.0, 100.0, 50.0]])
    covs = np.array([np.diag([4.0, 9.0, 16.0]), [[25.0, 5.0, 0.0], [5.0, 25.0, 0.0], [0.0, 0.0, 9.0]]])
    model = GaussianMixture(np.array([0.3, 0.7]), means, covs)
    x = np.array([[12.0, 18.0, 33.0], [190.0, 95.0, 52.0], [100.0, 60.0, 40.0]])
    expected = np.zeros(len(x))
    for pi, mu, cov in zip(model.weights, means, covs):
        d = x - mu
        maha = np.einsum("ni,ij,nj->n", d, np.linalg.inv(cov), d)
        expected += pi * np.exp(-0.5 * maha) / np.sqrt((2 * np.pi) ** 3 * np.linalg.det(cov))
    np.testing.assert_allclose(model.log_density(x), np.log(expected), rtol=1e-9)


def test_fit_recovers_two_clusters():
    rng = np.random.default_rng(0)
    a = rng.normal([30, 60, 90], 5.0, (3000, 3))
    b = rng.normal([200, 180, 40], 10.0, (1000, 3))
    model = fit_mixture(np.concatenate([a, b]), components=2)
    order = np.argsort(model.means[:, 0])
    np.testing.assert_allclose(model.means[order], [[30, 60, 90], [200, 180, 40]], atol=1.5)
    np.testing.assert_allclose(model.weights[order], [0.75, 0.25], atol=0.02)
    np.testing.assert_allclose(np.diagonal(model.covariances[order], axis1=1, axis2=2),
                               [[25 + REGULARIZATION] * 3, [100 + REGULARIZATION] * 3], rtol=0.15)


def test_weights_choose_the_pixels():
    rng = np.random.default_rng(1)
    a = rng.normal([30, 60, 90], 5.0, (2000, 3))
    b = rng.normal([200, 180, 40], 5.0, (2000, 3))
    x = np.concatenate([a, b])
    weights = np.r_[np.zeros(2000), np.ones(2000)]
    model = fit_mixture(x, weights, components=3)
    assert model.log_density(np.array([[200.0, 180, 40]]))[0] > model.log_density(np.array([[30.0, 60, 90]]))[0] + 50
    np.testing.assert_allclose(model.weights @ model.means, [200, 180, 40], atol=1.0)


def test_grayscale_and_tiny_sets():
    model = fit_mixture(np.array([[5.0], [5.0], [250.0]]), components=5)
    assert len(model.weights) <= 3 and np.isfinite(model.log_density(np.array([[5.0], [128.0]]))).all()
    with pytest.raises(ValueError):
        fit_mixture(np.zeros((3, 3)), np.zeros(3))
