"""GrabCut seeded with scribbles (OpenCV): the classic interactive-segmentation baseline for scribbles.

GrabCut is binary, so K classes are handled one class at a time: class k's scribbles are definite
foreground, every other class's scribbles definite background, the rest "probably background"; a pixel takes
the class whose GrabCut claims it (the class with fewest claimed pixels wins a conflict, since small objects are
the ones a big class swallows), and class 0 where none does.
"""
from __future__ import annotations

import cv2
import numpy as np

from engine.annotations.types import UNLABELED


def grabcut_from_scribbles(image: np.ndarray, seeds: np.ndarray, num_classes: int, iterations: int = 5) -> np.ndarray:
    """(H, W) uint8 labels for an (H, W, 3) uint8 RGB image and a seed map (UNLABELED where unmarked)."""
    bgr = np.ascontiguousarray(image[..., ::-1])
    claims = []
    for k in range(num_classes):
        fg = seeds == k
        if not fg.any():
            claims.append(np.zeros(seeds.shape, bool))
            continue
        mask = np.full(seeds.shape, cv2.GC_PR_BGD, np.uint8)
        mask[(seeds != UNLABELED) & ~fg] = cv2.GC_BGD
        mask[fg] = cv2.GC_FGD
        if not (mask == cv2.GC_BGD).any():
            claims.append(np.ones(seeds.shape, bool))
            continue
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(bgr, mask, None, bgd, fgd, iterations, cv2.GC_INIT_WITH_MASK)
        claims.append((mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD))
    labels = np.zeros(seeds.shape, np.uint8)
    for k in sorted(range(num_classes), key=lambda k: -int(claims[k].sum())):
        labels[claims[k]] = k
    marked = seeds != UNLABELED
    labels[marked] = seeds[marked]
    return labels
