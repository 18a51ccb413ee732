"""Vertex sets of the permutohedral lattice on the CPU, compiled with Numba: the two set operations
``permutohedral.GaussianFilter`` builds its operators from, in linear time where a general sort needs n log n.

* ``unique_codes``: the distinct vertex codes the pixels' simplex corners touch, sorted, and each corner's
  vertex. A hash table holds the vertices (few beside the corners: at the default bandwidths a 512² image's
  1.6 million corners land on some 20 000 vertices, a table that stays in cache), and only the distinct codes
  are sorted.
* ``merge_shifted``: the union of 2R + 1 copies of one sorted code array shifted by multiples of one step (a blur
  step along one lattice direction), as a merge of sorted copies. It yields the union sorted, the entries
  (which source vertex, which shift) grouped by the union vertex they land on — the rows of the blur step
  that spreads values outwards — and, for every source vertex and shift, where it landed — the rows of the
  step that gathers values back inwards.

Both return what ``torch.sort`` gave the same code before (tests/test_dense_crf.py compares the two on every
set), so the CUDA path keeps sorting on the GPU and the operators are identical.
"""
from __future__ import annotations

import numpy as np
import torch
from numba import njit

_EMPTY = np.iinfo(np.int64).min


@njit(cache=True, nogil=True)
def _unique(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    n = codes.size
    cap = 1 << 12
    keys = np.full(cap, _EMPTY, dtype=np.int64)
    ids = np.empty(cap, dtype=np.int64)
    seen = np.empty(n, dtype=np.int64)
    first = np.empty(n, dtype=np.int64)
    count = 0
    mask = cap - 1
    for i in range(n):
        code = np.int64(codes[i])
        slot = (code * np.int64(-7046029254386353131)) >> np.int64(20) & mask
        while True:
            k = keys[slot]
            if k == code:
                seen[i] = ids[slot]
                break
            if k == _EMPTY:
                keys[slot] = code
                ids[slot] = count
                first[count] = code
                seen[i] = count
                count += 1
                if 2 * count > cap:  # keep the table at most half full: grow and re-insert
                    cap *= 2
                    mask = cap - 1
                    keys = np.full(cap, _EMPTY, dtype=np.int64)
                    ids = np.empty(cap, dtype=np.int64)
                    for j in range(count):
                        s = (first[j] * np.int64(-7046029254386353131)) >> np.int64(20) & mask
                        while keys[s] != _EMPTY:
                            s = (s + 1) & mask
                        keys[s] = first[j]
                        ids[s] = j
                break
            slot = (slot + 1) & mask
    distinct = first[:count]
    order = np.argsort(distinct)
    rank = np.empty(count, dtype=np.int64)
    rank[order] = np.arange(count)
    inverse = np.empty(n, dtype=np.int64)
    rows = np.zeros(count + 1, dtype=np.int64)
    for i in range(n):
        v = rank[seen[i]]
        inverse[i] = v
        rows[v + 1] += 1
    for v in range(count):
        rows[v + 1] += rows[v]
    fill = rows[:-1].copy()
    members = np.empty(n, dtype=np.int64)
    for i in range(n):
        v = inverse[i]
        members[fill[v]] = i
        fill[v] += 1
    return distinct[order], inverse, rows, members


@njit(cache=True, nogil=True)
def _merge(a: np.ndarray, step: np.int64, reach: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                                                   np.ndarray]:
    m = a.size
    k = 2 * reach + 1
    offsets = np.empty(k, dtype=np.int64)
    for e in range(k):
        offsets[e] = (e - reach) * np.int64(step)
    # copy e is a + offsets[e]; with a negative step the copies' order reverses, so visit them by offset
    order = np.argsort(offsets)
    heads = np.zeros(k, dtype=np.int64)
    total = k * m
    union = np.empty(total, dtype=np.int64)
    rows = np.empty(total + 1, dtype=np.int64)
    source = np.empty(total, dtype=np.int64)
    shift = np.empty(total, dtype=np.int64)
    landed = np.empty(total, dtype=np.int64)            # landed[i * k + e]: union index of a[i] + offsets[e]
    out = -1
    for t in range(total):
        best = -1
        best_code = np.int64(0)
        for c in range(k):
            e = order[c]
            h = heads[e]
            if h < m:
                code = a[h] + offsets[e]
                if best < 0 or code < best_code:
                    best, best_code = e, code
        h = heads[best]
        heads[best] = h + 1
        if out < 0 or union[out] != best_code:
            out += 1
            union[out] = best_code
            rows[out] = t
        source[t] = h
        shift[t] = best
        landed[h * k + best] = out
    rows[out + 1] = total
    return union[:out + 1], rows[:out + 2], source, shift, landed


def unique_codes(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The distinct codes of a 1-D integer CPU tensor, sorted; each code's index among them; and the codes
    grouped by distinct code: row starts (|distinct| + 1) and the members' positions in ``codes``, ascending
    within a row."""
    distinct, inverse, rows, members = _unique(codes.numpy())
    return (torch.from_numpy(distinct).to(codes.dtype), torch.from_numpy(inverse), torch.from_numpy(rows),
            torch.from_numpy(members))


def merge_shifted(codes: torch.Tensor, step: int, reach: int
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Union of ``codes + e·step`` for e = −reach..reach, ``codes`` a sorted 1-D integer CPU tensor.

    Returns (union sorted; row starts (|union| + 1) of the entries grouped by union vertex; each entry's source
    index into ``codes``; its shift index e + reach; and (|codes|, 2·reach + 1) where each source and shift
    landed in the union)."""
    union, rows, source, shift, landed = _merge(codes.numpy(), np.int64(step), reach)
    return (torch.from_numpy(union).to(codes.dtype), torch.from_numpy(rows), torch.from_numpy(source),
            torch.from_numpy(shift), torch.from_numpy(landed).view(codes.numel(), 2 * reach + 1))
