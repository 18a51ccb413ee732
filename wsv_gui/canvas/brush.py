"""The brush: a size cursor that follows the mouse, and the live stroke preview while a stroke is drawn.

Points are collected in image coordinates and the preview path grows with each mouse move (a path item
update, independent of the image size), so painting stays smooth on very large images; the stroke reaches the
store when the button is released.
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsEllipseItem, QGraphicsPathItem, QGraphicsScene

MIN_STEP = 0.5
"""minimum distance in image pixels between recorded points"""


class BrushPreview:
    def __init__(self, scene: QGraphicsScene) -> None:
        self.cursor = QGraphicsEllipseItem()
        cursor_pen = QPen(QColor(255, 255, 255, 220), 1.5)
        cursor_pen.setCosmetic(True)
        self.cursor.setPen(cursor_pen)
        self.cursor.setZValue(100)
        self.cursor.hide()
        self.path_item = QGraphicsPathItem()
        self.path_item.setZValue(50)
        self.path_item.hide()
        scene.addItem(self.cursor)
        scene.addItem(self.path_item)
        self.points: list[tuple[float, float]] = []
        self._path = QPainterPath()

    def move_cursor(self, pos: QPointF, radius: float, visible: bool) -> None:
        self.cursor.setRect(QRectF(pos.x() - radius, pos.y() - radius, 2 * radius, 2 * radius))
        self.cursor.setVisible(visible)

    def begin(self, pos: QPointF, radius: float, color: QColor | None, opacity: float) -> None:
        """Start a stroke; ``color`` None draws the eraser's preview."""
        pen = QPen(color if color is not None else QColor(255, 255, 255), 2 * radius)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
        if color is None:
            pen.setStyle(Qt.PenStyle.SolidLine)
        self.path_item.setPen(pen)
        self.path_item.setOpacity(0.45 if color is None else opacity)
        self.points = [(pos.x(), pos.y())]
        self._path = QPainterPath(pos)
        self._path.lineTo(pos + QPointF(1e-3, 0))  # a click alone shows a dot
        self.path_item.setPath(self._path)
        self.path_item.show()

    def extend(self, pos: QPointF) -> bool:
        last = self.points[-1]
        if (pos.x() - last[0]) ** 2 + (pos.y() - last[1]) ** 2 < MIN_STEP ** 2:
            return False
        self.points.append((pos.x(), pos.y()))
        self._path.lineTo(pos)
        self.path_item.setPath(self._path)
        return True

    def finish(self) -> np.ndarray:
        pts = np.array(self.points, np.float32)
        self.cancel()
        return pts

    def cancel(self) -> None:
        self.points = []
        self._path = QPainterPath()
        self.path_item.setPath(self._path)
        self.path_item.hide()

    @property
    def active(self) -> bool:
        return bool(self.points)
