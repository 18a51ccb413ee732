"""Per-pixel uncertainty measures against values worked out by hand."""
import math

import numpy as np

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
