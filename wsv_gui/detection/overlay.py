"""Detections drawn over the canvas: one rectangle per detection in its class colour, labelled with class and
score. Items are rebuilt whenever the thresholds change, which is cheap at the few hundred raw detections kept."""
from __future__ import annotations

from PySide6.QtCore import QRectF
from PySide6.QtGui import QBrush, QColor, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QGraphicsScene, QGraphicsSimpleTextItem

from engine.detection.postprocess import Detections


class DetectionOverlay:
    def __init__(self, scene: QGraphicsScene) -> None:
        self.scene = scene
        self.items: list[QGraphicsRectItem] = []

    def show(self, detections: Detections | None, colors: list[QColor], names: list[str]) -> None:
        self.clear()
        if detections is None:
            return
        for box, score, label in zip(detections.boxes, detections.scores, detections.labels):
            color = colors[label] if 0 <= label < len(colors) else QColor(255, 255, 255)
            item = QGraphicsRectItem(QRectF(float(box[0]), float(box[1]), float(box[2] - box[0]), float(box[3] - box[1])))
            pen = QPen(color, 3.0)
            pen.setCosmetic(True)
            item.setPen(pen)
            item.setZValue(30)
            text = QGraphicsSimpleTextItem(f"{names[label] if 0 <= label < len(names) else label} {score:.2f}", item)
            text.setBrush(QBrush(QColor(255, 255, 255)))
            text.setFlag(QGraphicsSimpleTextItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
            text.setPos(float(box[0]), float(box[1]))
            backdrop = QGraphicsRectItem(text.boundingRect(), text)
            backdrop.setBrush(QBrush(QColor(color.red(), color.green(), color.blue(), 190)))
            backdrop.setPen(QPen(QColor(0, 0, 0, 0)))
            backdrop.setFlag(QGraphicsRectItem.GraphicsItemFlag.ItemStacksBehindParent, True)
            self.scene.addItem(item)
            self.items.append(item)

    def clear(self) -> None:
        for item in self.items:
            self.scene.removeItem(item)
        self.items.clear()
