"""The class palette: each class with its colour swatch, the index it has in masks, and its key (1–9)."""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from engine.annotations.types import ClassDef


def swatch(color: tuple[int, int, int], size: int = 16) -> QIcon:
    pm = QPixmap(size, size)
    pm.fill(QColor(*color))
    return QIcon(pm)


class ClassPanel(QListWidget):
    classSelected = Signal(int)  # class id

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.currentItemChanged.connect(self._on_current)

    def set_classes(self, classes: list[ClassDef]) -> None:
        current = self.current_class_id()
        self.clear()
        for c in classes:
            key = f"  [{c.index + 1}]" if c.index < 9 else ""
            item = QListWidgetItem(swatch(c.color), f"{c.name}{key}")
            item.setData(Qt.ItemDataRole.UserRole, c.id)
            self.addItem(item)
            if c.id == current:
                self.setCurrentItem(item)
        if self.currentItem() is None and self.count():
            self.setCurrentRow(min(1, self.count() - 1))

    def current_class_id(self) -> int | None:
        item = self.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def _on_current(self, current: QListWidgetItem | None, _previous) -> None:
        if current is not None:
            self.classSelected.emit(int(current.data(Qt.ItemDataRole.UserRole)))
