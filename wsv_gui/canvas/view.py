"""The canvas: the image, the user's seed layer and boxes, the network's prediction; brush, eraser and box tool.

Scene coordinates are original-image pixel coordinates (the displayed pixmap may be a downscaled working copy,
scaled back up), so marks are drawn and stored in the same coordinates whatever the working resolution.
Zoom follows the wheel around the cursor; the middle button, or Space with the left button, pans.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPixmap, QWheelEvent
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView

from engine.annotations.raster import stroke_footprint
from engine.annotations.types import UNLABELED
from engine.io.images import LoadedImage
from wsv_gui.canvas.boxes import BoxLayer
from wsv_gui.canvas.brush import BrushPreview
from wsv_gui.canvas.layers import LabelLayer, RGBALayer
from wsv_gui.canvas.suggestions import SuggestionOutlines
from wsv_gui.convert import rgb_image

BRUSH, ERASER, BOX, PAN = "brush", "eraser", "box", "pan"


class CanvasView(QGraphicsView):
    zoomChanged = Signal(float)
    strokeFinished = Signal(object, float, bool)  # (n, 2) float32 points, radius, is_eraser
    brushSizeChanged = Signal(float)
    boxDrawn = Signal(tuple)  # xyxy in image pixels
    boxMoved = Signal(object, tuple)  # the stored Box, its new xyxy
    boxDeleteRequested = Signal(int)  # box id

    ZOOM_STEP = 1.25
    MIN_ZOOM, MAX_ZOOM = 0.02, 64.0
    MIN_RADIUS, MAX_RADIUS = 0.5, 200.0

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setBackgroundBrush(QColor(40, 40, 44))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setMouseTracking(True)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._image_item = QGraphicsPixmapItem()
        self._image_item.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.prediction = RGBALayer()
        self.prediction.setZValue(5)
        self.prediction.setOpacity(0.45)
        self.seeds = LabelLayer()
        self.seeds.setZValue(10)
        self.seeds.setOpacity(0.85)
        for item in (self._image_item, self.prediction, self.seeds):
            self.scene().addItem(item)
        self.brush = BrushPreview(self.scene())
        self.boxes = BoxLayer(self.scene())
        self.suggestions = SuggestionOutlines(self.scene())
        self.tool = BRUSH
        self.radius = 6.0
        self.brush_color: QColor | None = QColor(255, 255, 255)
        self.editable = False
        self._size = (0, 0)
        self._pan_from: QPointF | None = None
        self._space = False
        self._fitted = True

    # ---- image and layers -------------------------------------------------------------------------------------
    def set_image(self, image: LoadedImage, seeds: np.ndarray, colors: np.ndarray) -> None:
        """Show a new image with its seed map (full resolution); the view fits the new picture."""
        self.brush.cancel()
        self.boxes.clear()
        self.suggestions.clear()
        self._image_item.setPixmap(QPixmap.fromImage(rgb_image(image.pixels)))
        self._image_item.setScale(1.0 / image.scale)
        self._size = image.original_size
        self.seeds.set_colors(colors)
        self.seeds.set_labels(seeds)
        self.prediction.clear()
        self.scene().setSceneRect(QRectF(0, 0, *self._size))
        self.editable = True
        self.fit()

    def clear(self) -> None:
        self.brush.cancel()
        self.boxes.clear()
        self.suggestions.clear()
        self._image_item.setPixmap(QPixmap())
        self.seeds.set_labels(np.full((0, 0), UNLABELED, np.uint8))
        self.prediction.clear()
        self._size = (0, 0)
        self.editable = False

    def set_prediction(self, rgba: np.ndarray | None) -> None:
        """Show a working-resolution RGBA overlay stretched over the image (None hides it)."""
        if rgba is None or not self._size[0]:
            self.prediction.clear()
            return
        self.prediction.set_rgba(rgba)
        self.prediction.setScale(self._size[0] / rgba.shape[1])

    def paint_stroke(self, label: int | None, radius: float, points: np.ndarray) -> None:
        """Add one committed stroke to the seed layer in place (only its bounding box is recoloured)."""
        labels = self.seeds.labels
        mask, (r0, c0) = stroke_footprint(labels.shape, points, radius)
        if mask.size:
            view = labels[r0:r0 + mask.shape[0], c0:c0 + mask.shape[1]]
            view[mask] = UNLABELED if label is None else label
            self.seeds.refresh_region(r0, c0, r0 + mask.shape[0], c0 + mask.shape[1])

    # ---- view -------------------------------------------------------------------------------------------------
    def zoom(self) -> float:
        return self.transform().m11()

    def fit(self) -> None:
        """Show the whole image; it stays fitted as the view is resized until the user zooms (so the first
        image, fitted before the window reached its size, looks like every later one)."""
        self._fitted = True
        if self._size[0]:
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)
            self.zoomChanged.emit(self.zoom())

    def actual_size(self) -> None:
        self._fitted = False
        self.resetTransform()
        self.zoomChanged.emit(1.0)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._fitted:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if not steps:
            return
        target = min(max(self.zoom() * self.ZOOM_STEP ** steps, self.MIN_ZOOM), self.MAX_ZOOM)
        factor = target / self.zoom()
        self.scale(factor, factor)
        self._fitted = False
        self.zoomChanged.emit(self.zoom())

    def set_radius(self, radius: float) -> None:
        self.radius = float(min(max(radius, self.MIN_RADIUS), self.MAX_RADIUS))
        self.brushSizeChanged.emit(self.radius)

    def grow_brush(self, factor: float) -> None:
        self.set_radius(self.radius * factor)

    # ---- mouse and keys ---------------------------------------------------------------------------------------
    def _painting_tool(self) -> bool:
        return self.editable and self.tool in (BRUSH, ERASER) and not self._space

    def _box_tool(self) -> bool:
        return self.editable and self.tool == BOX and not self._space

    def _bounds(self) -> QRectF:
        return QRectF(0, 0, *self._size)

    def set_tool(self, tool: str) -> None:
        self.brush.cancel()
        self.boxes.cancel()
        if tool != BOX:
            self.boxes.select(None)
        self.tool = tool
        self.viewport().unsetCursor()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton or (event.button() == Qt.MouseButton.LeftButton and
                                                           (self._space or self.tool == PAN)):
            self._pan_from = event.position()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            return
        if event.button() == Qt.MouseButton.LeftButton and self._painting_tool():
            pos = self.mapToScene(event.position().toPoint())
            color = None if self.tool == ERASER else self.brush_color
            self.brush.begin(pos, self.radius, color, self.seeds.opacity())
            return
        if event.button() == Qt.MouseButton.LeftButton and self._box_tool():
            self.boxes.press(self.mapToScene(event.position().toPoint()), self.zoom())
            return
        if event.button() == Qt.MouseButton.RightButton and (self.brush.active or self.boxes.busy):
            self.brush.cancel()  # right click while painting abandons the stroke (or the box)
            self.boxes.cancel()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.position() - self._pan_from
            self._pan_from = event.position()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - int(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - int(delta.y()))
            return
        pos = self.mapToScene(event.position().toPoint())
        self.brush.move_cursor(pos, self.radius, self._painting_tool())
        if self._box_tool():
            self.boxes.move(pos, self._bounds())
            self.viewport().setCursor(Qt.CursorShape.CrossCursor if self.boxes.busy else
                                      self.boxes.cursor_for(pos, self.zoom()))
        if self.brush.active:
            self.brush.extend(pos)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() in (Qt.MouseButton.MiddleButton, Qt.MouseButton.LeftButton):
            self._pan_from = None
            self.viewport().unsetCursor()
            return
        if event.button() == Qt.MouseButton.LeftButton and self.brush.active:
            self.brush.extend(self.mapToScene(event.position().toPoint()))
            points = self.brush.finish()
            self.strokeFinished.emit(points, self.radius, self.tool == ERASER)
            return
        if event.button() == Qt.MouseButton.LeftButton and self._box_tool():
            done = self.boxes.release(self.mapToScene(event.position().toPoint()), self.zoom(), self._bounds())
            if done is not None and done[0] == "new":
                self.boxDrawn.emit(tuple(done[1]))
            elif done is not None:
                self.boxMoved.emit(done[1], tuple(done[2]))
            return
        super().mouseReleaseEvent(event)

    def leaveEvent(self, event) -> None:
        self.brush.cursor.hide()
        super().leaveEvent(event)

    def keyPressEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = True
            self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
            return
        if event.key() == Qt.Key.Key_Escape and (self.boxes.busy or self.brush.active):
            self.boxes.cancel()
            self.brush.cancel()
            return
        if event.key() in (Qt.Key.Key_Delete, Qt.Key.Key_Backspace) and self.boxes.selected is not None:
            self.boxDeleteRequested.emit(self.boxes.selected)
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space = False
            self.viewport().unsetCursor()
            return
        super().keyReleaseEvent(event)
