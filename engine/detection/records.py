"""Plain-data messages from the detector trainers to whoever drives them (CLI, GUI worker, tests).

Only numbers, strings and numpy arrays: they cross threads safely and never keep tensors or models alive.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.detection.postprocess import Detections


@dataclass(frozen=True)
class DetectionPreview:
    """The detector's current view of one image."""

    image_id: int
    detections: Detections
    """raw detections (apply engine.detection.postprocess.postprocess), in the image's original pixels"""


@dataclass(frozen=True)
class DetectionRecord:
    step: int
    total_steps: int
    losses: dict[str, float]
    """each term as torchvision names it (e.g. loss_classifier, loss_box_reg, loss_objectness, loss_rpn_box_reg
    for Faster R-CNN; classification, bbox_regression, bbox_ctrness for FCOS), and 'total'"""
    lr: float
    steps_per_s: float
    elapsed_s: float
    device: str
    train_images: int
    """training images, negatives included"""
    negative_images: int
    """training images marked done that have no boxes"""
    boxes: int
    heldout_images: int
    preview: DetectionPreview | None = None
    map50: float | None = None
    """mAP@0.5 on the held-out images, where evaluated this step"""
    notes: list[str] = field(default_factory=list)
    """one-off messages: initial weights, new boxes picked up, ..."""


@dataclass(frozen=True)
class HogSvmRecord:
    """One stage of HOG + SVM training done: ``stage`` of ``total_stages`` (feature extraction, SVM training and
    hard-negative mining, per class)."""

    stage: int
    total_stages: int
    description: str
    elapsed_s: float
    positives: int
    negatives: int
    notes: list[str] = field(default_factory=list)
