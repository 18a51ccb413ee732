"""People-like scribbles: the quick marks a person makes on a photo, simulated from its mask.

The strokes of ``engine.datasets.simulate`` follow each region's whole centre line, as ACDC's annotators drew.
People marking everyday photos draw far less. Measured on a set of real scribbles on 50 diverse photos (one
object each; the set itself is not in this project): exactly one stroke through the object, about as long as
the object is wide (stroke pixels ≈ 3·√(object area) for a line 3 px wide: ~1.6 % of the object), and three
background strokes labelling ~1.2 % of the background; 1.2 % of all pixels labelled. This preset draws that:

* every region of a class other than the background (8-connected, at least ``min_area`` pixels) gets one stroke:
  a piece of its centre line (``simulate._region_stroke``) √(area) pixels long, placed at random along it, or,
  where the centre line is shorter (a compact region's thins to a stub), a straight stroke of that length through
  its most central pixel along its long axis, whichever is longer;
* the background gets ``BACKGROUND_STROKES`` straight strokes, each at a random place and angle, kept
  ``margin`` clear of every other region and of the image border, and long enough together to label
  ``BACKGROUND_SHARE`` of the background's pixels; where a stroke does not fit at full length the longest of
  several tries is kept. A data set with no background class gets object strokes only.

Like the centre-line simulator, a stroke never covers a pixel outside its own region, and the result is
deterministic for a seed.
"""
from __future__ import annotations

import math

import cv2
import numpy as np

from engine.annotations.raster import stroke_footprint
from engine.datasets.simulate import MIN_AREA, Scribble, _region_stroke, check_stroke_settings

BACKGROUND_STROKES = 3
BACKGROUND_SHARE = 0.012
"""How many background strokes, and the share of the background's pixels they label together."""

PEOPLE_RADIUS = 1.5
"""Brush radius: a stroke 3 px wide (a pixel is covered where its centre lies within the radius of the line, so a
line at a random angle covers 2·radius pixels per pixel of length)."""

_TRIES = 40
"""Random placements tried per background stroke before the longest one that fits is kept."""


def simulate_people_scribbles(mask: np.ndarray, *, background: int | None = 0, radius: float = PEOPLE_RADIUS,
                              seed: int = 0, min_area: int = MIN_AREA, ignore_index: int = 255,
                              margin: float = 1.0) -> list[Scribble]:
    """Strokes for a (H, W) class-index mask: one short stroke per object region, then the background's
    strokes (see the module docstring)."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be a 2-D class-index array, got shape {mask.shape}")
    check_stroke_settings(1.0, radius, margin)
    rng = np.random.default_rng(seed)
    pad = math.ceil(radius) + 1
    out: list[Scribble] = []
    for label in np.unique(mask):
        if label == ignore_index or label == background:
            continue
        n, comp, stats, _ = cv2.connectedComponentsWithStats((mask == label).astype(np.uint8), connectivity=8)
        for k in range(1, n):
            area = int(stats[k, cv2.CC_STAT_AREA])
            if area < min_area:
                continue
            x, y, w, h = stats[k, :4]
            region = np.pad(comp[y:y + h, x:x + w] == k, pad)
            r, pts = _region_stroke(region, 1.0, radius, margin, rng, length=math.sqrt(area))
            chord = _chord(region, math.sqrt(area), radius, margin)
            if chord is not None and _length(chord) > _length(pts):
                r, pts = radius, chord
            out.append(Scribble(int(label), r, (pts + np.float32([x - pad, y - pad])).astype(np.float32)))
    if background is not None:
        region = mask == background
        if region.sum() >= min_area:
            out.extend(Scribble(int(background), radius, pts)
                       for pts in _straight_strokes(region, radius, margin, rng))
    return out


def _length(points: np.ndarray) -> float:
    return float(np.hypot(*np.diff(points, axis=0).T).sum()) if len(points) > 1 else 0.0


def _chord(region: np.ndarray, length: float, radius: float, margin: float) -> np.ndarray | None:
    """A straight stroke of up to ``length`` pixels through the region's most central pixel along its long axis,
    kept ``margin`` inside it: where a compact region's centre line is a stub (a disc thins to a dot), a person
    still draws a stroke as long as the object is wide. None where not even a short one fits."""
    clearance = cv2.distanceTransform(region.astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE) - 0.5
    rows, cols = np.nonzero(region)
    coords = np.stack([cols, rows], 1).astype(np.float64)
    _, vectors = np.linalg.eigh(np.cov(coords.T) + 1e-9 * np.eye(2))
    centre = np.unravel_index(np.argmax(clearance), clearance.shape)
    return _fitting_segment(clearance, np.array([centre[1] + 0.5, centre[0] + 0.5]), vectors[:, -1], length,
                            radius + margin + 0.75, region, radius)


def _fitting_segment(clearance: np.ndarray, centre: np.ndarray, direction: np.ndarray, length: float, need: float,
                     region: np.ndarray, radius: float) -> np.ndarray | None:
    """The longest piece, around ``centre``, of the segment of ``length`` along ``direction`` whose samples all
    have ``need`` clearance, as a (2, 2) x, y polyline whose footprint lies in ``region``; None if none does."""
    h, w = clearance.shape
    t = np.arange(-length / 2, length / 2 + 0.25, 0.5)
    pts = centre + t[:, None] * direction
    pc, pr = np.floor(pts[:, 0]).astype(int), np.floor(pts[:, 1]).astype(int)
    inside = (pc >= 0) & (pc < w) & (pr >= 0) & (pr < h)
    fits = np.zeros(len(t), bool)
    fits[inside] = clearance[pr[inside], pc[inside]] >= need
    mid = len(t) // 2
    lo = mid - np.argmin(np.r_[fits[mid::-1], False]) + 1  # the run of fitting samples around the centre
    hi = mid + np.argmin(np.r_[fits[mid:], False]) - 1
    if hi <= lo:
        return None
    seg = np.stack([pts[lo], pts[hi]]).astype(np.float32)
    foot, (r0, c0) = stroke_footprint((h, w), seg, radius)
    return seg if region[r0:r0 + foot.shape[0], c0:c0 + foot.shape[1]][foot].all() else None


def _straight_strokes(region: np.ndarray, radius: float, margin: float, rng: np.random.Generator) -> list[np.ndarray]:
    """Up to BACKGROUND_STROKES straight polylines (2, 2) x, y inside ``region``, each about
    BACKGROUND_SHARE · area / (BACKGROUND_STROKES · 2·radius) pixels long, their centres spread apart."""
    h, w = region.shape
    clearance = cv2.distanceTransform(np.pad(region, 1).astype(np.uint8), cv2.DIST_L2,
                                      cv2.DIST_MASK_PRECISE)[1:-1, 1:-1] - 0.5
    need = radius + margin + 0.75  # a sampled point may sit up to 1/√2 px from the pixel centre looked up
    rows, cols = np.nonzero(clearance >= need)
    if not len(rows):
        return []
    length = BACKGROUND_SHARE * region.sum() / (BACKGROUND_STROKES * 2 * radius)
    strokes: list[np.ndarray] = []
    centres: list[np.ndarray] = []
    for _ in range(BACKGROUND_STROKES):
        best, best_len = None, 0.0
        for _ in range(_TRIES):
            i = int(rng.integers(len(rows)))
            c = np.array([cols[i] + 0.5, rows[i] + 0.5])
            if any(np.hypot(*(c - o)) < length for o in centres) and best is not None:
                continue  # another stroke is drawn nearby already
            angle = rng.uniform(0, math.pi)
            seg = _fitting_segment(clearance, c, np.array([math.cos(angle), math.sin(angle)]), length, need, region,
                                   radius)
            if seg is None or _length(seg) <= best_len:
                continue
            best, best_len = seg, _length(seg)
            if best_len >= length - 0.5:
                break
        if best is None:
            break
        strokes.append(best)
        centres.append(best.mean(0))
    return strokes
