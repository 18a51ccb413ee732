"""Simulated scribbles: human-like strokes generated from full masks, so that data sets with masks only can be
used to study (and benchmark) learning from scribbles.

How a human scribbles: one quick stroke along the middle of each object and a few on the background, well
inside each region, covering a few percent of the pixels. The simulator does the same for every class present
and every 8-connected region of at least ``min_area`` pixels:

1. thin the region to its skeleton (Zhang–Suen thinning, on a copy reduced to at most ``THIN_SIDE`` pixels per
   side, which keeps it fast and gives the smooth centre line a hand would follow);
2. take the longest path through the skeleton (two breadth-first searches: the graph's diameter);
3. keep a contiguous piece of it whose length is ``ratio`` × the path length, starting at a random place drawn
   from ``seed`` (``ratio`` 0.3 gives sparse strokes, 1.0 the full centre line);
4. simplify it to a polyline and give it a brush of ``radius`` pixels, shrunk where the region is thinner.

Guarantee: a stroke never covers a pixel outside its own region (every stroke is rasterized and checked, and
its radius shrunk, or the stroke dropped, until that holds), so simulated seeds are never wrong labels. Void
pixels (``ignore_index``) belong to no region and are never labelled.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from engine.annotations.raster import rasterize, stroke_footprint

THIN_SIDE = 160
"""longest side, in pixels, of the reduced copy a region is thinned on"""


@dataclass(frozen=True)
class Scribble:
    label: int
    """class index"""
    radius: float
    """brush radius in pixels"""
    points: np.ndarray
    """(n, 2) float32 polyline, x, y; pixel (col, row) has its centre at (col + 0.5, row + 0.5)"""


def simulate_scribbles(mask: np.ndarray, *, ratio: float = 0.3, radius: float = 2.0, min_area: int = 50,
                       seed: int = 0, ignore_index: int = 255, margin: float = 1.0) -> list[Scribble]:
    """Scribbles for a (H, W) uint8 class-index mask; see the module docstring for the method."""
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    if radius < 0.5:
        raise ValueError(f"radius must be at least 0.5, got {radius}")
    rng = np.random.default_rng(seed)
    out: list[Scribble] = []
    for label in np.unique(mask):
        if label == ignore_index:
            continue
        n, comp, stats, _ = cv2.connectedComponentsWithStats((mask == label).astype(np.uint8), connectivity=8)
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] < min_area:
                continue
            x, y, w, h = stats[k, :4]
            region = comp[y:y + h, x:x + w] == k
            stroke = _region_stroke(region, ratio, radius, margin, rng)
            if stroke is not None:
                r, pts = stroke
                out.append(Scribble(int(label), r, (pts + np.array([x, y], np.float32)).astype(np.float32)))
    return out


def rasterize_scribbles(shape: tuple[int, int], scribbles: Sequence[Scribble]) -> np.ndarray:
    """Seed map (255 = unlabeled) of scribbles painted in order, with the project's exact stroke rasterizer."""
    return rasterize(shape, ((s.label, s.radius, s.points) for s in scribbles))


def _region_stroke(region: np.ndarray, ratio: float, radius: float, margin: float,
                   rng: np.random.Generator) -> tuple[float, np.ndarray] | None:
    """(radius, polyline in region coordinates) for one region, or None if no stroke fits inside it."""
    h, w = region.shape
    f = min(1.0, THIN_SIDE / max(h, w))
    small = region if f == 1.0 else cv2.resize(region.astype(np.uint8), (max(1, round(w * f)), max(1, round(h * f))),
                                               interpolation=cv2.INTER_NEAREST).astype(bool)
    skeleton = zhang_suen_thinning(small)
    if not skeleton.any():
        skeleton = small  # tiny after reduction: any pixel will do
    path = _longest_path(skeleton)
    keep = max(1, int(round(ratio * len(path))))
    start = int(rng.integers(0, len(path) - keep + 1))
    piece = path[start:start + keep]
    pts = (piece[:, ::-1].astype(np.float32) + 0.5) / f  # (row, col) -> (x, y) pixel centres at full size
    if len(pts) > 2:
        pts = cv2.approxPolyDP(pts.reshape(-1, 1, 2), 1.0, False).reshape(-1, 2)
    dist = cv2.distanceTransform(np.pad(region, 1).astype(np.uint8), cv2.DIST_L2, 5)[1:-1, 1:-1]
    cols = np.clip(pts[:, 0].astype(int), 0, w - 1)
    rows = np.clip(pts[:, 1].astype(int), 0, h - 1)
    r = float(min(radius, max(0.5, dist[rows, cols].min() - margin)))
    while True:
        footprint, (r0, c0) = stroke_footprint(region.shape, pts, r)
        if footprint.any() and region[r0:r0 + footprint.shape[0], c0:c0 + footprint.shape[1]][footprint].all():
            return r, pts
        if r <= 0.5:
            return None
        r = max(0.5, r / 2)


def zhang_suen_thinning(region: np.ndarray) -> np.ndarray:
    """One-pixel-wide 8-connected skeleton of a boolean image (Zhang & Suen 1984), vectorised over pixels."""
    img = np.pad(region.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            p = img
            n = [p[:-2, 1:-1], p[:-2, 2:], p[1:-1, 2:], p[2:, 2:], p[2:, 1:-1], p[2:, :-2], p[1:-1, :-2], p[:-2, :-2]]
            centre = p[1:-1, 1:-1]
            count = sum(n)
            transitions = sum(((n[i] == 0) & (n[(i + 1) % 8] == 1)) for i in range(8))
            if step == 0:
                cond = (n[0] * n[2] * n[4] == 0) & (n[2] * n[4] * n[6] == 0)
            else:
                cond = (n[0] * n[2] * n[6] == 0) & (n[0] * n[4] * n[6] == 0)
            remove = (centre == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & cond
            if remove.any():
                img[1:-1, 1:-1][remove] = 0
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


def _longest_path(skeleton: np.ndarray) -> np.ndarray:
    """(n, 2) row, col pixels along the longest shortest path of the skeleton's largest 8-connected piece."""
    n, comp = cv2.connectedComponents(skeleton.astype(np.uint8), connectivity=8)
    if n > 2:
        sizes = np.bincount(comp.ravel())[1:]
        skeleton = comp == 1 + int(np.argmax(sizes))
    pixels = {tuple(p) for p in np.argwhere(skeleton)}
    first = min(pixels)
    far, _ = _bfs(first, pixels)
    end, parents = _bfs(far, pixels)
    path = [end]
    while path[-1] != far:
        path.append(parents[path[-1]])
    return np.array(path, dtype=np.int64)


def _bfs(start: tuple[int, int], pixels: set) -> tuple[tuple[int, int], dict]:
    parents = {start: start}
    queue = deque([start])
    last = start
    while queue:
        last = queue.popleft()
        r, c = last
        for dr in (-1, 0, 1):
            for dc in (-1, 0, 1):
                q = (r + dr, c + dc)
                if q in pixels and q not in parents:
                    parents[q] = last
                    queue.append(q)
    return last, parents
