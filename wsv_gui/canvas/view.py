"""The canvas view: the image with the seed layer on top, zoom around the cursor, fit and 1:1.

Scene coordinates are original-image pixel coordinates (the displayed pixmap may be a downscaled working copy,
scaled back up), so marks are drawn and stored in the same coordinates whatever the working resolution.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPixmap, QWheelEvent
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from engine.io.images import LoadedImage
from wsv_gui.convert import label_overlay, rgb_image


class CanvasView(QGraphicsView):
    zoomChanged = Signal(float)

    ZOOM_STEP = 1.25
    MIN_ZOOM, MAX_ZOOM = 0.02, 64.0

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(40, 40, 44))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self._image_item = QGraphicsPixmapItem()
        self._image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self._seed_item = QGraphicsPixmapItem()
        self._seed_item.setZValue(10)
        self._seed_item.setOpacity(0.8)
        for item in (self._image_item, self._seed_item):
            self.scene().addItem(item)
        self._size = (0, 0)

    def set_image(self, image: LoadedImage) -> None:
        """Show a new image; the view fits it, since the previous zoom means nothing for a new picture."""
        self._image_item.setPixmap(QPixmap.fromImage(rgb_image(image.pixels)))
        self._image_item.setScale(1.0 / image.scale)
        self._size = image.original_size
        self._seed_item.setPixmap(QPixmap())
        self.scene().setSceneRect(QRectF(0, 0, *self._size))
        self.fit()

    def clear(self) -> None:
        self._image_item.setPixmap(QPixmap())
        self._seed_item.setPixmap(QPixmap())
        self._size = (0, 0)

    def set_seeds(self, seeds: np.ndarray, colors: np.ndarray) -> None:
        """Show a seed map (class indices, 255 = none) at full image resolution."""
        self._seed_item.setPixmap(QPixmap.fromImage(label_overlay(seeds, colors)))

    def set_seed_opacity(self, opacity: float) -> None:
        self._seed_item.setOpacity(opacity)

    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        if self._size[0]:
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
            self.zoomChanged.emit(self.zoom())

    def actual_size(self) -> None:
        self.resetTransform()
        self.zoomChanged.emit(1.0)

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if not steps:
            return
        factor = self.ZOOM_STEP ** steps
        target = min(max(self.zoom() * factor, self.MIN_ZOOM), self.MAX_ZOOM)
        factor = target / self.zoom()
        self.scale(factor, factor)
        self.zoomChanged.emit(self.zoom())
