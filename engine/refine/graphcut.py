"""Minimising a labelling energy on the pixel grid with graph cuts (Boykov & Jolly 2001; Boykov, Veksler &
Zabih 2001), the energy of interactive segmentation:

    E(L) = Σ_p U_p(L_p) + Σ_{p,q 8-neighbours} w_pq [L_p ≠ L_q],
    w_pq = γ · exp(−β ||I_p − I_q||²) / dist(p, q),   β = 1 / (2 ⟨||I_p − I_q||²⟩)

(contrast-sensitive Potts, as in GrabCut). Two labels are one s-t minimum cut, the exact minimum; more labels
are α-expansion, each move a cut, within a factor 2 of the minimum for Potts. The cuts are Kolmogorov's
max-flow (PyMaxflow). Costs are float; a forbidden label costs FORBIDDEN.
"""
from __future__ import annotations

import maxflow
import numpy as np

FORBIDDEN = 1e7
"""unary cost of a label a pixel must not take (a stroke of another class; outside every box, an object)"""

_DIRECTIONS = ((0, 1), (1, 0), (1, 1), (1, -1))
"""(row, column) steps to the right, down, down-right and down-left: each 8-neighbour pair once"""


def contrast_weights(image: np.ndarray, gamma: float) -> list[np.ndarray]:
    """w_pq for each of _DIRECTIONS, as an (H, W) array indexed by p (0 where q falls off the image). ``image``
    is (H, W, C) in 0..255."""
    img = np.asarray(image, np.float32)
    h, w = img.shape[:2]
    diffs = []
    for dr, dc in _DIRECTIONS:
        d = np.zeros((h, w), np.float32)
        p, q = _pair_slices(h, w, dr, dc)
        d[p] = ((img[p] - img[q]) ** 2).sum(-1)
        diffs.append((d, p))
    total = sum(float(d[p].sum()) for d, p in diffs)
    count = sum(d[p].size for d, p in diffs)
    beta = 1.0 / (2 * total / count) if total > 0 else 0.0
    out = []
    for (dr, dc), (d, p) in zip(_DIRECTIONS, diffs):
        wgt = np.zeros((h, w), np.float32)
        wgt[p] = gamma * np.exp(-beta * d[p]) / np.hypot(dr, dc)
        out.append(wgt)
    return out


def _pair_slices(h: int, w: int, dr: int, dc: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """Slices of p and of q = p + (dr, dc) over the pixels where both lie in an (h, w) grid."""
    rows_p = slice(0, h - dr)
    rows_q = slice(dr, h)
    cols_p = slice(max(0, -dc), w - max(0, dc))
    cols_q = slice(max(0, dc), w - max(0, -dc))
    return (rows_p, cols_p), (rows_q, cols_q)


def _structure(dr: int, dc: int) -> np.ndarray:
    s = np.zeros((3, 3))
    s[1 + dr, 1 + dc] = 1
    return s


def binary_cut(cost0: np.ndarray, cost1: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """The labelling x (H, W) bool minimising Σ cost_{x_p} + Σ w_pq [x_p ≠ x_q] exactly."""
    g = maxflow.Graph[float]()
    ids = g.add_grid_nodes(cost0.shape)
    for (dr, dc), wgt in zip(_DIRECTIONS, weights):
        g.add_grid_edges(ids, weights=wgt, structure=_structure(dr, dc), symmetric=True)
    # x = 1 is the sink side: a node there cuts its source link, so the source capacity is the cost of x = 1
    diff = (cost1 - cost0).astype(np.float64)
    g.add_grid_tedges(ids, np.maximum(diff, 0), np.maximum(-diff, 0))
    g.maxflow()
    return g.get_grid_segments(ids)


def expansion_move(labels: np.ndarray, alpha: int, unary: np.ndarray, weights: list[np.ndarray]) -> np.ndarray:
    """The best labelling within one α-expansion of ``labels`` (every pixel keeps its label or takes α).
    ``unary`` is (K, H, W)."""
    h, w = labels.shape
    rows, cols = np.indices((h, w))
    cost0 = unary[labels, rows, cols].astype(np.float64)
    cost1 = unary[alpha].astype(np.float64).copy()
    g = maxflow.Graph[float]()
    ids = g.add_grid_nodes((h, w))
    for (dr, dc), wgt in zip(_DIRECTIONS, weights):
        p, q = _pair_slices(h, w, dr, dc)
        lp, lq, wpq = labels[p], labels[q], wgt[p].astype(np.float64)
        a = wpq * (lp != lq)        # E(keep, keep)
        b = wpq * (lp != alpha)     # E(keep, α)
        c = wpq * (lq != alpha)     # E(α, keep)
        # E = A + (C − A) x_p + (0 − C) x_q + (B + C − A)(1 − x_p) x_q; B + C − A >= 0 for Potts
        cost1[p] += c - a
        cost1[q] -= c
        edge = np.zeros((h, w))
        edge[p] = b + c - a
        g.add_grid_edges(ids, weights=edge, structure=_structure(dr, dc), symmetric=False)
    diff = cost1 - cost0
    g.add_grid_tedges(ids, np.maximum(diff, 0), np.maximum(-diff, 0))
    g.maxflow()
    take = g.get_grid_segments(ids)
    return np.where(take, alpha, labels)


def energy(labels: np.ndarray, unary: np.ndarray, weights: list[np.ndarray]) -> float:
    """E(L) for (H, W) labels, (K, H, W) unary costs and contrast weights (for tests and α-expansion's stop)."""
    h, w = labels.shape
    rows, cols = np.indices((h, w))
    e = float(unary[labels, rows, cols].astype(np.float64).sum())
    for (dr, dc), wgt in zip(_DIRECTIONS, weights):
        p, q = _pair_slices(h, w, dr, dc)
        e += float((wgt[p] * (labels[p] != labels[q])).sum())
    return e


def alpha_expansion(unary: np.ndarray, weights: list[np.ndarray], labels: np.ndarray | None = None,
                    cycles: int = 3) -> np.ndarray:
    """A labelling of (K, H, W) ``unary`` costs by α-expansion over the labels 0..K-1, from ``labels`` (default:
    each pixel's cheapest label), until a cycle lowers the energy no more or after ``cycles`` cycles. Two
    labels are solved exactly by one cut."""
    k = unary.shape[0]
    if k == 1:
        return np.zeros(unary.shape[1:], np.int64)
    if k == 2:
        return binary_cut(unary[0], unary[1], weights).astype(np.int64)
    labels = unary.argmin(0) if labels is None else labels.astype(np.int64)
    best = energy(labels, unary, weights)
    for _ in range(cycles):
        improved = False
        for alpha in range(k):
            moved = expansion_move(labels, alpha, unary, weights)
            e = energy(moved, unary, weights)
            if e < best - 1e-6 * max(1.0, abs(best)):
                labels, best, improved = moved, e, True
        if not improved:
            break
    return labels
