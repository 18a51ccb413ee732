"""Metrics against hand-worked cases and a brute-force per-class count."""
import numpy as np
import pytest

from engine.metrics import confusion_matrix, scores


def test_worked_example():
    gt = np.array([[0, 0, 1, 1], [1, 255, 2, 2]])
    pred = np.array([[0, 1, 1, 1], [1, 0, 2, 0]])
    conf = confusion_matrix(pred, gt, 3)
    assert conf.tolist() == [[1, 1, 0], [0, 3, 0], [1, 0, 1]]
    s = scores(conf)
    assert s.iou == pytest.approx([1 / 3, 3 / 4, 1 / 2])
    assert s.miou == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)
    assert s.pixel_accuracy == pytest.approx(5 / 7)


def test_absent_class_is_left_out_of_miou():
    gt = np.array([0, 0, 1])
    s = scores(confusion_matrix(np.array([0, 0, 1]), gt, 4))
    assert s.iou[2] is None and s.iou[3] is None and s.miou == 1.0


def test_random_against_brute_force():
    rng = np.random.default_rng(0)
    gt = rng.integers(0, 5, (50, 60))
    gt[rng.random(gt.shape) < 0.1] = 255
    pred = rng.integers(0, 5, (50, 60))
    s = scores(confusion_matrix(pred, gt, 5))
    valid = gt != 255
    for k in range(5):
        inter = np.sum((pred == k) & (gt == k) & valid)
        union = np.sum(((pred == k) | (gt == k)) & valid)
        assert s.iou[k] == pytest.approx(inter / union)
    assert s.pixel_accuracy == pytest.approx(np.mean(pred[valid] == gt[valid]))


def test_bad_values_rejected():
    with pytest.raises(ValueError, match="prediction"):
        confusion_matrix(np.array([7]), np.array([0]), 3)
    with pytest.raises(ValueError, match="size"):
        confusion_matrix(np.array([0, 1]), np.array([0]), 3)
