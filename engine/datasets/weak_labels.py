"""Boxes and image tags derived from full masks, for data sets that have masks but no cheaper labels.

A box is the tight bounding box of one 8-connected region of a class (an object instance, as a person would
box it); regions smaller than ``min_area`` pixels are skipped as nobody would box them. Tags are the classes
present in the mask. The background class gets no boxes: whatever lies outside all boxes is background. A
data set without a background class (``background`` None) gets boxes for every class.
"""
from __future__ import annotations

import cv2
import numpy as np


def boxes_from_mask(mask: np.ndarray, *, min_area: int = 50, background: int | None = 0,
                    ignore_index: int = 255) -> list[tuple[int, tuple[float, float, float, float]]]:
    """[(class, (x0, y0, x1, y1))] in pixel-edge coordinates (a box around pixel columns c0..c1 spans
    x0 = c0 to x1 = c1 + 1), largest first."""
    out = []
    for label in np.unique(mask):
        if label == ignore_index or label == background:
            continue
        n, _, stats, _ = cv2.connectedComponentsWithStats((mask == label).astype(np.uint8), connectivity=8)
        for k in range(1, n):
            x, y, w, h, area = (int(v) for v in stats[k])
            if area >= min_area:
                out.append((int(label), (float(x), float(y), float(x + w), float(y + h)), area))
    out.sort(key=lambda item: -item[2])
    return [(label, box) for label, box, _ in out]


def tags_from_mask(mask: np.ndarray, *, min_area: int = 1, ignore_index: int = 255) -> list[int]:
    """Classes with at least ``min_area`` pixels in the mask."""
    counts = np.bincount(mask[mask != ignore_index].ravel(), minlength=256)
    return [int(k) for k in np.flatnonzero(counts >= min_area)]
