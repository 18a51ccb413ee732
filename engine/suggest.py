"""Where the annotator's next stroke would teach the most: a needs-marks score per image, to rank the images, and
the few regions of one image most worth a stroke, both from the live network's probabilities
(engine.uncertainty). The trainer scores the project's images between steps (``Trainer.score_images``); the
window sorts its list by the scores and outlines the regions; ``wsv bench active`` measures whether following
them saves strokes.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.uncertainty import normalized_entropy

UNSURE_SHARE = 0.2
"""the share of an image's pixels, the most uncertain ones, whose mean uncertainty is its needs-marks score"""

REGION_COUNT = 3
"""regions suggested on one image: a few places to look at, not a to-do list"""

MIN_PEAK = 0.15
"""least smoothed uncertainty (normalized entropy) of a region worth suggesting"""


def needs_marks(probs: np.ndarray, marked: np.ndarray | None = None) -> float:
    """Needs-marks score in [0, 1] of (K, H, W) probabilities: the mean normalized entropy of the most uncertain
    ``UNSURE_SHARE`` of the pixels. The mean over the whole image would rank an image with one confused object
    below one that is mildly unsure everywhere, and the object is where a stroke helps. Pixels already ``marked``
    ((H, W) bool) count as certain: their label is known."""
    u = normalized_entropy(probs)
    if marked is not None:
        u = np.where(marked, 0.0, u)
    u = u.ravel()
    k = max(1, int(u.size * UNSURE_SHARE))
    return float(np.partition(u, u.size - k)[-k:].mean())


@dataclass(frozen=True)
class Region:
    """A part of the image worth a stroke, in the pixels of the probabilities it came from (x right, y down,
    x1 and y1 exclusive)."""

    x0: int
    y0: int
    x1: int
    y1: int
    score: float
    """the smoothed uncertainty at its peak, in [0, 1]"""

    def scaled(self, factor: float) -> tuple[float, float, float, float]:
        """Its corners in another resolution (image pixels for the canvas)."""
        return self.x0 * factor, self.y0 * factor, self.x1 * factor, self.y1 * factor


def regions_to_mark(probs: np.ndarray, count: int = REGION_COUNT, marked: np.ndarray | None = None) -> list[Region]:
    """Up to ``count`` regions, most uncertain first. The normalized entropy is averaged over a window of a tenth
    of the image's longer side — about the neighbourhood one stroke teaches — so that thin uncertain borders
    between two confident classes rank below a whole part the network cannot place. Each region is the area
    around a peak of that average where it stays above half the peak, cut to three windows across; later peaks
    lie more than a window from earlier regions. Peaks below ``MIN_PEAK`` are not worth a stroke; ``marked`` pixels count as
    certain."""
    u = normalized_entropy(probs)
    if marked is not None:
        u = np.where(marked, 0.0, u).astype(np.float32)
    h, w = u.shape
    win = max(3, int(round(max(h, w) / 10)) | 1)
    smooth = cv2.blur(u, (win, win), borderType=cv2.BORDER_REFLECT)
    taken = np.zeros((h, w), bool)
    regions: list[Region] = []
    while len(regions) < count:
        free = np.where(taken, -1.0, smooth)
        row, col = np.unravel_index(int(free.argmax()), free.shape)
        peak = float(free[row, col])
        if peak < MIN_PEAK:
            break
        _, labels = cv2.connectedComponents(((smooth >= peak / 2) & ~taken).astype(np.uint8), connectivity=8)
        part = labels == labels[row, col]
        r0, r1 = max(0, row - 3 * win // 2), min(h, row + 3 * win // 2 + 1)
        c0, c1 = max(0, col - 3 * win // 2), min(w, col + 3 * win // 2 + 1)
        rows = np.flatnonzero(part[r0:r1, c0:c1].any(1))
        cols = np.flatnonzero(part[r0:r1, c0:c1].any(0))
        region = Region(int(c0 + cols[0]), int(r0 + rows[0]), int(c0 + cols[-1] + 1), int(r0 + rows[-1] + 1), peak)
        regions.append(region)
        # the average's slopes around it belong to it too
        taken[max(0, region.y0 - win):region.y1 + win, max(0, region.x0 - win):region.x1 + win] = True
    return regions
