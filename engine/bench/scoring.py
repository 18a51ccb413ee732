"""Scores for the quality benchmark: a data set's mIoU and the mean over images of each image's object IoU (for
the network's masks, the masks refined with each image's marks, and GrabCut from the same marks)."""
from __future__ import annotations

from dataclasses import dataclass, field
import numpy as np

from engine.metrics import confusion_matrix, image_object_iou, scores


@dataclass
class Tally:
    """Confusion counts over a set of images, and each image's object IoU."""

    num_classes: int
    background: int | None
    conf: np.ndarray = field(init=False)
    per_image: list[float] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.conf = np.zeros((self.num_classes,) * 2, np.int64)

    def add(self, pred: np.ndarray, truth: np.ndarray) -> None:
        self.conf += confusion_matrix(pred, truth, self.num_classes)
        iou = image_object_iou(pred, truth, self.num_classes, self.background)
        if iou is not None:
            self.per_image.append(iou)

    @property
    def miou(self) -> float:
        return scores(self.conf).miou

    @property
    def image_iou(self) -> float | None:
        return float(np.mean(self.per_image)) if self.per_image else None

    def as_dict(self) -> dict:
        return {"miou": round(self.miou, 4),
                "image_iou": None if self.image_iou is None else round(self.image_iou, 4)}
