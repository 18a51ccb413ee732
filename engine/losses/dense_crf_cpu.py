"""The dense CRF loss's per-pixel work around the filtering, compiled for the CPU (numba): laying out the
filter's input and turning its output into the gradient and the energy, one pass each.

In torch these are about ten whole-array operations, several of them on strided views. On the CPU each is a
parallel loop whose threads are woken for it (the engine has them sleep between loops, ``engine.threads``), which
costs more than the arithmetic at the sizes the loss sees (docs/benchmarks.md). ``dense_crf._terms`` is the same
arithmetic in torch, for other devices; a test checks that the two agree.
"""
from __future__ import annotations

import numpy as np
from numba import njit


BLOCK = 64
"""Pixels per block: the loops over a block's pixels are the innermost, so that they run in vector instructions,
and a block of the (N, K) array stays in the first-level cache while its channels are visited."""


@njit(cache=True, nogil=True)
def values(s: np.ndarray, out: np.ndarray, start: int, stop: int) -> float:
    """The filter's input (N, K): the probabilities s (K, N), pixel by pixel, for pixels start..stop, so that two
    threads can share the work; returns the largest |Σ_k S_p^k − 1| among them (``dense_crf._sums_to_one``)."""
    k = s.shape[0]
    total = np.empty(BLOCK, s.dtype)
    worst = 0.0
    for p0 in range(start, stop, BLOCK):
        nb = min(BLOCK, stop - p0)
        for j in range(nb):
            total[j] = 0
        for c in range(k):
            for j in range(nb):
                v = s[c, p0 + j]
                out[p0 + j, c] = v
                total[j] += v
        for j in range(nb):
            worst = max(worst, abs(np.float64(total[j]) - 1))
    return worst


@njit(cache=True, nogil=True)
def terms(filtered: np.ndarray, s: np.ndarray, self_weight: float, g: np.ndarray, start: int, stop: int) -> float:
    """From the filtered (N, K + 1) (W S and the degree W 1), or (N, K) where the degree is their sum, and s
    (K, N): writes G = D' − 2 W'S (K, N) into g and returns 2·N·R = Σ_p D'_p Σ_k S_p^k + Σ S·G (see
    ``dense_crf``), over pixels start..stop, summed in float64 (one partial sum per position in a block, so that
    the sum, too, runs in vector instructions)."""
    k = s.shape[0]
    ones = filtered.shape[1] > k
    deg = np.empty(BLOCK, filtered.dtype)
    total = np.zeros(BLOCK)
    for p0 in range(start, stop, BLOCK):
        nb = min(BLOCK, stop - p0)
        if ones:
            for j in range(nb):
                deg[j] = filtered[p0 + j, k] - self_weight
        else:
            for j in range(nb):
                deg[j] = -self_weight
            for c in range(k):
                for j in range(nb):
                    deg[j] += filtered[p0 + j, c]
        for c in range(k):
            for j in range(nb):
                sc = s[c, p0 + j]
                gc = deg[j] - 2 * filtered[p0 + j, c] + 2 * self_weight * sc
                g[c, p0 + j] = gc
                total[j] += np.float64(sc) * (gc + deg[j])
    return total.sum()
