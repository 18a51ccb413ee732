"""The lattice's vertex sets built by hashing and merging (engine.losses.lattice_sets) against NumPy's sort,
and the filter built from them against the filter built by sorting (the CUDA path)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.losses import permutohedral
from engine.losses.lattice_sets import merge_shifted, unique_codes


@pytest.mark.parametrize("dtype", [torch.int32, torch.int64])
def test_unique_codes_match_numpy(dtype):
    rng = np.random.default_rng(0)
    # many repeats, negative codes, and more distinct codes than the hash table starts with
    codes = np.concatenate([rng.integers(-50, 50, 3000), rng.integers(-(1 << 30), 1 << 30, 20000)])
    rng.shuffle(codes)
    distinct, inverse, rows, members = unique_codes(torch.from_numpy(codes).to(dtype))
    ref, ref_inverse = np.unique(codes, return_inverse=True)
    assert distinct.dtype == dtype
    np.testing.assert_array_equal(distinct.numpy(), ref)
    np.testing.assert_array_equal(inverse.numpy(), ref_inverse)
    np.testing.assert_array_equal(rows.numpy(), np.concatenate([[0], np.cumsum(np.bincount(ref_inverse))]))
    np.testing.assert_array_equal(members.numpy(), np.argsort(ref_inverse, kind="stable"))


@pytest.mark.parametrize("step,reach", [(7, 3), (-7, 3), (1, 4), (1000, 1), (-1, 2)])
def test_merge_shifted_matches_a_sorted_union(step, reach):
    rng = np.random.default_rng(1)
    codes = np.unique(rng.integers(-300, 300, 250))          # close codes: the shifted copies collide often
    union, rows, source, shift, landed = merge_shifted(torch.from_numpy(codes), step, reach)
    shifts = np.arange(-reach, reach + 1) * step
    every = codes[:, None] + shifts[None, :]                  # (m, k): source i, shift e
    ref = np.unique(every)
    np.testing.assert_array_equal(union.numpy(), ref)
    np.testing.assert_array_equal(landed.numpy(), np.searchsorted(ref, every))
    assert rows[0] == 0 and rows[-1] == every.size and (np.diff(rows.numpy()) > 0).all()
    for u in range(len(ref)):                                 # each union vertex lists exactly its sources
        entries = slice(rows[u].item(), rows[u + 1].item())
        got = sorted(zip(source[entries].tolist(), shift[entries].tolist()))
        want = sorted(zip(*np.nonzero(every == ref[u])))
        assert got == [(int(i), int(e)) for i, e in want]


@pytest.mark.parametrize("d", [3, 5])
def test_filter_is_the_same_whichever_way_the_sets_are_built(monkeypatch, d):
    torch.manual_seed(2)
    f = torch.rand(3000, d, dtype=torch.float64) * torch.tensor([12.0, 12.0] + [4.0] * (d - 2), dtype=torch.float64)
    v = torch.rand(3000, 4, dtype=torch.float64)
    merged = permutohedral.GaussianFilter(f)
    monkeypatch.setattr(permutohedral, "_compiled", lambda codes: False)
    sorted_ = permutohedral.GaussianFilter(f)
    assert merged.blur_sizes == sorted_.blur_sizes
    torch.testing.assert_close(merged(v), sorted_(v), rtol=1e-12, atol=1e-12)
