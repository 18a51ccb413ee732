"""Detection metrics: IoU matching, per-class precision-recall curves, AP and mAP.

Conventions follow COCO, so our numbers can be compared with published ones:
- boxes are continuous xyxy (a box's width is x1 - x0, no "+1" as in the old VOC code);
- per image and class, detections are taken by descending score (at most ``max_detections``, 100 as in COCO) and
  each is matched to the unmatched ground-truth box it overlaps most, if that IoU is >= the threshold; a ground-
  truth box is matched at most once; unmatched detections are false positives;
- detections of all images are then ranked by score (ties keep image order) into one precision-recall curve;
- AP is reported with COCO's 101-point interpolation and with VOC's all-point area under the monotone envelope
  (VOC 2010+), at IoU 0.5; COCO's mAP@[.5:.95] averages the 101-point AP over IoU 0.5, 0.55, ..., 0.95.
A class without ground-truth boxes has no AP (None) and is left out of the means: so is the background, which no
box marks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np

from engine.detection.labels import object_classes
from engine.detection.postprocess import Detections, postprocess

EVAL_NMS_IOU = 0.5
"""NMS IoU of the detections that are scored (the usual choice for COCO and VOC results)"""
IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)


@dataclass(frozen=True, eq=False)
class GroundTruth:
    boxes: np.ndarray
    """(M, 4) xyxy, in the same pixels as the detections"""
    labels: np.ndarray
    """(M,) class index"""

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", np.asarray(self.boxes, np.float64).reshape(-1, 4))
        object.__setattr__(self, "labels", np.asarray(self.labels, np.int64).reshape(-1))


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) IoU of xyxy boxes; 0 where a union is empty."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match(det_boxes: np.ndarray, gt_boxes: np.ndarray, iou_threshold: float) -> np.ndarray:
    """True positives among detections given in descending score order: each takes the unmatched ground-truth
    box it overlaps most, if by IoU >= ``iou_threshold``."""
    iou = box_iou(det_boxes, gt_boxes)
    taken = np.zeros(iou.shape[1], bool)
    tp = np.zeros(iou.shape[0], bool)
    for d in range(iou.shape[0]):
        candidates = np.where(taken, -1.0, iou[d])
        if candidates.size:
            g = int(np.argmax(candidates))
            if candidates[g] >= iou_threshold:
                taken[g] = tp[d] = True
    return tp


def precision_recall(scores: np.ndarray, tp: np.ndarray, n_gt: int) -> tuple[np.ndarray, np.ndarray]:
    """Precision and recall after each detection, ranked by descending score (stable)."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    hits = np.asarray(tp, bool)[order]
    tps = np.cumsum(hits)
    precision = tps / np.arange(1, len(hits) + 1)
    recall = tps / n_gt if n_gt else np.zeros(len(hits))
    return precision, recall


def _envelope(precision: np.ndarray) -> np.ndarray:
    """Interpolated precision: at each point, the best precision at this or any higher recall."""
    return np.maximum.accumulate(precision[::-1])[::-1]


def ap_coco(precision: np.ndarray, recall: np.ndarray) -> float:
    """COCO's AP: the interpolated precision averaged at recall 0, 0.01, ..., 1 (0 beyond the reached recall)."""
    if not len(precision):
        return 0.0
    env = _envelope(precision)
    idx = np.searchsorted(recall, RECALL_POINTS, side="left")
    q = np.zeros(len(RECALL_POINTS))
    ok = idx < len(env)
    q[ok] = env[idx[ok]]
    return float(q.mean())


def ap_voc(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC's all-point AP: the exact area under the interpolated precision-recall curve."""
    if not len(precision):
        return 0.0
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = _envelope(np.concatenate([[0.0], precision, [0.0]]))
    steps = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


@dataclass(frozen=True)
class DetectionScores:
    """Per class index (None for the background and for classes without ground truth) and their means;
    ``as_dict`` names the object classes only."""

    ap50: list[float | None]
    """COCO 101-point AP at IoU 0.5"""
    ap50_voc: list[float | None]
    """VOC all-point AP at IoU 0.5"""
    ap: list[float | None]
    """COCO AP averaged over IoU 0.5:0.95"""
    gt_boxes: list[int]
    map50: float
    map50_voc: float
    map: float
    """means over the classes with ground truth; NaN where there are none"""
    curves: dict[int, tuple[np.ndarray, np.ndarray]]
    """class index -> (precision, recall) at IoU 0.5, for plotting"""

    def as_dict(self, class_names: list[str]) -> dict:
        objects = object_classes(class_names)

        def named(values):
            return {class_names[k]: values[k] for k in objects}
        return {"map50": self.map50, "map50_voc": self.map50_voc, "map": self.map, "ap50": named(self.ap50),
                "ap50_voc": named(self.ap50_voc), "ap": named(self.ap), "gt_boxes": named(self.gt_boxes)}


def _mean(values: list[float | None]) -> float:
    defined = [v for v in values if v is not None]
    return float(np.mean(defined)) if defined else float("nan")


def evaluate_detections(predictions: list[Detections], ground_truths: list[GroundTruth], num_classes: int, *,
                        max_detections: int | None = 100) -> DetectionScores:
    """Score detections (post-processed as they would be shown) against ground truth, image by image."""
    if len(predictions) != len(ground_truths):
        raise ValueError(f"{len(predictions)} predictions for {len(ground_truths)} ground truths")
    ap50: list[float | None] = [None] * num_classes
    ap50_voc: list[float | None] = [None] * num_classes
    ap: list[float | None] = [None] * num_classes
    counts = [0] * num_classes
    curves = {}
    for c in range(num_classes):  # the background has no ground-truth boxes, so no AP
        per_image = []
        for det, gt in zip(predictions, ground_truths):
            mine = np.flatnonzero(det.labels == c)
            mine = mine[np.argsort(-det.scores[mine], kind="stable")][:max_detections]
            per_image.append((det.boxes[mine], det.scores[mine], gt.boxes[gt.labels == c]))
        n_gt = sum(len(g) for _, _, g in per_image)
        counts[c] = n_gt
        if not n_gt:
            continue
        scores = np.concatenate([s for _, s, _ in per_image])
        coco = []
        for t in IOU_THRESHOLDS:
            tp = np.concatenate([match(b, g, t) for b, _, g in per_image])
            precision, recall = precision_recall(scores, tp, n_gt)
            coco.append(ap_coco(precision, recall))
            if t == IOU_THRESHOLDS[0]:
                ap50_voc[c] = ap_voc(precision, recall)
                curves[c] = (precision, recall)
        ap50[c], ap[c] = coco[0], float(np.mean(coco))
    return DetectionScores(ap50, ap50_voc, ap, counts, _mean(ap50), _mean(ap50_voc), _mean(ap), curves)


def evaluate_samples(detect: Callable[[np.ndarray], Detections], samples: Iterable, num_classes: int,
                     nms_iou: float = EVAL_NMS_IOU) -> DetectionScores:
    """Run ``detect`` on each sample's ``image`` and score it against the sample's ``boxes`` and ``labels``,
    keeping every raw detection (no score threshold) after class-wise NMS at ``nms_iou``."""
    preds, gts = [], []
    for s in samples:
        preds.append(postprocess(detect(s.image), -np.inf, nms_iou))
        gts.append(GroundTruth(s.boxes, s.labels))
    return evaluate_detections(preds, gts, num_classes)
