"""How much of the shown image the network gives each class, step by step, and a hint when a class shrinks back
toward its strokes.

A regularizer that favours short boundaries (the CRF losses' shrinking bias) can let a class the network first
spread over its object fall back, step by step, to little more than the strokes that name it. On the canvas that
looks like the network forgetting; the share curve shows it happen, and the hint says why and what to do.
"""
from __future__ import annotations

import numpy as np

SHRUNK_TO = 0.5
"""a class is said to shrink when its share falls below this part of its peak share ..."""
NEAR_STROKES = 2.0
"""... and to within this many times the share its strokes cover"""


def class_shares(labels: np.ndarray, classes: int) -> np.ndarray:
    """(K,) share of the image's pixels labelled each class."""
    return np.bincount(labels.ravel(), minlength=256)[:classes] / max(labels.size, 1)


def shrinking_classes(history: list[np.ndarray], stroked: np.ndarray) -> list[int]:
    """Classes whose share of the image has fallen to under SHRUNK_TO of its peak and to within NEAR_STROKES of the
    share their strokes cover (``stroked``), in ``history`` (one class_shares per preview, oldest first)."""
    if len(history) < 2:
        return []
    shares = np.stack(history)
    peak, now = shares.max(0), shares[-1]
    k = min(len(now), len(stroked))
    return [c for c in range(k) if stroked[c] > 0 and now[c] < SHRUNK_TO * peak[c] and now[c] < NEAR_STROKES * stroked[c]]


def shrink_hint(names: list[str], history: list[np.ndarray], stroked: np.ndarray) -> str:
    """One sentence for the status line, or "" while no class shrinks."""
    shrunk = shrinking_classes(history, stroked)
    if not shrunk:
        return ""
    peak, now = np.stack(history).max(0), history[-1]
    parts = ", ".join(f"'{names[c]}' ({peak[c]:.0%} → {now[c]:.0%} of the image)" for c in shrunk)
    return (f"{parts} shrank back toward its strokes: the regularizer favours short boundaries, so a class marked "
            f"by thin strokes alone can collapse onto them. Add a stroke across the object's extent, or lower the "
            f"regularizer weight (raise the colour weight) and train again.")
