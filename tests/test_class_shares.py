"""The class-share curve and the hint when a class shrinks back toward its strokes, by hand."""
import numpy as np

from wsv_gui.segmentation.shares import class_shares, shrink_hint, shrinking_classes


def test_class_shares_by_hand():
    labels = np.array([[0, 0, 1, 2]], np.uint8)
    np.testing.assert_allclose(class_shares(labels, 3), [0.5, 0.25, 0.25])


def test_a_class_that_falls_back_to_its_strokes_is_named():
    stroked = np.array([0.05, 0.02, 0.0])
    grew = [np.array([0.6, 0.1, 0.3]), np.array([0.5, 0.3, 0.2])]
    assert shrinking_classes(grew, stroked) == []
    fell = grew + [np.array([0.7, 0.03, 0.27])]  # 30 % → 3 %, strokes cover 2 %
    assert shrinking_classes(fell, stroked) == [1]
    hint = shrink_hint(["background", "leaf", "flower"], fell, stroked)
    assert "'leaf' (30% → 3% of the image)" in hint and "regularizer" in hint
    assert shrinking_classes([np.array([0.6, 0.4, 0.0]), np.array([0.8, 0.2, 0.0])], stroked) == []  # still 10× strokes
