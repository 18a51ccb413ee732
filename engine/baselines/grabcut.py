"""GrabCut (OpenCV) as the classic baselines: seeded with scribbles, or initialised with boxes.

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


def _box_claims(image: np.ndarray, boxes: np.ndarray, iterations: int) -> list[tuple[int, tuple[int, int, int, int], np.ndarray]]:
    """(class, (r0, r1, c0, c1), what GrabCut initialised with the box calls foreground) for each usable box,
    largest box first, so that painting them in order leaves smaller boxes on top."""
    h, w = image.shape[:2]
    bgr = np.ascontiguousarray(image[..., ::-1])
    order = sorted(range(len(boxes)), key=lambda i: -(boxes[i][3] - boxes[i][1]) * (boxes[i][4] - boxes[i][2]))
    claims = []
    for i in order:
        k, x0, y0, x1, y1 = boxes[i]
        c0, r0 = max(0, int(round(x0))), max(0, int(round(y0)))
        c1, r1 = min(w, int(round(x1))), min(h, int(round(y1)))
        if c1 - c0 < 2 or r1 - r0 < 2:
            continue
        mask = np.zeros((h, w), np.uint8)
        if c1 - c0 >= w - 1 and r1 - r0 >= h - 1:  # a box as large as the image leaves GrabCut no background
            mask[r0:r1, c0:c1] = cv2.GC_PR_FGD
        else:
            bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
            cv2.grabCut(bgr, mask, (c0, r0, c1 - c0, r1 - r0), bgd, fgd, iterations, cv2.GC_INIT_WITH_RECT)
        claims.append((int(k), (r0, r1, c0, c1), (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)))
    return claims


def grabcut_from_boxes(image: np.ndarray, boxes: np.ndarray, num_classes: int, background: int | None = 0,
                       iterations: int = 5) -> np.ndarray:
    """Fake full mask from boxes, the naive "proposals" baseline: GrabCut initialised with each box
    (largest first, so smaller boxes on top win), background outside every box and where GrabCut says so.
    ``boxes`` is (M, 5) (class index, x0, y0, x1, y1) in pixels. With no background class (``background``
    None: every class is boxed, as on MSRC), what GrabCut leaves unclaimed inside boxes takes the class of the
    smallest box holding it, and outside every box stays UNLABELED: nothing is known there."""
    labels = np.full(image.shape[:2], UNLABELED if background is None else background, np.uint8)
    claims = _box_claims(image, boxes, iterations)
    if background is None:
        for k, (r0, r1, c0, c1), _ in claims:
            labels[r0:r1, c0:c1] = k
    for k, _, fg in claims:
        labels[fg] = k
    return labels


def _reaches_sides(fg: np.ndarray, max_gap_fraction: float) -> bool:
    """Whether a box's foreground (the box's crop) comes within ``max_gap_fraction`` of its height of the top and
    bottom and of its width of the left and right: a tight box touches its object on all four sides."""
    rows, cols = np.flatnonzero(fg.any(axis=1)), np.flatnonzero(fg.any(axis=0))
    if not len(rows):
        return False
    bh, bw = fg.shape
    return max(rows[0], bh - 1 - rows[-1]) <= max_gap_fraction * bh and \
        max(cols[0], bw - 1 - cols[-1]) <= max_gap_fraction * bw


def grabcut_box_seeds(image: np.ndarray, boxes: np.ndarray, background: int | None = 0, margin_fraction: float = 0.03,
                      center_fraction: float = 0.5, max_gap_fraction: float = 0.2, iterations: int = 5
                      ) -> np.ndarray:
    """Seeds inside boxes where GrabCut is most likely right, the rest of each box left unlabeled for the box and
    CRF losses. On Weizmann horses GrabCut's background inside a box is nearly always right once pixels near its
    foreground (``margin_fraction`` of the box's shorter side) are dropped, while its foreground is often wrong,
    and eroding it does not help (whole background chunks such as the ground between the legs are claimed, not a
    thin band): its foreground is trusted only in the box's central ``center_fraction`` (of width and height),
    where it is mostly right — in the spirit of Khoreva et al., "Simple Does It" (CVPR 2017), which keeps only the confident part of
    GrabCut's answer and ignores the rest.

    A box is tight, so its object reaches all four of its sides. Where GrabCut's foreground stops more than
    ``max_gap_fraction`` of the box short of a side, GrabCut has lost part of the object (on MSRC: books, cats
    and people that fill their boxes, grass and road regions), and that box seeds no background: on MSRC such
    boxes' background seeds were almost all wrong, the others' mostly right; on horses GrabCut seldom falls that
    short.

    Returns (H, W) uint8: the box's class on trusted foreground (never inside a smaller box of another class:
    as in the proposals, the smaller box lies on top — on MSRC a grass or road box's centre holds the cow or car
    boxed inside it, and seeding it grass made a fifth of the in-box seeds wrong), ``background`` on trusted
    background inside a box (never inside another box, whose object it may be), UNLABELED elsewhere, including
    outside every box (the caller decides what that is) and where two classes' seeds meet. With no background
    class (``background`` None), GrabCut's background inside a box is some other class nobody named, and seeds
    nothing."""
    h, w = image.shape[:2]
    seeds = np.full((h, w), UNLABELED, np.uint8)
    conflict = np.zeros((h, w), bool)
    claims = _box_claims(image, boxes, iterations)
    boxed = np.zeros((len(claims), h, w), bool)
    for i, (_, (r0, r1, c0, c1), _) in enumerate(claims):
        boxed[i, r0:r1, c0:c1] = True
    area = boxed.sum(axis=(1, 2))
    classes = np.array([k for k, _, _ in claims])
    for i, (k, (r0, r1, c0, c1), fg) in enumerate(claims):
        on_top = boxed[(area < area[i]) & (classes != k)].any(axis=0)
        bh, bw = r1 - r0, c1 - c0
        radius = int(margin_fraction * min(bh, bw))
        near = fg
        if radius > 0:
            disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
            near = cv2.dilate(fg.astype(np.uint8), disc).astype(bool)
        others = boxed[np.arange(len(claims)) != i].any(axis=0)
        bg = boxed[i] & ~near & ~others & _reaches_sides(fg[r0:r1, c0:c1], max_gap_fraction)
        dy, dx = int(bh * (1 - center_fraction) / 2), int(bw * (1 - center_fraction) / 2)
        center = np.zeros((h, w), bool)
        center[r0 + dy:r1 - dy, c0 + dx:c1 - dx] = True
        for label, where in ((background, bg), (k, fg & center & ~on_top)):
            if label is None:
                continue
            conflict |= where & (seeds != UNLABELED) & (seeds != label)
            seeds[where] = label
    seeds[conflict] = UNLABELED
    return seeds
