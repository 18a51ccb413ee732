"""Plain-data messages from the trainer to whoever drives it (CLI, GUI worker, tests).

Only numbers, strings and numpy arrays: they cross threads safely and never keep tensors or models alive.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Preview:
    """The network's current view of one image, at working resolution."""

    image_id: int
    labels: np.ndarray
    """(H, W) uint8 argmax class index"""
    probs: np.ndarray
    """(K, H, W) float16 class probabilities"""
    reg_gradient: np.ndarray | None
    """(K, H, W) float32 ∂R/∂S_k of the regularizer, None without a regularizer"""
    refined: np.ndarray | None = None
    """(H, W) uint8 mask refined with the image's own marks (engine.refine), None for an image without marks"""


@dataclass(frozen=True)
class ProgressRecord:
    step: int
    total_steps: int
    losses: dict[str, float]
    """'pce', 'reg' (weighted), 'total'"""
    steps_per_s: float
    elapsed_s: float
    device: str
    labelled_images: int
    preview: Preview | None = None
    miou: float | None = None
    """mIoU on the project's images that have ground truth, where evaluated this step"""
    notes: list[str] = field(default_factory=list)
    """one-off messages: model initialisation, new marks picked up, ..."""
    scores: dict[int, float] = field(default_factory=dict)
    """image id -> needs-marks score (engine.suggest) of the images scored this step"""
