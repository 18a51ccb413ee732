"""Segmentation metrics from a confusion matrix: per-class IoU, mIoU and pixel accuracy, ignoring label 255.

mIoU averages over classes that occur in the ground truth or the prediction of the evaluated set (a class
absent from both has no defined IoU and is left out rather than counted as 0 or 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE = 255


def confusion_matrix(pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int = IGNORE) -> np.ndarray:
    """(K, K) int64 counts, rows = ground truth class, columns = predicted class; ignored gt pixels skipped.
    A predicted value outside 0..K-1 on a valid pixel is an error (it would silently vanish otherwise)."""
    pred = np.asarray(pred).ravel()
    gt = np.asarray(gt).ravel()
    if pred.shape != gt.shape:
        raise ValueError(f"prediction and ground truth differ in size: {pred.size} vs {gt.size}")
    valid = gt != ignore_index
    p, g = pred[valid].astype(np.int64), gt[valid].astype(np.int64)
    if g.size and (g.max() >= num_classes or g.min() < 0):
        raise ValueError(f"ground truth has values outside 0..{num_classes - 1} (and {ignore_index})")
    if p.size and (p.max() >= num_classes or p.min() < 0):
        raise ValueError(f"prediction has values outside 0..{num_classes - 1}")
    return np.bincount(g * num_classes + p, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


@dataclass(frozen=True)
class Scores:
    iou: list[float | None]
    """per class; None where the class is in neither ground truth nor prediction"""
    miou: float
    pixel_accuracy: float

    def as_dict(self, class_names: list[str] | None = None) -> dict:
        names = class_names or [str(k) for k in range(len(self.iou))]
        return {"miou": self.miou, "pixel_accuracy": self.pixel_accuracy,
                "iou": {n: v for n, v in zip(names, self.iou)}}


def scores(conf: np.ndarray) -> Scores:
    tp = np.diag(conf).astype(np.float64)
    union = conf.sum(0) + conf.sum(1) - tp
    iou = [float(t / u) if u > 0 else None for t, u in zip(tp, union)]
    defined = [v for v in iou if v is not None]
    total = conf.sum()
    return Scores(iou, float(np.mean(defined)) if defined else float("nan"),
                  float(tp.sum() / total) if total else float("nan"))


def image_object_iou(pred: np.ndarray, gt: np.ndarray, num_classes: int, background: int | None,
                     ignore_index: int = IGNORE) -> float | None:
    """One image's mean IoU over its object classes (every class but ``background``) that occur in its ground
    truth or prediction; None where neither shows one. Averaged over images, this weighs every image the same,
    however small its object — as a user who marked each image judges the masks — where the data-set mIoU is
    ruled by the large objects. On images with one object class it is that object's IoU."""
    conf = confusion_matrix(pred, gt, num_classes, ignore_index)
    iou = scores(conf).iou
    objects = [v for k, v in enumerate(iou) if k != background and v is not None]
    return float(np.mean(objects)) if objects else None
