"""COCO's run-length encoding of binary masks, written as pycocotools writes it, read in every form COCO files
hold it: compressed strings, uncompressed count lists and polygons.

Runs go down the columns (column-major order), starting with a run of zeros (possibly empty). The compressed
string stores each count — after the third, as the difference from the count two before — in groups of five
bits, least significant first, each group offset by 48 into printable ASCII, bit 0x20 meaning another group
follows and bit 0x10 of the last group carrying the sign (pycocotools' ``rleToString`` and ``rleFrString``).
"""
from __future__ import annotations

import numpy as np


def counts(mask: np.ndarray) -> list[int]:
    """The column-major run lengths of a boolean (H, W) mask, the first a run of zeros."""
    flat = np.asarray(mask, bool).flatten(order="F")
    changes = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], changes, [flat.size]])
    runs = np.diff(bounds).tolist()
    return ([0] + runs) if flat.size and flat[0] else runs


def encode(mask: np.ndarray) -> dict:
    """{"size": [h, w], "counts": str}: the compressed RLE of a boolean (H, W) mask."""
    h, w = mask.shape
    return {"size": [int(h), int(w)], "counts": _to_string(counts(mask))}


def _to_string(cnts: list[int]) -> str:
    out = []
    for i, x in enumerate(cnts):
        if i > 2:
            x -= cnts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def _from_string(s: str) -> list[int]:
    cnts: list[int] = []
    p = 0
    while p < len(s):
        x = k = 0
        more = True
        while more:
            if p >= len(s):
                raise ValueError("the RLE string ends inside a count")
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        if len(cnts) > 2:
            x += cnts[-2]
        cnts.append(x)
    return cnts


def decode(rle: dict) -> np.ndarray:
    """The boolean (H, W) mask of an RLE, compressed (a string or bytes) or uncompressed (a list of counts)."""
    h, w = (int(v) for v in rle["size"])
    raw = rle["counts"]
    cnts = _from_string(raw.decode("ascii") if isinstance(raw, bytes) else raw) if isinstance(raw, (str, bytes)) \
        else [int(v) for v in raw]
    if any(c < 0 for c in cnts) or sum(cnts) != h * w:
        raise ValueError(f"the RLE's counts add up to {sum(cnts)}, not the {h}×{w} = {h * w} pixels of its size")
    values = np.zeros(len(cnts), bool)
    values[1::2] = True
    return np.repeat(values, cnts).reshape((h, w), order="F")


def polygons_mask(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """The union of COCO polygons ([x0, y0, x1, y1, ...], pixel (x, y) spanning [x, x + 1) × [y, y + 1)) as a
    boolean mask: the pixels whose centres lie inside, by an even-odd scan of each row's centre line."""
    mask = np.zeros((height, width), bool)
    cy = np.arange(height) + 0.5
    cx = np.arange(width) + 0.5
    for poly in polygons:
        pts = np.asarray(poly, np.float64).reshape(-1, 2)
        if len(pts) < 3:
            continue
        x0, y0 = pts[:, 0], pts[:, 1]
        x1, y1 = np.roll(x0, -1), np.roll(y0, -1)
        lo, hi = np.minimum(y0, y1), np.maximum(y0, y1)
        crosses = (lo[None, :] <= cy[:, None]) & (cy[:, None] < hi[None, :])  # (rows, edges)
        t = (cy[:, None] - y0[None, :]) / np.where(y1 != y0, y1 - y0, 1.0)[None, :]
        xs = np.sort(np.where(crosses, x0[None, :] + t * (x1 - x0)[None, :], np.inf), axis=1)
        for r in np.flatnonzero(crosses.any(1)):
            row = xs[r][np.isfinite(xs[r])]
            for a, b in zip(row[0::2], row[1::2]):
                mask[r] |= (cx >= a) & (cx < b)
    return mask

