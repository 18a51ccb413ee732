"""Exact rasterization of strokes into seed maps, and the exact inverse for pixel scribbles.

A stroke covers pixel (col, row) when the pixel centre (col + 0.5, row + 0.5) lies within ``radius`` of its
polyline. This definition is resolution independent (the trainer rasterizes at its working size, the GUI at
full size, and both agree) and easy to check by brute force. Painting is done per segment on the segment's
bounding box, so the cost is proportional to the painted area, not to the image size.
"""
from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np

from engine.annotations.types import UNLABELED

Pen = tuple[int | None, float, np.ndarray]
"""(label or None for the eraser, radius, (n, 2) points with NaN rows separating pieces)."""


def split_pieces(points: np.ndarray) -> list[np.ndarray]:
    """The NaN-separated pieces of a stroke's point array, each (m, 2) with m >= 1."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    breaks = np.flatnonzero(np.isnan(pts).any(axis=1))
    pieces = np.split(pts, breaks)
    return [p[~np.isnan(p).any(axis=1)] for p in pieces if len(p[~np.isnan(p).any(axis=1)])]


def stroke_footprint(shape: tuple[int, int], points: np.ndarray, radius: float) -> tuple[np.ndarray, tuple[int, int]]:
    """Boolean footprint of one stroke, cropped to its bounding box: returns (mask, (row0, col0)).

    The crop keeps painting and undo cheap on very large images; an empty crop (stroke entirely outside the
    image) has shape (0, 0).
    """
    h, w = shape
    pieces = split_pieces(points)
    if not pieces:
        return np.zeros((0, 0), bool), (0, 0)
    allp = np.concatenate(pieces)
    c0 = max(int(np.floor(allp[:, 0].min() - radius - 0.5)), 0)
    c1 = min(int(np.ceil(allp[:, 0].max() + radius + 0.5)), w)
    r0 = max(int(np.floor(allp[:, 1].min() - radius - 0.5)), 0)
    r1 = min(int(np.ceil(allp[:, 1].max() + radius + 0.5)), h)
    if c1 <= c0 or r1 <= r0:
        return np.zeros((0, 0), bool), (0, 0)
    out = np.zeros((r1 - r0, c1 - c0), bool)
    rr2 = radius * radius
    for piece in pieces:
        starts = piece if len(piece) == 1 else piece[:-1]
        ends = piece if len(piece) == 1 else piece[1:]
        for (ax, ay), (bx, by) in zip(starts, ends):
            sc0 = max(int(np.floor(min(ax, bx) - radius - 0.5)), c0)
            sc1 = min(int(np.ceil(max(ax, bx) + radius + 0.5)), c1)
            sr0 = max(int(np.floor(min(ay, by) - radius - 0.5)), r0)
            sr1 = min(int(np.ceil(max(ay, by) + radius + 0.5)), r1)
            if sc1 <= sc0 or sr1 <= sr0:
                continue
            px = np.arange(sc0, sc1, dtype=np.float64)[None, :] + 0.5 - ax
            py = np.arange(sr0, sr1, dtype=np.float64)[:, None] + 0.5 - ay
            dx, dy = bx - ax, by - ay
            seg2 = dx * dx + dy * dy
            if seg2 > 0:
                t = np.clip((px * dx + py * dy) / seg2, 0.0, 1.0)
                ex, ey = px - t * dx, py - t * dy
            else:
                ex, ey = px, py
            out[sr0 - r0:sr1 - r0, sc0 - c0:sc1 - c0] |= ex * ex + ey * ey <= rr2
    return out, (r0, c0)


def paint(seed_map: np.ndarray, label: int | None, radius: float, points: np.ndarray, scale: float = 1.0) -> None:
    """Paint one stroke into ``seed_map`` in place; ``scale`` maps stroke coordinates to map pixels."""
    mask, (r0, c0) = stroke_footprint(seed_map.shape[:2], np.asarray(points, np.float64) * scale, radius * scale)
    if mask.size:
        view = seed_map[r0:r0 + mask.shape[0], c0:c0 + mask.shape[1]]
        view[mask] = UNLABELED if label is None else label


def rasterize(shape: tuple[int, int], pens: Iterable[Pen], scale: float = 1.0) -> np.ndarray:
    """Seed map (uint8, UNLABELED where nothing is drawn) of ``pens`` painted in order, later over earlier,
    the eraser resetting pixels to UNLABELED."""
    seed_map = np.full(shape, UNLABELED, np.uint8)
    for label, radius, points in pens:
        paint(seed_map, label, radius, points, scale)
    return seed_map


def seed_map_to_pens(seed_map: np.ndarray) -> list[Pen]:
    """Exact vector form of a pixel seed map: one pen per label and 8-connected component, made of horizontal
    runs of radius 0.5, so that ``rasterize`` gives back exactly the same pixels. This is how scribble PNGs
    (real human scribbles) become editable marks without losing or adding a single pixel."""
    pens: list[Pen] = []
    for label in np.unique(seed_map):
        if label == UNLABELED:
            continue
        n, comp = cv2.connectedComponents((seed_map == label).astype(np.uint8), connectivity=8)
        for k in range(1, n):
            pens.append((int(label), 0.5, _row_runs(comp == k)))
    return pens


def _row_runs(mask: np.ndarray) -> np.ndarray:
    """Horizontal runs of a boolean mask as NaN-separated two-point pieces through the pixel centres."""
    padded = np.zeros((mask.shape[0], mask.shape[1] + 2), np.int8)
    padded[:, 1:-1] = mask
    d = np.diff(padded, axis=1)
    rows_s, cols_s = np.nonzero(d == 1)
    rows_e, cols_e = np.nonzero(d == -1)
    # np.nonzero walks row-major, so starts and ends pair up in order.
    x0 = cols_s + 0.5
    x1 = cols_e - 1 + 0.5
    y = rows_s + 0.5
    nan = np.full_like(x0, np.nan)
    pts = np.stack([np.stack([x0, y], 1), np.stack([x1, y], 1), np.stack([nan, nan], 1)], 1).reshape(-1, 2)
    return pts[:-1].astype(np.float32)

