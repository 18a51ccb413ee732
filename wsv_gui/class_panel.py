"""The class palette: colour swatch, name, the key that picks it (1–9), and buttons to add, rename, recolour,
reorder and delete classes. Edits go through the undo stack (the window owns it)."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QListWidget, QListWidgetItem, QToolButton, QVBoxLayout, QWidget

from engine.annotations.types import ClassDef


def swatch(color: tuple[int, int, int], size: int = 16) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(QColor(*color))
    return QIcon(pm)


class ClassPanel(QWidget):
    classSelected = Signal(int)  # class id
    addRequested = Signal()
    renameRequested = Signal(int)
    recolorRequested = Signal(int)
    moveRequested = Signal(int, int)  # class id, -1 up / +1 down
    deleteRequested = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.list = QListWidget()
        self.list.currentItemChanged.connect(self._on_current)
        self.list.itemDoubleClicked.connect(lambda item: self.renameRequested.emit(self._id(item)))
        layout.addWidget(self.list)
        row = QHBoxLayout()
        for text, tip, slot in (("+", "Add a class", lambda: self.addRequested.emit()),
                                ("Rename", "Rename the selected class (or double-click it)", self._rename),
                                ("Colour", "Change the selected class's colour", self._recolor),
                                ("▲", "Move up (changes the class index in masks)", lambda: self._move(-1)),
                                ("▼", "Move down", lambda: self._move(1)),
                                ("Delete", "Delete the selected class and its marks (undoable)", self._delete)):
            b = QToolButton()
            b.setText(text)
            b.setToolTip(tip)
            b.clicked.connect(slot)
            row.addWidget(b)
        row.addStretch(1)
        layout.addLayout(row)
        self.classes: list[ClassDef] = []

    def set_classes(self, classes: list[ClassDef]) -> None:
        current = self.current_class_id()
        self.classes = classes
        self.list.blockSignals(True)
        self.list.clear()
        for c in classes:
            key = f"   [{c.index + 1}]" if c.index < 9 else ""
            item = QListWidgetItem(swatch(c.color), f"{c.name}{key}")
            item.setData(Qt.ItemDataRole.UserRole, c.id)
            item.setToolTip(f"class index {c.index} in exported masks")
            self.list.addItem(item)
            if c.id == current:
                self.list.setCurrentItem(item)
        self.list.blockSignals(False)
        if self.list.currentItem() is None and self.list.count():
            self.list.setCurrentRow(min(1, self.list.count() - 1))
        elif self.list.currentItem() is not None:
            self.classSelected.emit(self._id(self.list.currentItem()))

    def select_index(self, index: int) -> None:
        if 0 <= index < self.list.count():
            self.list.setCurrentRow(index)

    def current_class_id(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else self._id(item)

    def current_class(self) -> ClassDef | None:
        cid = self.current_class_id()
        return next((c for c in self.classes if c.id == cid), None)

    @staticmethod
    def _id(item: QListWidgetItem) -> int:
        return int(item.data(Qt.ItemDataRole.UserRole))

    def _on_current(self, current: QListWidgetItem | None, _previous) -> None:
        if current is not None:
            self.classSelected.emit(self._id(current))

    def _rename(self) -> None:
        if (cid := self.current_class_id()) is not None:
            self.renameRequested.emit(cid)

    def _recolor(self) -> None:
        if (cid := self.current_class_id()) is not None:
            self.recolorRequested.emit(cid)

    def _move(self, direction: int) -> None:
        if (cid := self.current_class_id()) is not None:
            self.moveRequested.emit(cid, direction)

    def _delete(self) -> None:
        if (cid := self.current_class_id()) is not None:
            self.deleteRequested.emit(cid)
