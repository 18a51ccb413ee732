"""Per-image colour models: a Gaussian mixture per class, fitted to weighted pixels (GrabCut's regional term).

A class's colours in one photo are few and clustered (a red book, a white sheep on green grass), so a small
mixture with full covariances describes them well and tells the class apart from its surroundings wherever the
two differ in colour. Fitting is weighted EM (each pixel counts by how much it is believed to be of the class)
started from weighted k-means++ seeds; a random subsample of at most ``max_samples`` pixels is enough to fit five
components, and the log-density is then evaluated on every pixel.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

REGULARIZATION = 4.0
"""added to each covariance's diagonal (intensity units², 0..255 scale): keeps a component fitted to a flat,
saturated or JPEG-quantised patch from collapsing to zero variance"""


@dataclass(frozen=True)
class GaussianMixture:
    weights: np.ndarray
    """(M,) mixing weights, sum 1"""
    means: np.ndarray
    """(M, C)"""
    covariances: np.ndarray
    """(M, C, C)"""

    def log_density(self, x: np.ndarray) -> np.ndarray:
        """log p(x) for (N, C) colours."""
        return _logsumexp(self.component_logs(x))

    def component_logs(self, x: np.ndarray) -> np.ndarray:
        """(M, N) log(π_m N(x | μ_m, Σ_m)), components first so that sums over them run along whole rows."""
        c = x.shape[1]
        chol = np.linalg.cholesky(self.covariances)                       # (M, C, C), Σ = L Lᵀ
        whiten = np.linalg.inv(chol)                                      # z = L⁻¹ (x − μ)
        out = np.empty((len(self.weights), len(x)), x.dtype)
        for m in range(len(self.weights)):
            z = (x - self.means[m].astype(x.dtype)) @ whiten[m].T.astype(x.dtype)
            log_det = 2 * np.log(np.diag(chol[m])).sum()
            np.einsum("nc,nc->n", z, z, out=out[m])
            out[m] *= -0.5
            out[m] += np.log(self.weights[m]) - 0.5 * (c * np.log(2 * np.pi) + log_det)
        return out


def fit_mixture(x: np.ndarray, weights: np.ndarray | None = None, components: int = 5, iterations: int = 6,
                max_samples: int = 8000, seed: int = 0) -> GaussianMixture:
    """A weighted Gaussian mixture of (N, C) float colours. ``weights`` (N,) >= 0, None for all 1. Fewer points
    than components give fewer components; no point at all is an error."""
    w = np.ones(len(x)) if weights is None else np.asarray(weights, np.float64)
    keep = np.flatnonzero(w > 0)
    if not len(keep):
        raise ValueError("a colour model needs at least one pixel with positive weight")
    rng = np.random.default_rng(seed)
    if len(keep) > max_samples:  # a weighted draw of the pixels, each then counting once
        keep = rng.choice(keep, max_samples, replace=False, p=w[keep] / w[keep].sum())
        w = np.ones(max_samples)
    else:
        w = w[keep]
    x = np.asarray(x[keep], np.float64)
    c = x.shape[1]
    m = min(components, len(x))
    means = _kmeans_pp(x, w, m, rng)
    resp = _assign(x, means)
    model = None
    for _ in range(iterations):
        model = _m_step(x, w, resp, c)
        logs = model.component_logs(x)
        resp = np.exp(logs - _logsumexp(logs)).T
    return model if model is not None else _m_step(x, w, resp, c)


def _kmeans_pp(x: np.ndarray, w: np.ndarray, m: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeds drawn with probability ∝ weight × squared distance to the nearest seed."""
    means = [x[rng.choice(len(x), p=w / w.sum())]]
    d2 = ((x - means[0]) ** 2).sum(1)
    for _ in range(1, m):
        p = w * d2
        if p.sum() <= 0:
            break
        means.append(x[rng.choice(len(x), p=p / p.sum())])
        d2 = np.minimum(d2, ((x - means[-1]) ** 2).sum(1))
    return np.stack(means)


def _assign(x: np.ndarray, means: np.ndarray) -> np.ndarray:
    """Hard responsibilities (N, M) to the nearest mean."""
    nearest = ((x[:, None, :] - means[None]) ** 2).sum(2).argmin(1)
    return np.eye(len(means))[nearest]


def _m_step(x: np.ndarray, w: np.ndarray, resp: np.ndarray, c: int) -> GaussianMixture:
    r = resp * w[:, None]
    mass = r.sum(0)
    alive = mass > 1e-9 * mass.sum()
    r, mass = r[:, alive], mass[alive]
    means = (r.T @ x) / mass[:, None]
    covs = np.empty((len(mass), c, c))
    for j in range(len(mass)):
        d = x - means[j]
        covs[j] = (d * r[:, j:j + 1]).T @ d / mass[j] + REGULARIZATION * np.eye(c)
    return GaussianMixture(mass / mass.sum(), means, covs)


def _logsumexp(a: np.ndarray) -> np.ndarray:
    """log Σ_m exp(a_m) over the first axis."""
    top = a.max(axis=0)
    total = np.zeros_like(top)
    for row in a:
        total += np.exp(row - top)
    return top + np.log(total)
