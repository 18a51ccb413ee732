"""The main window: image list on the left, the Segmentation tab with the canvas in the middle, classes on the
right, status bar below."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox, QTabWidget

from engine.annotations.store import StoreError
from engine.io.images import ImageLoadError
from engine.project import Project
from wsv_gui.canvas.view import CanvasView
from wsv_gui.class_panel import ClassPanel
from wsv_gui.image_list import ImageList


class MainWindow(QMainWindow):
    def __init__(self, project: Project) -> None:
        super().__init__()
        self.project: Project | None = None
        self.current_image_id: int | None = None
        self.resize(1280, 800)

        self.canvas = CanvasView()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.canvas, "Segmentation")
        self.setCentralWidget(self.tabs)

        self.image_list = ImageList()
        self.image_list.imageSelected.connect(self.show_image)
        self._dock("Images", self.image_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.class_panel = ClassPanel()
        self._dock("Classes", self.class_panel, Qt.DockWidgetArea.RightDockWidgetArea)

        self.status_image = QLabel()
        self.status_zoom = QLabel()
        self.statusBar().addWidget(self.status_image, 1)
        self.statusBar().addPermanentWidget(self.status_zoom)
        self.canvas.zoomChanged.connect(lambda z: self.status_zoom.setText(f"zoom {z * 100:.0f}%"))

        self._build_menus()
        self.set_project(project)

    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self._action(file_menu, "&Open Project…", self.open_project_dialog, QKeySequence.StandardKey.Open)
        self._action(file_menu, "Open &Folder of Images…", self.open_folder_dialog, "Ctrl+Shift+O")
        file_menu.addSeparator()
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        view_menu = self.menuBar().addMenu("&View")
        self._action(view_menu, "&Fit to Window", self.canvas.fit, "Ctrl+0")
        self._action(view_menu, "&Actual Pixels (1:1)", self.canvas.actual_size, "Ctrl+1")

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # ---- project --------------------------------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        if self.project is not None:
            self.image_list.stop_loading()
            self.project.close()
        self.project = project
        self.current_image_id = None
        self.canvas.clear()
        self.setWindowTitle(f"WSV Studio — {project.root.name}")
        store = project.store
        self.class_panel.set_classes(store.classes())
        records = store.images()
        self.image_list.populate(records, {r.id: project.image_path(r) for r in records}, store.mark_counts())
        if records:
            self.image_list.select(records[0].id)
        else:
            self.status_image.setText("This project has no images yet: File ▸ Open Folder of Images…")

    def open_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open WSV Studio project")
        if folder:
            try:
                self.set_project(Project.open(folder))
            except StoreError as exc:
                QMessageBox.warning(self, "Cannot open project", str(exc))

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.open_folder(Path(folder))

    def open_folder(self, folder: Path) -> None:
        """Open the project in ``folder``, or make one there from the images it holds."""
        try:
            if Project.exists(folder):
                project = Project.open(folder)
            else:
                project = Project.create(folder)
                report = project.add_folder(folder)
                if report.errors:
                    QMessageBox.warning(self, "Some files were skipped",
                                        f"{len(report.errors)} files could not be read:\n\n" +
                                        "\n".join(str(e) for e in report.errors[:20]))
        except StoreError as exc:
            QMessageBox.warning(self, "Cannot open folder", str(exc))
            return
        self.set_project(project)

    # ---- image ----------------------------------------------------------------------------------------------
    def show_image(self, image_id: int) -> None:
        project = self.project
        rec = project.store.image(image_id)
        try:
            image = project.load_image(rec)
        except ImageLoadError as exc:
            self.canvas.clear()
            self.status_image.setText(str(exc))
            return
        self.current_image_id = image_id
        self.canvas.set_image(image)
        self.refresh_marks()
        scaled = "" if image.scale == 1 else f", shown at {image.pixels.shape[1]}×{image.pixels.shape[0]}"
        self.status_image.setText(f"{rec.path} — {rec.width}×{rec.height}{scaled}")

    def refresh_marks(self) -> None:
        if self.current_image_id is None:
            return
        store = self.project.store
        colors = np.array([c.color for c in store.classes()], np.uint8).reshape(-1, 3)
        self.canvas.set_seeds(store.seed_map(self.current_image_id), colors)

    def closeEvent(self, event) -> None:
        self.image_list.stop_loading()
        if self.project is not None:
            self.project.close()
            self.project = None
        super().closeEvent(event)
