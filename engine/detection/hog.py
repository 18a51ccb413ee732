"""Histogram-of-oriented-gradients features (Dalal & Triggs 2005) as the lecture defines them: centred [-1, 0, 1]
gradients (on colour images, the channel with the largest gradient), 9 unsigned orientation bins over 0-180
degrees with linear interpolation between bin centres, 8 x 8-pixel cells with bilinear spatial interpolation
between cell centres, and blocks of 2 x 2 cells at a stride of one cell, each block normalised with L2-Hys
(L2, clip at 0.2, L2 again). Unlike OpenCV's HOGDescriptor there is no Gaussian weighting inside blocks.

Written here because the OpenCV wheels we depend on (5.x) no longer ship HOGDescriptor. A window's descriptor
is the concatenation of its blocks, and a block does not depend on the window around it, so a whole image's
blocks are computed once (``block_grid``) and every window's linear score is a correlation over that grid
(``score_map``) instead of recomputing overlapping windows.
"""
from __future__ import annotations

import cv2
import numpy as np

CELL = 8
BINS = 9
BLOCK_LEN = 4 * BINS
"""floats per block: 2 x 2 cells of 9 bins"""
L2HYS_CLIP = 0.2


_OFFSET = np.arange(CELL) + 0.5
_OWN = (1.0 - np.abs(_OFFSET - CELL / 2) / CELL).astype(np.float32)
"""Bilinear spatial voting: a pixel at offset o within its cell gives this share to its own cell and the rest to
the neighbouring cell on its side (the left/upper one for o < 4); the share falls linearly from 1 at a cell's
centre to 0 at the neighbours' centres. Pixels outside the outermost centres lose the missing cell's share."""


def _pool_last_axis(v: np.ndarray) -> np.ndarray:
    """Spatial voting along the last axis (a multiple of 8 long) into cells."""
    half = CELL // 2
    v = v.reshape(*v.shape[:-1], -1, CELL)
    cells = v @ _OWN
    cells[..., :-1] += v[..., 1:, :half] @ (1.0 - _OWN[:half])
    cells[..., 1:] += v[..., :-1, half:] @ (1.0 - _OWN[half:])
    return cells


def gradient_votes(image: np.ndarray) -> np.ndarray:
    """(9, H, W) float32: each pixel's gradient magnitude split between the two nearest orientation bins."""
    img = image.astype(np.float32)
    if img.ndim == 2:
        img = img[:, :, None]
    pad = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    gx = pad[1:-1, 2:] - pad[1:-1, :-2]
    gy = pad[2:, 1:-1] - pad[:-2, 1:-1]
    mag2 = gx * gx + gy * gy
    best = np.argmax(mag2, axis=2)[..., None]
    gx, gy = np.take_along_axis(gx, best, 2)[..., 0], np.take_along_axis(gy, best, 2)[..., 0]
    mag = np.sqrt(np.take_along_axis(mag2, best, 2)[..., 0])
    angle = np.mod(np.arctan2(gy, gx), np.pi)
    pos = angle / (np.pi / BINS) - 0.5  # bin k is centred at (k + 0.5) * 20 degrees
    lo = np.floor(pos)
    frac = (pos - lo).astype(np.float32)
    lo = lo.astype(np.int64) % BINS
    hi = (lo + 1) % BINS  # never equal to lo, so the two scatters below never hit the same entry
    h, w = mag.shape
    votes = np.zeros((BINS, h * w), np.float32)
    pixel = np.arange(h * w)
    votes[lo.ravel(), pixel] = (mag * (1.0 - frac)).ravel()
    votes[hi.ravel(), pixel] = (mag * frac).ravel()
    return votes.reshape(BINS, h, w)


def cell_histograms(image: np.ndarray) -> np.ndarray:
    """(cells down, cells across, 9) float32 for an image whose sides are multiples of 8."""
    votes = gradient_votes(image)  # (9, H, W)
    across = _pool_last_axis(votes)  # (9, H, W / 8)
    return np.ascontiguousarray(_pool_last_axis(across.transpose(0, 2, 1)).transpose(2, 1, 0))


def block_grid(image: np.ndarray) -> np.ndarray:
    """(blocks down, blocks across, 36) float32 L2-Hys-normalised blocks of an image, cropped to whole cells;
    block [j, i] covers pixels y in [8j, 8j + 16), x in [8i, 8i + 16)."""
    h, w = (image.shape[0] // CELL) * CELL, (image.shape[1] // CELL) * CELL
    if h < 2 * CELL or w < 2 * CELL:
        return np.zeros((0, 0, BLOCK_LEN), np.float32)
    cells = cell_histograms(image[:h, :w])
    blocks = np.concatenate([cells[:-1, :-1], cells[:-1, 1:], cells[1:, :-1], cells[1:, 1:]], axis=2)
    return l2hys(blocks)


def l2hys(blocks: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    """L2-normalise each block, clip at 0.2 so that a few strong edges cannot dominate, and normalise again."""
    v = blocks / np.sqrt(np.sum(blocks * blocks, axis=-1, keepdims=True) + eps * eps)
    v = np.minimum(v, L2HYS_CLIP)
    return (v / np.sqrt(np.sum(v * v, axis=-1, keepdims=True) + eps * eps)).astype(np.float32)


def blocks_in(window: tuple[int, int]) -> tuple[int, int]:
    """Blocks (down, across) in a (width, height) window."""
    return window[1] // CELL - 1, window[0] // CELL - 1


def window_shape(aspect: float, short_side: int = 64) -> tuple[int, int]:
    """(width, height) of a detection window of ``aspect`` = width / height, ``short_side`` pixels on its shorter
    side and multiples of 8 on both, so that cells tile it exactly."""
    aspect = float(np.clip(aspect, 0.25, 4.0))
    long_side = max(short_side, int(round(short_side * max(aspect, 1.0 / aspect) / CELL)) * CELL)
    return (long_side, short_side) if aspect >= 1.0 else (short_side, long_side)


def descriptor(patch: np.ndarray) -> np.ndarray:
    """The (D,) float32 descriptor of a patch exactly the size of a window."""
    return block_grid(patch).ravel()


def score_map(grid: np.ndarray, weights: np.ndarray, bias: float) -> np.ndarray:
    """(windows down, windows across) linear scores of every window placed at whole-cell offsets, where
    ``weights`` is (blocks down, blocks across, 36) for one window; window [j, i] starts at pixel (8i, 8j)."""
    by, bx = weights.shape[:2]
    ny, nx = grid.shape[0] - by + 1, grid.shape[1] - bx + 1
    if nx < 1 or ny < 1:
        return np.zeros((0, 0), np.float32)
    out = np.full((ny, nx), bias, np.float32)
    for j in range(by):
        for i in range(bx):
            out += grid[j:j + ny, i:i + nx] @ weights[j, i]
    return out


def crop_window(image: np.ndarray, box: np.ndarray, window: tuple[int, int], context: int) -> np.ndarray:
    """The patch a window sees when ``box`` (xyxy) fills its inner part, ``context`` pixels short of each edge:
    the box and the context around it resampled to (width, height) = ``window``, edges replicated outside the
    image. Shrinking uses area averaging, as the image pyramid does."""
    x0, y0, x1, y1 = (float(v) for v in box)
    ww, wh = window
    sx, sy = (ww - 2 * context) / max(x1 - x0, 1e-3), (wh - 2 * context) / max(y1 - y0, 1e-3)
    left, top = int(np.floor(x0 - context / sx)), int(np.floor(y0 - context / sy))
    right, bottom = max(left + 1, int(np.ceil(x1 + context / sx))), max(top + 1, int(np.ceil(y1 + context / sy)))
    h, w = image.shape[:2]
    pad = max(0, -left, -top, right - w, bottom - h)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    region = image[top + pad:bottom + pad, left + pad:right + pad]
    shrink = region.shape[1] > ww or region.shape[0] > wh
    return cv2.resize(region, window, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def resize(image: np.ndarray, scale: float) -> np.ndarray:
    """One pyramid level: area averaging when shrinking (no aliasing), bilinear when enlarging."""
    h, w = image.shape[:2]
    size = (max(1, int(round(w * scale))), max(1, int(round(h * scale))))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
