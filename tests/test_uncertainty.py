"""Per-pixel uncertainty measures against values worked out by hand."""
import math

import numpy as np
import pytest

from engine.uncertainty import disagreement, margin_uncertainty, normalized_entropy


def test_measures_at_certainty_and_at_a_tie():
    probs = np.zeros((3, 1, 4), np.float32)
    probs[:, 0, 0] = (1, 0, 0)            # certain
    probs[:, 0, 1] = (1 / 3, 1 / 3, 1 / 3)  # no idea at all
    probs[:, 0, 2] = (0.5, 0.5, 0)        # a tie between two
    probs[:, 0, 3] = (0.7, 0.2, 0.1)
    h = normalized_entropy(probs)[0]
    m = margin_uncertainty(probs)[0]
    np.testing.assert_allclose(h[:3], [0, 1, math.log(2) / math.log(3)], atol=1e-6)
    expected = -(0.7 * math.log(0.7) + 0.2 * math.log(0.2) + 0.1 * math.log(0.1)) / math.log(3)
    np.testing.assert_allclose(h[3], expected, rtol=1e-6)
    np.testing.assert_allclose(m, [0, 1, 1, 0.5], atol=1e-6)  # a tie between two flips as easily as three


def test_disagreement_only_where_marks_overrule_the_network():
    net = np.array([[0, 1], [1, 1]])
    assert disagreement(net, None) is None
    np.testing.assert_array_equal(disagreement(net, np.array([[0, 0], [1, 1]])), [[False, True], [False, False]])


def _certain(h, w, k=3):
    probs = np.zeros((k, h, w), np.float32)
    probs[0] = 1.0
    return probs


def test_needs_marks_ranks_a_confused_object_above_mild_doubt_everywhere():
    from engine.suggest import needs_marks

    patch = _certain(10, 10)
    patch[:, :2, :] = 1 / 3                      # a fifth of the pixels: no idea at all
    mild = np.full((3, 10, 10), 0.0, np.float32)
    mild[0], mild[1] = 0.9, 0.1                  # a little doubt everywhere
    mild_h = -(0.9 * math.log(0.9) + 0.1 * math.log(0.1)) / math.log(3)
    assert needs_marks(_certain(10, 10)) == pytest.approx(0.0, abs=1e-9)
    assert needs_marks(patch) == pytest.approx(1.0, abs=1e-6)
    assert needs_marks(mild) == pytest.approx(mild_h, rel=1e-5) and mild_h > 0.2  # a higher whole-image mean
    marked = np.zeros((10, 10), bool)
    marked[:2, :5] = True                        # half the patch is marked: known, so certain
    assert needs_marks(patch, marked) == pytest.approx(0.5, abs=1e-6)


def test_regions_lie_on_the_uncertain_parts_largest_first():
    from engine.suggest import regions_to_mark

    probs = _certain(100, 100)
    probs[:, 10:30, 10:30] = 1 / 3               # a large part the network cannot place
    probs[:, 70:80, 70:80] = 1 / 3               # a smaller one
    first, second = regions_to_mark(probs, count=3)  # nothing else is uncertain: two regions only
    assert first.score > second.score > 0.15
    assert first.x0 <= 10 and first.y0 <= 10 and first.x1 >= 30 and first.y1 >= 30
    assert first.x0 >= 0 and first.x1 <= 42 and first.y1 <= 42  # not much beyond the part (window 11 px)
    assert second.x0 <= 70 < 80 <= second.x1 and second.y0 <= 70 < 80 <= second.y1 and second.x0 >= 55
    marked = np.zeros((100, 100), bool)
    marked[10:30, 10:30] = True
    (only,) = regions_to_mark(probs, count=3, marked=marked)
    assert only.x0 <= 70 and only.x1 >= 80
    assert regions_to_mark(_certain(50, 50)) == []
