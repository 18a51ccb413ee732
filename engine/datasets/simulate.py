"""Simulated scribbles: human-like brush strokes generated from full masks, so that data sets which only have
masks can be used to study and benchmark learning from scribbles.

Why this shape of stroke: people who scribble draw one quick stroke along the middle of each object and a few on
the background, staying well inside every region, and they label only a few percent of the pixels (the real
ACDC scribbles are thin lines). So, for every class present in the mask
and every 8-connected region of that class with at least ``min_area`` pixels, the simulator

1. thins the region to its skeleton (Zhang & Suen 1984, vectorised, revisiting only the pixels next to those
   deleted in the previous two passes, so the cost grows with the area, not with area x thickness). The skeleton is
   the region's centre line: where a hand would draw. The image border counts as region boundary;
2. finds the longest path through the skeleton: the graph diameter by two breadth-first searches over skeleton
   pixels with 8-connectivity (exact on trees, a good approximation where the skeleton has loops, as rings do).
   Its tips run into the region's corners, where there is no room for a brush, so they are trimmed back to
   where the clearance reaches ``radius + margin`` (in regions too thin for that, to 1 px less than the
   path's largest clearance): one sharp corner should not force a hairline brush on the whole stroke;
3. keeps a contiguous piece of it whose arc length is ``ratio`` x the trimmed path's length, starting at a place
   drawn uniformly by a numpy Generator seeded with ``seed`` (deterministic; ``ratio`` = 1 keeps it all);
4. simplifies that piece to a polyline (``cv2.approxPolyDP``, 1 px tolerance), as a hand-drawn stroke is stored;
5. gives it the brush radius ``min(radius, clearance - margin)``, at least 0.5, where ``clearance`` is the least
   distance from the piece's pixel centres to the region boundary (the pixel edges between the region and the
   rest; exact Euclidean distance transform).

Parameters: ``ratio`` in (0, 1] sets how much of each region's centre line is drawn, ``radius`` the brush radius
in pixels; ``margin`` the clearance, in pixels, kept between the stroke's edge and the region boundary (humans stay
clear of edges because they are unsure where they are); ``min_area`` skips specks nobody would bother to mark;
``ignore_index`` marks void pixels, which belong to no region and are never labelled.

The defaults (the whole centre line, radius 1) are calibrated on the one data set with real human scribbles,
ACDC (``wsv bench scribbles``; the comparison is in docs/benchmarks.md): its annotators drew more than the
simulator's whole centre line, in thinner lines, so the defaults are, if anything, less than a person draws.
``ratio`` = 0.3 with radius 2 is a much quicker pass than any ACDC annotator made: a stress test.

Guarantee: a stroke never covers a pixel outside its own region, so simulated seeds are never wrong labels. The
simplified polyline is rasterized and checked against the region; where it would cut a corner out of the region,
the stroke keeps the unsimplified pixel path instead, which provably fits (see ``_region_stroke``). A region whose
skeleton is a single pixel (or thins away entirely, as 2x2 blocks do) gets a one-point stroke (a dot) at its most
central pixel; every region of at least ``min_area`` pixels gets exactly one stroke.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

from engine.annotations.raster import rasterize, stroke_footprint

DEFAULT_RATIO = 1.0
DEFAULT_RADIUS = 1.0
"""The simulator's stroke length (share of each region's centre line) and brush radius in pixels, calibrated on
ACDC's real scribbles (module docstring)."""

MIN_AREA = 50
"""Regions smaller than this many pixels get no stroke: specks nobody would bother to mark."""

SIMPLIFY_TOLERANCE = 1.0
"""cv2.approxPolyDP tolerance in pixels for turning the skeleton path into a polyline."""

_BITS = (np.arange(256)[:, None] >> np.arange(8)) & 1
"""Bit k of a neighbourhood code is neighbour P(k+2) of Zhang & Suen: N, NE, E, SE, S, SW, W, NW."""


def _deletion_tables() -> tuple[np.ndarray, np.ndarray]:
    """Zhang & Suen's rule for both sub-iterations as 256-entry tables indexed by the neighbourhood code."""
    p2, _, p4, _, p6, _, p8, _ = _BITS.T
    count = _BITS.sum(1)
    transitions = ((_BITS == 0) & (np.roll(_BITS, -1, axis=1) == 1)).sum(1)
    base = (count >= 2) & (count <= 6) & (transitions == 1)
    first = base & (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
    second = base & (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
    return first, second


_DELETE = _deletion_tables()


@dataclass(frozen=True)
class Scribble:
    label: int
    """class index"""
    radius: float
    """brush radius in pixels"""
    points: np.ndarray
    """(n, 2) float32 polyline, x, y; pixel (col, row) has its centre at (col + 0.5, row + 0.5)"""


def simulate_scribbles(mask: np.ndarray, *, ratio: float = DEFAULT_RATIO, radius: float = DEFAULT_RADIUS,
                       min_area: int = MIN_AREA, seed: int = 0, ignore_index: int = 255, margin: float = 1.0) -> list[Scribble]:
    """One scribble per class region of at least ``min_area`` pixels of a (H, W) class-index mask, in order of
    class, then of region (as cv2.connectedComponents numbers them); see the module docstring for the method."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be a 2-D class-index array, got shape {mask.shape}")
    check_stroke_settings(ratio, radius, margin)
    rng = np.random.default_rng(seed)
    pad = math.ceil(radius) + 1  # room for the stroke's footprint, and a border of boundary around the region
    out: list[Scribble] = []
    for label in np.unique(mask):
        if label == ignore_index:
            continue
        n, comp, stats, _ = cv2.connectedComponentsWithStats((mask == label).astype(np.uint8), connectivity=8)
        for k in range(1, n):
            if stats[k, cv2.CC_STAT_AREA] < min_area:
                continue
            x, y, w, h = stats[k, :4]
            region = np.pad(comp[y:y + h, x:x + w] == k, pad)
            r, pts = _region_stroke(region, ratio, radius, margin, rng)
            out.append(Scribble(int(label), r, (pts + np.float32([x - pad, y - pad])).astype(np.float32)))
    return out


def check_stroke_settings(ratio: float, radius: float, margin: float = 1.0) -> None:
    """ValueError unless ``simulate_scribbles`` can draw with these settings; callers that simulate a whole data set
    check them before they start, rather than fail on its first mask."""
    if not 0 < ratio <= 1:
        raise ValueError(f"the stroke length ratio must be in (0, 1], got {ratio}")
    if radius < 0.5:
        raise ValueError(f"the brush radius must be at least 0.5 px, got {radius}")
    if margin < 0:
        raise ValueError(f"the margin must not be negative, got {margin}")


def rasterize_scribbles(shape: tuple[int, int], scribbles: Sequence[Scribble]) -> np.ndarray:
    """uint8 seed map (255 = unlabeled) of ``scribbles`` painted in order, later over earlier: a pixel is painted
    when its centre lies within the radius of the polyline (the project's exact stroke rasterizer)."""
    return rasterize(shape, ((s.label, s.radius, s.points) for s in scribbles))


def _region_stroke(region: np.ndarray, ratio: float, radius: float, margin: float,
                   rng: np.random.Generator, length: float | None = None) -> tuple[float, np.ndarray]:
    """(radius, (n, 2) x, y polyline) of the stroke for one region, given as a boolean crop whose border is
    background wide enough to hold any stroke's footprint, in that crop's coordinates. ``length`` (pixels), where
    given, replaces ``ratio`` x the centre line's length, up to the whole centre line."""
    # Distance from each pixel centre to the region's boundary (the pixel edges between region and outside):
    # half a pixel less than the exact Euclidean distance to the nearest outside pixel centre.
    clearance = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) - 0.5
    skeleton = zhang_suen_thinning(region)
    if not skeleton.any():
        skeleton = np.zeros_like(region)
        skeleton.flat[np.argmax(clearance)] = True
    path = _longest_path(skeleton, clearance)
    along = clearance[path[:, 0], path[:, 1]]
    keep = np.flatnonzero(along >= min(radius + margin, along.max() - 1))
    path = path[keep[0]:keep[-1] + 1]
    steps = np.hypot(*np.diff(path, axis=0).T)
    arc = np.concatenate([[0.0], np.cumsum(steps)])
    length = ratio * arc[-1] if length is None else min(length, arc[-1])
    start = rng.uniform(0.0, arc[-1] - length)
    i0 = int(np.searchsorted(arc, start))
    i1 = min(int(np.searchsorted(arc, arc[i0] + length)), len(path) - 1)
    piece = path[i0:i1 + 1]
    least = float(clearance[piece[:, 0], piece[:, 1]].min())
    r = max(0.5, min(radius, least - margin))
    raw = piece[:, ::-1].astype(np.float32) + 0.5
    if len(raw) > 2:
        simple = cv2.approxPolyDP(raw.reshape(-1, 1, 2), SIMPLIFY_TOLERANCE, False).reshape(-1, 2)
        foot, (r0, c0) = stroke_footprint(region.shape, simple, r)
        if region[r0:r0 + foot.shape[0], c0:c0 + foot.shape[1]][foot].all():
            return r, simple
    # The unsimplified path always fits: r <= least (as least >= 0.5 and margin >= 0), and an outside pixel centre,
    # at least D = least + 0.5 >= 1 from both ends of a segment of length <= sqrt(2), is at least
    # sqrt(D^2 - 1/2) > D - 1/2 = least from the segment.
    return r, raw


def zhang_suen_thinning(region: np.ndarray) -> np.ndarray:
    """One-pixel-wide, 8-connected skeleton of a boolean image (Zhang & Suen 1984; pixels outside the image
    count as background). Each sub-iteration looks up every candidate pixel's 8-neighbourhood code in a table of
    the deletion rule; after the first pass the candidates are only the pixels next to those deleted since the
    same sub-iteration last ran, because a pixel whose neighbourhood did not change keeps its verdict."""
    img = np.pad(np.asarray(region, bool), 1).astype(np.uint8)
    w = img.shape[1]
    offsets = np.array([-w, -w + 1, 1, w + 1, w, w - 1, -1, -w - 1])
    flat = img.ravel()
    slot = np.empty(flat.size, np.int64)  # scratch for dropping repeated candidates without sorting
    deleted = [np.empty(0, np.int64)] * 2
    step = 0
    while True:
        if step < 2:
            candidates = np.flatnonzero(flat)
        else:
            touched = np.concatenate(deleted)
            if not touched.size:
                break
            near = (touched[:, None] + offsets).ravel()
            near = near[flat[near] == 1]
            slot[near] = np.arange(len(near))
            candidates = near[slot[near] == np.arange(len(near))]
        codes = flat[candidates[:, None] + offsets] @ (1 << np.arange(8))
        deleted[step % 2] = candidates[_DELETE[step % 2][codes]]
        flat[deleted[step % 2]] = 0
        step += 1
    return img[1:-1, 1:-1].astype(bool)


def _longest_path(skeleton: np.ndarray, clearance: np.ndarray) -> np.ndarray:
    """(n, 2) row, col pixels of the longest shortest path (in 8-connected steps) through the skeleton piece that
    holds its most central pixel: a breadth-first search from that pixel finds one end, a second one from
    there finds the other end and the path back."""
    nodes = np.flatnonzero(np.pad(skeleton, 1))
    w = skeleton.shape[1] + 2
    index = np.full((skeleton.shape[0] + 2) * w, -1)
    index[nodes] = np.arange(len(nodes))
    offsets = np.array([-w - 1, -w, -w + 1, -1, 1, w - 1, w, w + 1])
    neighbours = index[nodes[:, None] + offsets]
    rows, cols = np.divmod(nodes, w)
    rows, cols = rows - 1, cols - 1
    end, _ = _bfs(neighbours, int(np.argmax(clearance[rows, cols])))
    other, parent = _bfs(neighbours, end)
    path = [other]
    while path[-1] != end:
        path.append(int(parent[path[-1]]))
    return np.stack([rows[path], cols[path]], axis=1)


def _bfs(neighbours: np.ndarray, start: int) -> tuple[int, np.ndarray]:
    """Breadth-first search over a graph given as an (n, 8) neighbour table (-1 = none), one layer per numpy
    step: returns a node of the farthest layer and every reached node's parent (-1 where not reached)."""
    parent = np.full(len(neighbours), -1)
    parent[start] = start
    layer = np.array([start])
    while True:
        nxt = neighbours[layer]
        i, j = np.nonzero(nxt >= 0)
        nxt, src = nxt[i, j], layer[i]
        ok = parent[nxt] < 0
        nxt, src = nxt[ok], src[ok]
        if not nxt.size:
            return int(layer[0]), parent
        parent[nxt] = src  # a node reached from several parents keeps one of them; keep it once in the layer
        layer = nxt[parent[nxt] == src]
