"""The contract between the main window and its tabs. The window owns what every tab shares — the project and
its store connection (GUI thread), the undo stack, the image list, classes and tags panels, and the marks
commands — and makes each tab listed in wsv_gui.tabs with itself as the tab's ``host``. It then calls, in the
GUI thread and for every tab:

* ``set_project(project)``: a project was opened (stop what belongs to the old one);
* ``classes_changed(classes)``: classes were added, renamed, recoloured, moved or deleted;
* ``class_selected(cls)``: the user picked the class to draw with;
* ``show_image(shown)``: the user picked an image (None: it could not be shown);
* ``marks_changed(kind, detail)``: marks changed in the store (kind: "added", "strokes", "boxes", "tags",
  "classes"; detail: the added strokes or the image id), after the user's edit or its undo;
* ``add_menus(menus)``: once, to add the tab's actions to the window's menus;
* ``shutdown()``: the window is closing: stop threads and keep what was learnt.

A tab calls back only through ``host`` (wsv_gui.main_window.MainWindow): ``project``, ``push(command)`` for an
undoable edit, ``commit_stroke``/``add_box``/``move_box``/``delete_box`` for marks drawn on its canvas,
``class_colors()``, ``current_class()``, ``dialog_dir()``, ``claim(folder, kind)`` before writing an export,
``statusBar()`` and ``set_training_status(text)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu, QWidget

from engine.annotations.types import ClassDef
from engine.io.images import LoadedImage
from engine.project import Project


@dataclass(frozen=True)
class ShownImage:
    """The image the user picked, as the window loaded it (once, for every tab)."""

    image_id: int
    image: LoadedImage
    path: Path


@dataclass(frozen=True)
class Menus:
    """The window's menus a tab may add actions to, and the menu bar for a menu of its own."""

    file: QMenu
    edit: QMenu
    view: QMenu
    bar: object


class Tab(QWidget):
    """Base of the window's tabs: every hook does nothing until a tab overrides it."""

    title = ""
    """the tab's label"""
    key = ""
    """the window's attribute for the tab (window.segmentation, window.detection, ...)"""

    def __init__(self, host) -> None:
        super().__init__()
        self.host = host

    def set_project(self, project: Project) -> None:
        pass

    def classes_changed(self, classes: list[ClassDef]) -> None:
        pass

    def class_selected(self, cls: ClassDef) -> None:
        pass

    def show_image(self, shown: ShownImage | None) -> None:
        pass

    def marks_changed(self, kind: str, detail) -> None:
        pass

    def add_menus(self, menus: Menus) -> None:
        pass

    def shutdown(self) -> None:
        pass


def menu_action(owner: QWidget, menu: QMenu, text: str, slot, shortcut=None) -> QAction:
    """An action in ``menu`` that calls ``slot``, with its shortcut active anywhere in ``owner``'s window."""
    action = QAction(text, owner)
    if shortcut is not None:
        action.setShortcut(QKeySequence(shortcut))
    action.triggered.connect(slot)
    menu.addAction(action)
    return action
