"""Image-like layers drawn straight from numpy buffers: class-colour label maps and colour-mapped heat maps.

A layer keeps an RGBA buffer and a QImage over the same memory; changing a region recolours only that region
and repaints only what is exposed, so adding a stroke to a 4000×3000 seed layer costs the stroke's area, not
the image's.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem


class RGBALayer(QGraphicsItem):
    """Shows an (H, W, 4) uint8 RGBA buffer; with ``setScale`` a working-resolution buffer covers the image."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self._rgba = np.zeros((0, 0, 4), np.uint8)
        self._image = QImage()

    def set_rgba(self, rgba: np.ndarray) -> None:
        self.prepareGeometryChange()
        self._rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
        h, w = self._rgba.shape[:2]
        self._image = QImage(self._rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888) if w and h else QImage()
        self.update()

    def rgba(self) -> np.ndarray:
        return self._rgba

    def clear(self) -> None:
        self.set_rgba(np.zeros((0, 0, 4), np.uint8))

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self._rgba.shape[1], self._rgba.shape[0])

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        if self._image.isNull():
            return
        rect = option.exposedRect.intersected(self.boundingRect()).toAlignedRect()
        if rect.isEmpty():
            return
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        painter.drawImage(rect, self._image, rect)


class LabelLayer(RGBALayer):
    """A class-index map shown in class colours; index 255 (no label) is transparent."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.labels = np.full((0, 0), 255, np.uint8)
        self._lut = np.zeros((256, 4), np.uint8)

    def set_colors(self, colors: np.ndarray) -> None:
        lut = np.zeros((256, 4), np.uint8)
        n = min(len(colors), 255)
        lut[:n, :3] = np.asarray(colors, np.uint8)[:n]
        lut[:n, 3] = 255
        self._lut = lut
        if self.labels.size:
            self.set_rgba(self._lut[self.labels])

    def set_labels(self, labels: np.ndarray) -> None:
        self.labels = np.ascontiguousarray(labels, dtype=np.uint8)
        self.set_rgba(self._lut[self.labels])

    def refresh_region(self, r0: int, c0: int, r1: int, c1: int) -> None:
        """Recolour labels[r0:r1, c0:c1] after they were changed in place, and repaint just that part."""
        self._rgba[r0:r1, c0:c1] = self._lut[self.labels[r0:r1, c0:c1]]
        self.update(QRectF(c0, r0, c1 - c0, r1 - r0))


def colormap_rgba(values: np.ndarray, lut: np.ndarray, lo: float, hi: float, alpha: int = 255) -> np.ndarray:
    """Map a float array through a (256, 3/4) colour table between ``lo`` and ``hi``."""
    idx = np.clip((values.astype(np.float32) - lo) / max(hi - lo, 1e-12) * 255, 0, 255).astype(np.uint8)
    rgba = np.empty(values.shape + (4,), np.uint8)
    rgba[..., :3] = lut[idx, :3]
    rgba[..., 3] = alpha
    return rgba
