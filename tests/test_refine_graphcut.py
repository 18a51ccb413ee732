"""Graph cuts for refinement against exhaustive search on grids small enough to enumerate."""
import itertools

import numpy as np
import pytest

from engine.refine.graphcut import alpha_expansion, binary_cut, contrast_weights, energy, expansion_move


def _weights(rng, h, w, gamma=2.0):
    image = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    return contrast_weights(image, gamma)


def _all_labellings(k, h, w):
    for flat in itertools.product(range(k), repeat=h * w):
        yield np.array(flat).reshape(h, w)


def test_contrast_weights_follow_the_formula():
    image = np.zeros((2, 3, 3), np.uint8)
    image[:, 2] = 30                                   # one vertical edge between columns 1 and 2
    w_right, w_down, w_diag, w_anti = contrast_weights(image, gamma=50.0)
    # across the edge the squared colour difference is 3 · 30² = 2700; of the 4 + 3 + 2 + 2 = 11 neighbour pairs,
    # 2 right, 0 down and 1 of each diagonal cross it
    mean = (2 + 0 + 1 + 1) * 2700 / 11
    beta = 1 / (2 * mean)
    assert w_right[0, 0] == pytest.approx(50.0)
    assert w_right[0, 1] == pytest.approx(50 * np.exp(-beta * 2700))
    assert w_right[0, 2] == 0                          # no right neighbour
    assert w_down[0, 1] == pytest.approx(50.0) and w_down[1].sum() == 0
    assert w_diag[0, 1] == pytest.approx(50 * np.exp(-beta * 2700) / np.sqrt(2))
    assert w_diag[0, 0] == pytest.approx(50 / np.sqrt(2))
    assert w_anti[0, 2] == pytest.approx(50 * np.exp(-beta * 2700) / np.sqrt(2)) and w_anti[0, 0] == 0


@pytest.mark.parametrize("seed", range(5))
def test_binary_cut_is_the_exact_minimum(seed):
    rng = np.random.default_rng(seed)
    h, w = 3, 4
    weights = _weights(rng, h, w)
    unary = rng.normal(0, 2, (2, h, w))
    cut = binary_cut(unary[0], unary[1], weights).astype(np.int64)
    best = min(energy(lab, unary, weights) for lab in _all_labellings(2, h, w))
    assert energy(cut, unary, weights) == pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_expansion_move_is_the_best_move(seed):
    rng = np.random.default_rng(seed)
    h, w, k = 2, 4, 3
    weights = _weights(rng, h, w)
    unary = rng.normal(0, 2, (k, h, w))
    labels = rng.integers(0, k, (h, w))
    for alpha in range(k):
        moved = expansion_move(labels, alpha, unary, weights)
        assert set(np.unique(moved[moved != labels])) <= {alpha}
        best = min(energy(np.where(take.reshape(h, w), alpha, labels), unary, weights)
                   for take in map(np.array, itertools.product([False, True], repeat=h * w)))
        assert energy(moved, unary, weights) == pytest.approx(best, abs=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_alpha_expansion_is_within_twice_the_minimum(seed):
    rng = np.random.default_rng(seed)
    h, w, k = 2, 4, 3
    weights = _weights(rng, h, w)
    unary = rng.uniform(0, 4, (k, h, w))               # non-negative: the factor-2 bound holds for E >= 0
    found = energy(alpha_expansion(unary, weights), unary, weights)
    best = min(energy(lab, unary, weights) for lab in _all_labellings(k, h, w))
    assert best - 1e-9 <= found <= 2 * best + 1e-9
