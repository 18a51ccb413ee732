"""numpy arrays to Qt images. QImage wraps the array's memory, so the array is kept alive alongside it."""
from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage


def rgb_image(pixels: np.ndarray) -> QImage:
    """(H, W, 3) uint8 RGB to a QImage that owns a copy of the data."""
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    h, w = pixels.shape[:2]
    return QImage(pixels.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def label_overlay(labels: np.ndarray, colors: np.ndarray, alpha: int = 255) -> QImage:
    """Class-index map to a premultiplied-free RGBA image: class k in ``colors[k]``, index 255 transparent."""
    lut = np.zeros((256, 4), np.uint8)
    n = min(len(colors), 255)
    lut[:n, :3] = colors[:n]
    lut[:n, 3] = alpha
    rgba = np.ascontiguousarray(lut[labels])
    h, w = labels.shape
    return QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
