"""Box and tag losses against hand-worked small cases."""
import math

import pytest
import torch

from engine.losses.box import box_allowed_classes, box_consistency_loss, box_tightness_loss, smooth_max
from engine.losses.tags import absent_suppression_loss, pooled_scores, tag_classification_loss, \
    tag_consistency_loss


def probs_2class(fg):
    """(1, 2, H, W) probabilities with class 1 = fg and class 0 = 1 − fg."""
    fg = torch.as_tensor(fg, dtype=torch.float64)
    return torch.stack([1 - fg, fg])[None]


def test_smooth_max_limits():
    v = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    assert smooth_max(v, 0, 0.0).item() == pytest.approx(0.5)
    assert smooth_max(v, 0, 200.0).item() == pytest.approx(0.9, abs=1e-6)
    w = torch.exp(4 * v)
    assert smooth_max(v, 0, 4.0).item() == pytest.approx(float((v * w).sum() / w.sum()))


def test_tightness_worked_example():
    # 2x3 box of class 1 over a 2x3 image: rows [1, 0, 0] and [0, 0, 0]; large alpha -> max.
    p = probs_2class([[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    boxes = [torch.tensor([[1, 0, 0, 3, 2]], dtype=torch.float64)]
    eps = 1e-6
    # rows: max 1 and 0; columns: max 1, 0, 0 -> losses −log(1+eps), −log(eps) ×3
    expected = (2 * -math.log(1 + eps) + 3 * -math.log(eps)) / 5
    got = box_tightness_loss(p, boxes, alpha=1000.0, eps=eps).item()
    assert got == pytest.approx(expected, rel=1e-4)


def test_tightness_is_zero_ish_for_a_filled_box_and_ignores_outside():
    fg = torch.zeros(6, 8, dtype=torch.float64)
    fg[2:4, 3:6] = 1.0
    boxes = [torch.tensor([[1, 3, 2, 6, 4]], dtype=torch.float64)]
    assert box_tightness_loss(probs_2class(fg), boxes, alpha=50.0).item() < 1e-5
    # A tight box with one empty row costs more than with none.
    fg[3, 3:6] = 0.0
    assert box_tightness_loss(probs_2class(fg), boxes, alpha=50.0).item() > 1.0


def test_no_boxes_gives_zero_with_gradient():
    p = torch.rand(2, 3, 4, 4, requires_grad=True)
    loss = box_tightness_loss(p, [torch.zeros(0, 5), torch.zeros(0, 5)])
    loss.backward()
    assert loss.item() == 0.0 and torch.all(p.grad == 0)


def test_allowed_classes_and_consistency():
    boxes = torch.tensor([[1, 0, 0, 2, 2], [2, 1, 1, 3, 3]], dtype=torch.float64)
    allowed = box_allowed_classes(boxes, 3, 3, 4)
    assert allowed[:, 0, 0].tolist() == [True, True, False]      # in box 1 only
    assert allowed[:, 1, 1].tolist() == [True, True, True]       # in both
    assert allowed[:, 2, 2].tolist() == [True, False, True]      # in box 2 only
    assert allowed[:, 0, 3].tolist() == [True, True, True]       # outside: unconstrained
    p = torch.zeros(1, 3, 3, 4, dtype=torch.float64)
    p[0, 2] = 1.0  # everything class 2: wrong only inside box 1 but outside box 2, i.e. pixels (0,0),(0,1),(1,0)
    eps = 1e-6
    inside = 6  # pixels where some class is excluded: the 7 boxed pixels but the overlap, which allows all
    expected = 3 * -math.log(eps) / inside
    assert box_consistency_loss(p, [boxes], eps=eps).item() == pytest.approx(expected, rel=1e-6)


def test_tag_losses_worked_example():
    # one image, 2 pixels, 3 classes; tags: classes 0 and 2 present
    p = torch.tensor([[[[0.5, 0.1]], [[0.3, 0.1]], [[0.2, 0.8]]]], dtype=torch.float64)
    present = torch.tensor([[True, False, True]])
    assert tag_consistency_loss(p, present, eps=0).item() == pytest.approx(-(math.log(0.7) + math.log(0.9)) / 2)
    assert absent_suppression_loss(p, present).item() == pytest.approx((0.3 + 0.1) / 2)
    s = pooled_scores(p, top_fraction=0.5)  # top 1 of 2 pixels = max
    assert s.tolist() == [[0.5, 0.3, 0.8]]
    expected = -(math.log(0.5) + math.log(1 - 0.3) + math.log(0.8)) / 3
    assert tag_classification_loss(p, present, top_fraction=0.5).item() == pytest.approx(expected)


def test_all_background_is_not_a_minimum_of_the_tag_losses():
    present = torch.tensor([[True, True]])
    all_bg = probs_2class(torch.zeros(4, 4))
    half = probs_2class(torch.cat([torch.zeros(4, 2), torch.ones(4, 2)], 1))
    total = lambda p: tag_consistency_loss(p, present) + tag_classification_loss(p, present)
    assert total(half).item() < total(all_bg).item()


def test_with_no_background_class_a_boxed_pixel_is_one_of_its_boxes_classes():
    boxes = torch.tensor([[1, 0, 0, 2, 2], [2, 1, 1, 3, 3]], dtype=torch.float64)
    allowed = box_allowed_classes(boxes, 3, 3, 4, background=None)
    assert allowed[:, 0, 0].tolist() == [False, True, False]     # in box 1 only
    assert allowed[:, 1, 1].tolist() == [False, True, True]      # in both
    assert allowed[:, 2, 2].tolist() == [False, False, True]     # in box 2 only
    assert allowed[:, 0, 3].tolist() == [True, True, True]       # outside: unconstrained
    p = torch.zeros(1, 3, 3, 4, dtype=torch.float64)
    p[0, 0] = 1.0  # everything class 0, which no box names: wrong on all 7 boxed pixels
    eps = 1e-6
    assert box_consistency_loss(p, [boxes], background=None, eps=eps).item() == pytest.approx(-math.log(eps), rel=1e-6)
    assert box_consistency_loss(p, [boxes], eps=eps).item() == pytest.approx(0.0, abs=1e-5)  # 0 as background
