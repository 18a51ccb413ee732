"""Object boxes on the canvas: drawing (a drag, or two clicks), selecting, moving, resizing by edges and corners.

The layer only shows the store's boxes and turns mouse gestures into requests (new box, box moved, box
deleted); the window turns those into undoable store edits and hands the stored boxes back, so what is drawn
is always what is saved. Hit tolerances are in screen pixels, so handles are as easy to grab at any zoom.
"""
from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPen
from PySide6.QtWidgets import QGraphicsRectItem, QGraphicsScene, QGraphicsSimpleTextItem

from engine.annotations.types import Box

GRAB_PX = 7.0
"""how close (screen pixels) the cursor must be to an edge to resize instead of move"""
CLICK_PX = 4.0
"""a press and release closer than this (screen pixels) is a click: the box is finished by a second click"""
MIN_SIDE = 1.0
"""smallest box side in image pixels"""


@dataclass
class Drag:
    """A gesture in progress: a new box from ``anchor``, or an edit of ``box`` (which edges follow the mouse)."""

    anchor: QPointF
    box: Box | None = None
    edges: tuple[bool, bool, bool, bool] = (True, True, True, True)
    """left, top, right, bottom; all four: move the whole box"""
    moved: bool = False


class BoxItem(QGraphicsRectItem):
    def __init__(self, box: Box, color: QColor, name: str) -> None:
        super().__init__(QRectF(QPointF(box.x0, box.y0), QPointF(box.x1, box.y1)))
        self.box = box
        self.color = color
        self.label = QGraphicsSimpleTextItem(name, self)
        self.label.setBrush(QBrush(QColor(255, 255, 255)))
        font = QFont()
        font.setBold(True)
        self.label.setFont(font)
        self.label.setFlag(QGraphicsSimpleTextItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.label.setPos(box.x0, box.y0)
        self.setZValue(20)
        self.set_selected(False)

    def set_selected(self, selected: bool) -> None:
        pen = QPen(self.color, 3.0 if selected else 2.0)
        pen.setCosmetic(True)
        if selected:
            pen.setStyle(Qt.PenStyle.DashLine)
        self.setPen(pen)
        fill = QColor(self.color)
        fill.setAlpha(45 if selected else 18)
        self.setBrush(QBrush(fill))

    def set_rect(self, rect: QRectF) -> None:
        self.setRect(rect)
        self.label.setPos(rect.topLeft())


class BoxLayer:
    def __init__(self, scene: QGraphicsScene) -> None:
        self.scene = scene
        self.items: dict[int, BoxItem] = {}
        self.selected: int | None = None
        self.rubber = QGraphicsRectItem()
        pen = QPen(QColor(255, 255, 255), 1.5, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        self.rubber.setPen(pen)
        self.rubber.setZValue(60)
        self.rubber.hide()
        scene.addItem(self.rubber)
        self.drag: Drag | None = None
        self.pending: QPointF | None = None
        """first corner of a two-click box, waiting for the second click"""

    # ---- showing the store's boxes ----------------------------------------------------------------------------
    def set_boxes(self, boxes: list[Box], colors: dict[int, QColor], names: dict[int, str]) -> None:
        keep = self.selected
        self.clear()
        for b in boxes:
            item = BoxItem(b, colors.get(b.class_id, QColor(255, 255, 255)), names.get(b.class_id, "?"))
            self.scene.addItem(item)
            self.items[b.id] = item
        self.select(keep if keep in self.items else None)

    def clear(self) -> None:
        self.cancel()
        for item in self.items.values():
            self.scene.removeItem(item)
        self.items.clear()
        self.selected = None

    def set_visible(self, visible: bool) -> None:
        for item in self.items.values():
            item.setVisible(visible)

    def select(self, box_id: int | None) -> None:
        if self.selected in self.items:
            self.items[self.selected].set_selected(False)
        self.selected = box_id
        if box_id is not None:
            self.items[box_id].set_selected(True)

    # ---- gestures ---------------------------------------------------------------------------------------------
    def hit(self, pos: QPointF, zoom: float) -> tuple[int, tuple[bool, bool, bool, bool]] | None:
        """The box under ``pos`` and which of its edges are within grabbing distance (none: inside, move it).
        The selected box wins, then the smallest, so nested boxes stay reachable."""
        tol = GRAB_PX / max(zoom, 1e-6)
        hits = []
        for box_id, item in self.items.items():
            r = item.rect()
            if not r.adjusted(-tol, -tol, tol, tol).contains(pos):
                continue
            edges = (abs(pos.x() - r.left()) <= tol, abs(pos.y() - r.top()) <= tol,
                     abs(pos.x() - r.right()) <= tol, abs(pos.y() - r.bottom()) <= tol)
            hits.append((box_id != self.selected, r.width() * r.height(), box_id, edges))
        if not hits:
            return None
        _, _, box_id, edges = min(hits)
        return box_id, edges

    def cursor_for(self, pos: QPointF, zoom: float) -> Qt.CursorShape:
        found = self.hit(pos, zoom)
        if found is None:
            return Qt.CursorShape.CrossCursor
        left, top, right, bottom = found[1]
        if (left and top) or (right and bottom):
            return Qt.CursorShape.SizeFDiagCursor
        if (left and bottom) or (right and top):
            return Qt.CursorShape.SizeBDiagCursor
        if left or right:
            return Qt.CursorShape.SizeHorCursor
        if top or bottom:
            return Qt.CursorShape.SizeVerCursor
        return Qt.CursorShape.SizeAllCursor

    def press(self, pos: QPointF, zoom: float) -> None:
        if self.pending is not None:
            return  # the release of this second click finishes the box
        found = self.hit(pos, zoom)
        if found is not None:
            box_id, edges = found
            self.select(box_id)
            self.drag = Drag(pos, self.items[box_id].box, edges if any(edges) else (True,) * 4)
            return
        self.select(None)
        self.drag = Drag(pos)
        self.rubber.setRect(QRectF(pos, pos))
        self.rubber.show()

    def move(self, pos: QPointF, bounds: QRectF) -> None:
        if self.pending is not None:
            self.rubber.setRect(self._clamped(QRectF(self.pending, pos).normalized(), bounds))
            return
        d = self.drag
        if d is None:
            return
        d.moved = True
        if d.box is None:
            self.rubber.setRect(self._clamped(QRectF(d.anchor, pos).normalized(), bounds))
        else:
            self.items[d.box.id].set_rect(self._edited(d, pos, bounds))

    def release(self, pos: QPointF, zoom: float, bounds: QRectF):
        """Finish a gesture: ('new', xyxy), ('moved', box, xyxy), or None (nothing to store yet)."""
        if self.pending is not None:
            rect = self._clamped(QRectF(self.pending, pos).normalized(), bounds)
            self.cancel()
            return self._new(rect)
        d, self.drag = self.drag, None
        if d is None:
            return None
        if d.box is None:
            if (pos - d.anchor).manhattanLength() * zoom < CLICK_PX:
                self.pending = d.anchor  # a click: the next click sets the opposite corner
                return None
            self.rubber.hide()
            return self._new(self._clamped(QRectF(d.anchor, pos).normalized(), bounds))
        rect = self._edited(d, pos, bounds)
        if not d.moved or (rect.topLeft() == QPointF(d.box.x0, d.box.y0) and rect.bottomRight() == QPointF(d.box.x1, d.box.y1)):
            return None
        return "moved", d.box, (rect.left(), rect.top(), rect.right(), rect.bottom())

    def cancel(self) -> None:
        """Abandon a box being drawn or edited (Esc, right click, another image)."""
        if self.drag is not None and self.drag.box is not None and self.drag.box.id in self.items:
            b = self.drag.box
            self.items[b.id].set_rect(QRectF(QPointF(b.x0, b.y0), QPointF(b.x1, b.y1)))
        self.drag = None
        self.pending = None
        self.rubber.hide()

    @property
    def busy(self) -> bool:
        return self.drag is not None or self.pending is not None

    # ---- geometry ---------------------------------------------------------------------------------------------
    @staticmethod
    def _clamped(rect: QRectF, bounds: QRectF) -> QRectF:
        return rect.intersected(bounds) if rect.width() and rect.height() else rect

    @staticmethod
    def _new(rect: QRectF):
        if rect.width() < MIN_SIDE or rect.height() < MIN_SIDE:
            return None
        return "new", (rect.left(), rect.top(), rect.right(), rect.bottom())

    @staticmethod
    def _edited(d: Drag, pos: QPointF, bounds: QRectF) -> QRectF:
        b = d.box
        dx, dy = pos.x() - d.anchor.x(), pos.y() - d.anchor.y()
        if all(d.edges):  # move, kept inside the image
            dx = min(max(dx, bounds.left() - b.x0), bounds.right() - b.x1)
            dy = min(max(dy, bounds.top() - b.y0), bounds.bottom() - b.y1)
            return QRectF(QPointF(b.x0 + dx, b.y0 + dy), QPointF(b.x1 + dx, b.y1 + dy))
        left, top, right, bottom = d.edges
        x0 = min(max(b.x0 + dx, bounds.left()), b.x1 - MIN_SIDE) if left else b.x0
        y0 = min(max(b.y0 + dy, bounds.top()), b.y1 - MIN_SIDE) if top else b.y0
        x1 = max(min(b.x1 + dx, bounds.right()), b.x0 + MIN_SIDE) if right else b.x1
        y1 = max(min(b.y1 + dy, bounds.bottom()), b.y0 + MIN_SIDE) if bottom else b.y1
        return QRectF(QPointF(x0, y0), QPointF(x1, y1))
