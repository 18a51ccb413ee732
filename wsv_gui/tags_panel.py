"""Image-level tags of the image on the canvas: tick the classes it shows; every class left unticked is absent.

An image stays untagged (it contributes no tag supervision) until a class is ticked; ticking the first one also
ticks the background class, where the project has one, which nearly every photo shows (untick it for a
close-up). "Clear" makes the image untagged again. Every change is one undoable store edit made by the window.
"""
from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QListWidget, QListWidgetItem, QPushButton, QVBoxLayout, QWidget

from engine.annotations.types import ClassDef, Tags, background_index
from wsv_gui.class_panel import swatch


class TagsPanel(QWidget):
    tagsChanged = Signal(object)  # set of class ids present, or None for untagged

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        self.state = QLabel()
        self.state.setWordWrap(True)
        layout.addWidget(self.state)
        self.list = QListWidget()
        self.list.itemChanged.connect(self._on_item)
        layout.addWidget(self.list, 1)
        row = QHBoxLayout()
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("make this image untagged again (it then gives no tag supervision)")
        self.clear_button.clicked.connect(lambda: self.tagsChanged.emit(None))
        row.addStretch(1)
        row.addWidget(self.clear_button)
        layout.addLayout(row)
        self.classes: list[ClassDef] = []
        self.tags: Tags | None = None
        self.setEnabled(False)

    def show_tags(self, classes: list[ClassDef], tags: Tags | None, enabled: bool = True) -> None:
        self.classes, self.tags = classes, tags
        present = set() if tags is None else set(tags.class_ids)
        self.list.blockSignals(True)
        self.list.clear()
        for c in classes:
            item = QListWidgetItem(swatch(c.color), c.name)
            item.setData(Qt.ItemDataRole.UserRole, c.id)
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(Qt.CheckState.Checked if c.id in present else Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)
        self.setEnabled(enabled)
        self.clear_button.setEnabled(tags is not None)
        if tags is None:
            self.state.setText("Untagged: tick the classes this image shows.")
        else:
            names = [c.name for c in classes if c.id in present]
            self.state.setText("Tagged: " + (", ".join(names) if names else "no class") +
                               " present; the rest absent.")

    def checked(self) -> set[int]:
        return {int(self.list.item(i).data(Qt.ItemDataRole.UserRole)) for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.CheckState.Checked}

    def _on_item(self, item: QListWidgetItem) -> None:
        present = self.checked()
        background = background_index([c.name for c in self.classes])
        if self.tags is None and present and background is not None:
            present.add(self.classes[background].id)  # first tag of an image: the background is there too
        self.tagsChanged.emit(present)
