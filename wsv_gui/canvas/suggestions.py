"""Outlines of the regions most worth a stroke (engine.suggest) over the image: dashed, numbered in order, drawn
with a cosmetic pen so that they read the same at any zoom, and never in the way of the mouse."""
from __future__ import annotations

from PySide6.QtCore import QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QGraphicsScene, QGraphicsSimpleTextItem

COLOR = QColor(255, 230, 40)


class SuggestionOutlines:
    def __init__(self, scene: QGraphicsScene) -> None:
        self.scene = scene
        self.items: list[QGraphicsRectItem] = []

    def show(self, rects: list[tuple[float, float, float, float]]) -> None:
        """Outline these (x0, y0, x1, y1) image-pixel rectangles, the first numbered 1."""
        self.clear()
        pen = QPen(COLOR, 2.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        font = QFont()
        font.setBold(True)
        for number, (x0, y0, x1, y1) in enumerate(rects, 1):
            item = QGraphicsRectItem(QRectF(x0, y0, x1 - x0, y1 - y0))
            item.setPen(pen)
            item.setZValue(15)  # above the prediction and the marks, below the boxes being edited
            item.setAcceptedMouseButtons(Qt.MouseButton.NoButton)
            label = QGraphicsSimpleTextItem(str(number), item)
            label.setBrush(QBrush(COLOR))
            label.setFont(font)
            label.setFlag(QGraphicsSimpleTextItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
            label.setPos(x0, y0)
            self.scene.addItem(item)
            self.items.append(item)

    def rects(self) -> list[tuple[float, float, float, float]]:
        return [(r.rect().left(), r.rect().top(), r.rect().right(), r.rect().bottom()) for r in self.items]

    def clear(self) -> None:
        for item in self.items:
            self.scene.removeItem(item)
        self.items = []
