"""Detections as plain arrays, and the score threshold + class-wise NMS applied after the detector.

Detectors keep their raw output (a low score floor, only near-duplicates removed), so that the GUI can move the
score-threshold and NMS-IoU sliders and re-apply ``postprocess`` instantly without running the network again.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torchvision.ops import batched_nms

RAW_NMS_IOU = 0.9
"""The NMS IoU every detector already applies to its raw output: boxes overlapping more than this are near-
duplicates (neighbouring windows or anchors). A requested NMS IoU above it has no further effect."""


@dataclass(frozen=True, eq=False)
class Detections:
    """Boxes found in one image, in the pixel coordinates of the image they refer to (see where they come from)."""

    boxes: np.ndarray
    """(N, 4) float32 xyxy"""
    scores: np.ndarray
    """(N,) float32; higher is more confident (a probability for the networks, an SVM margin for HOG + SVM)"""
    labels: np.ndarray
    """(N,) int64 class index (never 0, the background)"""

    def __post_init__(self) -> None:
        object.__setattr__(self, "boxes", np.asarray(self.boxes, np.float32).reshape(-1, 4))
        object.__setattr__(self, "scores", np.asarray(self.scores, np.float32).reshape(-1))
        object.__setattr__(self, "labels", np.asarray(self.labels, np.int64).reshape(-1))
        if not len(self.boxes) == len(self.scores) == len(self.labels):
            raise ValueError(f"boxes, scores and labels differ in length: {len(self.boxes)}, {len(self.scores)}, "
                             f"{len(self.labels)}")

    @classmethod
    def empty(cls) -> "Detections":
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0))

    @classmethod
    def concatenate(cls, parts: list["Detections"]) -> "Detections":
        if not parts:
            return cls.empty()
        return cls(np.concatenate([p.boxes for p in parts]), np.concatenate([p.scores for p in parts]),
                   np.concatenate([p.labels for p in parts]))

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, index: np.ndarray) -> "Detections":
        return Detections(self.boxes[index], self.scores[index], self.labels[index])

    def scaled(self, factor: float) -> "Detections":
        """The same detections with coordinates multiplied by ``factor`` (working size <-> original size)."""
        return Detections(self.boxes * np.float32(factor), self.scores, self.labels)


def postprocess(detections: Detections, score_threshold: float, nms_iou: float,
                max_detections: int | None = None) -> Detections:
    """Detections scoring at least ``score_threshold``, with class-wise NMS at ``nms_iou`` (a box is dropped when
    it overlaps a higher-scoring box of the same class by IoU > ``nms_iou``), highest score first."""
    if not 0.0 <= nms_iou <= 1.0:
        raise ValueError(f"nms_iou must lie in [0, 1], got {nms_iou}")
    keep = np.flatnonzero(detections.scores >= score_threshold)
    kept = detections.take(keep)
    if len(kept) and nms_iou < 1.0:
        order = batched_nms(torch.from_numpy(kept.boxes), torch.from_numpy(kept.scores),
                            torch.from_numpy(kept.labels), nms_iou).numpy()
    else:
        order = np.argsort(-kept.scores, kind="stable")
    if max_detections is not None:
        order = order[:max_detections]
    return kept.take(order)
