"""The main window: images, classes and tags on the left, the Segmentation tab (canvas, training panel,
gradient view) in the middle, status bar below. It owns the project's store connection (GUI thread), the undo
stack, and the training worker."""
from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QAction, QColor, QKeySequence, QShortcut, QUndoStack
from PySide6.QtWidgets import QColorDialog, QDockWidget, QFileDialog, QInputDialog, QLabel, QMainWindow, \
    QMessageBox, QProgressDialog, QSplitter, QTabWidget, QVBoxLayout, QWidget

from engine.annotations.store import StoreError
from engine.annotations.types import UNLABELED, Box, ImageRecord, Stroke, background_index
from engine.detection.data import done_image_ids
from engine.io.images import ImageLoadError
from engine.io.outputs import OutputFolderError, claim_output
from engine.io.atomic import write_atomic
from engine.project import Project
from engine.training.records import ProgressRecord
from wsv_gui.canvas.toolbar import CanvasToolbar
from wsv_gui.canvas.view import BOX, BRUSH, ERASER, PAN, CanvasView
from wsv_gui.class_panel import ClassPanel
from wsv_gui.commands import AddBox, AddClass, AddStrokes, DeleteBox, DeleteClass, EditClass, MoveBox, \
    ReorderClasses, SetTags
from wsv_gui.detection.tab import DetectionTab
from wsv_gui.export_jobs import ExportMasksJob
from wsv_gui.generative.tab import GenerativeTab
from wsv_gui.image_list import CANVAS_MAX_PIXELS, ImageList, too_large_to_show
from wsv_gui.prediction import overlay_rgba, prediction_strokes
from wsv_gui.tags_panel import TagsPanel
from wsv_gui.training.gradient_view import GradientView
from wsv_gui.training.panel import TrainingPanel
from wsv_gui.training.shares import class_shares, shrink_hint
from wsv_gui.trainer_worker import WorkerThread
from wsv_gui.training.worker import TrainingWorker

MAX_RECENT = 8
LOCATE_HINT = "File ▸ Locate Missing Images… finds moved images"


class MainWindow(QMainWindow):
    def __init__(self, project: Project) -> None:
        super().__init__()
        self.project: Project | None = None
        self.current_image_id: int | None = None
        self.previews: dict = {}
        self.undo_stack = QUndoStack(self)
        self.training: WorkerThread | None = None
        self.resize(1440, 900)

        self.canvas = CanvasView()
        self.toolbar = CanvasToolbar()
        self.training_panel = TrainingPanel()
        self.gradient_view = GradientView()
        canvas_box = QWidget()
        v = QVBoxLayout(canvas_box)
        v.setContentsMargins(0, 0, 0, 0)
        v.addWidget(self.toolbar)
        v.addWidget(self.canvas, 1)
        side = QSplitter(Qt.Orientation.Vertical)
        side.addWidget(self.training_panel)
        side.addWidget(self.gradient_view)
        side.setSizes([560, 320])
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(canvas_box)
        split.addWidget(side)
        split.setStretchFactor(0, 1)
        split.setSizes([900, 380])
        self.tabs = QTabWidget()
        self.tabs.addTab(split, "Segmentation")
        self.detection = DetectionTab()
        self.tabs.addTab(self.detection, "Detection")
        self.generative = GenerativeTab()
        self.tabs.addTab(self.generative, "Generative")
        self.setCentralWidget(self.tabs)

        self.image_list = ImageList()
        self.image_list.imageSelected.connect(self.show_image)
        self.image_list.setMinimumWidth(210)
        images_dock = self._dock("Images", self.image_list, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.class_panel = ClassPanel()
        classes_dock = self._dock("Classes", self.class_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tags_panel = TagsPanel()
        tags_dock = self._dock("Tags", self.tags_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.splitDockWidget(images_dock, classes_dock, Qt.Orientation.Vertical)
        self.splitDockWidget(classes_dock, tags_dock, Qt.Orientation.Vertical)
        self.resizeDocks([images_dock, classes_dock, tags_dock], [520, 200, 160], Qt.Orientation.Vertical)

        self.status_image = QLabel()
        self.status_training = QLabel("not training")
        self.status_saved = QLabel()
        self.status_zoom = QLabel()
        self.statusBar().addWidget(self.status_image, 1)
        for w in (self.status_training, self.status_saved, self.status_zoom):
            self.statusBar().addPermanentWidget(w)
        self._connect()
        self._build_menus()
        self.set_project(project)

    # ---- construction -----------------------------------------------------------------------------------------
    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable | QDockWidget.DockWidgetFeature.DockWidgetFloatable)
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        c, t = self.canvas, self.toolbar
        c.zoomChanged.connect(lambda z: self.status_zoom.setText(f"zoom {z * 100:.0f}%"))
        c.strokeFinished.connect(self.commit_stroke)
        for canvas in (c, self.detection.canvas):  # both tabs edit the same boxes
            canvas.boxDrawn.connect(self.add_box)
            canvas.boxMoved.connect(lambda box, xyxy: self._push(MoveBox(self.project.store, box, xyxy, self._on_change)))
            canvas.boxDeleteRequested.connect(
                lambda box_id: self._push(DeleteBox(self.project.store, box_id, self._on_change)))
        self.tags_panel.tagsChanged.connect(self.set_tags)
        c.brushSizeChanged.connect(lambda r: (t.radius.blockSignals(True), t.radius.setValue(r), t.radius.blockSignals(False)))
        t.toolChanged.connect(self.set_tool)
        t.radiusChanged.connect(c.set_radius)
        t.seedOpacityChanged.connect(c.seeds.setOpacity)
        t.predictionOpacityChanged.connect(c.prediction.setOpacity)
        t.predictionModeChanged.connect(self.refresh_prediction)
        self.class_panel.classSelected.connect(self._class_selected)
        self.class_panel.addRequested.connect(self.add_class)
        self.class_panel.renameRequested.connect(self.rename_class)
        self.class_panel.recolorRequested.connect(self.recolor_class)
        self.class_panel.moveRequested.connect(self.move_class)
        self.class_panel.deleteRequested.connect(self.delete_class)
        self.training_panel.trainRequested.connect(self.train)
        self.training_panel.restartRequested.connect(lambda: self.train(restart=True))
        self.training_panel.pauseRequested.connect(self.pause)
        self.training_panel.stopRequested.connect(self.stop_training)

    def _build_menus(self) -> None:
        m = self.menuBar().addMenu("&File")
        self._action(m, "Open &Folder of Images…", self.open_folder_dialog, QKeySequence.StandardKey.Open)
        self._action(m, "Open &Project…", self.open_project_dialog, "Ctrl+Shift+O")
        self.recent_menu = m.addMenu("&Recent Projects")
        self._action(m, "&Locate Missing Images…", self.locate_missing_images)
        m.addSeparator()
        self._action(m, "Export &Masks…", self.export_masks, "Ctrl+E")
        self._action(m, "Export Trained Mo&del…", self.export_model)
        m.addSeparator()
        self._action(m, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        m = self.menuBar().addMenu("&Edit")
        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts(_unique([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y"),
                                   *QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)]))
        m.addAction(undo)
        m.addAction(redo)
        m.addSeparator()
        self._action(m, "&Accept Prediction as Marks", lambda: self.accept_prediction(0.0), "Ctrl+Return")
        self._action(m, "Accept &Confident Pixels (p ≥ 0.9)", lambda: self.accept_prediction(0.9), "Ctrl+Shift+Return")
        m = self.menuBar().addMenu("&View")
        self._action(m, "&Fit to Window", self.canvas.fit, "F")
        self._action(m, "&Actual Pixels (1:1)", self.canvas.actual_size, "Ctrl+1")
        self._action(m, "Show/Hide &Prediction", self.toolbar.show_prediction.toggle, "P")
        self._action(m, "Refined Mask / &Network's Answer", self.toolbar.toggle_network, "N")
        m = self.menuBar().addMenu("&Training")
        self._action(m, "&Train / Resume", self.train, "Ctrl+T")
        self._action(m, "&Pause", self.pause, "Ctrl+P")
        self._action(m, "&Stop", self.stop_training, "Ctrl+.")
        for key, tool in (("B", BRUSH), ("E", ERASER), ("R", BOX), ("H", PAN)):
            QShortcut(QKeySequence(key), self, activated=lambda t=tool: self.set_tool(t))
        QShortcut(QKeySequence("["), self, activated=lambda: self.canvas.grow_brush(1 / 1.25))
        QShortcut(QKeySequence("]"), self, activated=lambda: self.canvas.grow_brush(1.25))
        for i in range(9):
            QShortcut(QKeySequence(str(i + 1)), self, activated=lambda i=i: self.class_panel.select_index(i))

    def _action(self, menu, text, slot, shortcut=None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    # ---- project ----------------------------------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        self.stop_training(wait=True)
        if self.project is not None:
            self.image_list.stop_loading()
            self.project.close()
        self.project = project
        self.current_image_id = None
        self.previews.clear()
        self.shares: dict[int, tuple[list[int], list[np.ndarray]]] = {}
        """image id -> (steps, class shares) of its previews, for the share curve"""
        self.undo_stack.clear()
        self.canvas.clear()
        self.gradient_view.clear()
        self.training_panel.reset()
        self.training_panel.set_state("idle", saved=self.has_saved_model())
        self.detection.set_project(project)
        self.generative.set_project(project)
        self.setWindowTitle(project.root.name)  # Qt appends " — WSV Studio", the application's display name
        self._remember(project.root)
        self._refresh_classes()
        records = self._populate_images()
        if records:
            self.image_list.select(records[0].id)
        else:
            self.status_image.setText("This project has no images yet: File ▸ Open Folder of Images…")
        self.status_saved.setText("all marks saved")
        missing = project.missing_images()
        if missing:
            self.status_image.setText(f"{len(missing)} of {len(records)} images are not where the project refers to "
                                      f"them: {LOCATE_HINT}")

    def _populate_images(self) -> list[ImageRecord]:
        records = self.project.store.images()
        self.image_list.populate(records, {r.id: self.project.image_path(r) for r in records},
                                 self.project.store.mark_counts())
        return records

    def locate_missing_images(self, folder: Path | None = None) -> None:
        """Find moved or renamed images again by their content (engine.project.Project.locate_images); the
        marks drawn on them were never lost, only the files."""
        if self.project is None:
            return
        missing = self.project.missing_images()
        if not missing:
            self.statusBar().showMessage("Every image is where the project refers to it.", 10000)
            return
        if folder is None:
            chosen = QFileDialog.getExistingDirectory(self, f"Where are the {len(missing)} missing images now?", self._dialog_dir())
            if not chosen:
                return
            folder = Path(chosen)
        progress = QProgressDialog("Looking for the missing images…", "", 0, 0, self)
        progress.setCancelButton(None)
        progress.setMinimumDuration(500)
        try:
            report = self.project.locate_images(folder, lambda d, t: (progress.setMaximum(t), progress.setValue(d)))
        except StoreError as exc:
            QMessageBox.warning(self, "Locate missing images", str(exc))
            return
        finally:
            progress.close()
        current = self.image_list.current_id()
        self._populate_images()
        if current is not None:
            self.image_list.select(current)  # shows it again, now that its file may be found
        still = f"; {len(report.missing)} still missing, e.g. {report.missing[0].path}" if report.missing else ""
        self.statusBar().showMessage(f"Found {len(report.found)} of {len(missing)} missing images in {folder}{still}",
                                     10000)

    def _remember(self, root: Path) -> None:
        settings = QSettings()
        recent = [p for p in (settings.value("recent_projects") or []) if p != str(root)]
        recent = [str(root)] + recent[: MAX_RECENT - 1]
        settings.setValue("recent_projects", recent)
        self.recent_menu.clear()
        for path in recent:
            self.recent_menu.addAction(path, lambda p=path: self._open_path(Path(p)))

    def _open_path(self, path: Path) -> None:
        try:
            self.set_project(Project.open(path))
        except StoreError as exc:
            QMessageBox.warning(self, "Cannot open project", str(exc))

    def open_project_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open WSV Studio project", self._dialog_dir())
        if folder:
            self._open_path(Path(folder))

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", self._dialog_dir())
        if folder:
            self.open_folder(Path(folder))

    def open_folder(self, folder: Path) -> None:
        """Open the project in ``folder``, or make one there from the images it holds."""
        try:
            if Project.exists(folder):
                project = Project.open(folder)
            else:
                project = Project.create(folder)
                progress = QProgressDialog("Reading images…", "", 0, 0, self)
                progress.setCancelButton(None)
                progress.setMinimumDuration(500)
                report = project.add_folder(folder, lambda d, t: (progress.setMaximum(t), progress.setValue(d)))
                progress.close()
                if report.errors:
                    QMessageBox.warning(self, "Some files were skipped",
                                        f"{len(report.errors)} files could not be read:\n\n" +
                                        "\n".join(str(e) for e in report.errors[:20]))
        except StoreError as exc:
            QMessageBox.warning(self, "Cannot open folder", str(exc))
            return
        self.set_project(project)

    # ---- classes ----------------------------------------------------------------------------------------------
    def class_colors(self) -> np.ndarray:
        return np.array([c.color for c in self.project.store.classes()], np.uint8).reshape(-1, 3)

    def _refresh_classes(self) -> None:
        classes = self.project.store.classes()
        self.class_panel.set_classes(classes)
        names = [c.name for c in classes]
        self.toolbar.set_classes(names)
        self.gradient_view.set_classes(names, self.class_colors())
        self.detection.set_classes(names, self.class_colors())
        self.refresh_tags()

    def _class_selected(self, class_id: int) -> None:
        cls = self.class_panel.current_class()
        if cls is not None:
            self.canvas.brush_color = QColor(*cls.color)
            if self.canvas.tool == ERASER:
                self.set_tool(BRUSH)

    def _on_change(self, kind: str, detail) -> None:
        """Called by undo commands after they changed the store. A stroke just drawn is painted into the seed
        layer alone (cheap on huge images); anything else re-rasterizes the image's marks."""
        if kind == "error":
            self.refresh_marks()  # what the store holds, without the change that failed
            self.refresh_boxes()
            self.refresh_tags()
            self.status_saved.setText("NOT SAVED")
            QMessageBox.warning(self, "Not saved", f"{detail}\n\nThe last change was not saved; what you see now is "
                                "what the project holds.")
            return
        if kind == "classes":
            self._refresh_classes()
            self.refresh_marks()
            self.refresh_boxes()
        elif kind == "added":
            if len(detail) == 1 and detail[0].image_id == self.current_image_id:
                s = detail[0]
                index = {c.id: c.index for c in self.project.store.classes()}
                self.canvas.paint_stroke(index.get(s.class_id), s.radius, s.points)
            elif any(s.image_id == self.current_image_id for s in detail):
                self.refresh_marks()
        elif detail == self.current_image_id:
            {"strokes": self.refresh_marks, "boxes": self.refresh_boxes, "tags": self.refresh_tags}[kind]()
        self.image_list.update_counts(self.project.store.mark_counts())
        self.status_saved.setText("all marks saved")

    def add_class(self) -> None:
        name, ok = QInputDialog.getText(self, "Add class", "Name of the new class:")
        if ok and name.strip():
            self._push(AddClass(self.project.store, name.strip(), self._on_change))

    def rename_class(self, class_id: int) -> None:
        cls = next(c for c in self.project.store.classes() if c.id == class_id)
        name, ok = QInputDialog.getText(self, "Rename class", "New name:", text=cls.name)
        if ok and name.strip() and name.strip() != cls.name:
            self._push(EditClass(self.project.store, cls, self._on_change, name=name.strip()))

    def recolor_class(self, class_id: int) -> None:
        cls = next(c for c in self.project.store.classes() if c.id == class_id)
        color = QColorDialog.getColor(QColor(*cls.color), self, f"Colour of {cls.name}")
        if color.isValid():
            self._push(EditClass(self.project.store, cls, self._on_change, color=(color.red(), color.green(), color.blue())))

    def move_class(self, class_id: int, direction: int) -> None:
        order = [c.id for c in self.project.store.classes()]
        i = order.index(class_id)
        j = i + direction
        if 0 <= j < len(order):
            order[i], order[j] = order[j], order[i]
            self._push(ReorderClasses(self.project.store, order, self._on_change))

    def delete_class(self, class_id: int) -> None:
        if len(self.project.store.classes()) <= 2:
            QMessageBox.information(self, "Delete class", "A project needs at least two classes.")
            return
        self._push(DeleteClass(self.project.store, class_id, self._on_change))

    def _push(self, command) -> None:
        self.undo_stack.push(command)

    # ---- marks ------------------------------------------------------------------------------------------------
    def set_tool(self, tool: str) -> None:
        self.canvas.set_tool(tool)
        self.toolbar.set_tool(tool)

    def commit_stroke(self, points: np.ndarray, radius: float, eraser: bool) -> None:
        """Store a finished stroke at once (one committed transaction) and paint it into the seed layer."""
        if self.current_image_id is None:
            return
        cls = None if eraser else self.class_panel.current_class()
        if not eraser and cls is None:
            return
        rec = self.project.store.image(self.current_image_id)
        lo, hi = points.min(0) - radius, points.max(0) + radius
        if hi[0] < 0.5 or hi[1] < 0.5 or lo[0] > rec.width - 0.5 or lo[1] > rec.height - 0.5:
            self.statusBar().showMessage("That stroke lies outside the image: nothing was drawn", 5000)
            return
        stroke = Stroke(self.current_image_id, None if eraser else cls.id, radius, points)
        self._push(AddStrokes(self.project.store, [stroke], self._on_change, "erase" if eraser else f"paint {cls.name}"))

    def add_box(self, xyxy: tuple) -> None:
        cls = self.class_panel.current_class()
        if self.current_image_id is None or cls is None:
            return
        if cls.index == background_index([c.name for c in self.project.store.classes()]):
            self.statusBar().showMessage(f"Boxes outline objects: pick an object class, not '{cls.name}' "
                                         "(everything outside every box is taken as background)", 6000)
            return
        box = Box(self.current_image_id, cls.id, *xyxy)
        self._push(AddBox(self.project.store, box, cls.name, self._on_change))

    def set_tags(self, class_ids: set[int] | None) -> None:
        if self.current_image_id is not None:
            self._push(SetTags(self.project.store, self.current_image_id, class_ids, self._on_change))

    def refresh_boxes(self) -> None:
        if self.current_image_id is None:
            return
        classes = self.project.store.classes()
        boxes = self.project.store.boxes(self.current_image_id)
        for canvas in (self.canvas, self.detection.canvas):
            canvas.boxes.set_boxes(boxes, {c.id: QColor(*c.color) for c in classes}, {c.id: c.name for c in classes})
        self.detection.canvas.boxes.set_visible(self.detection.show_truth.isChecked())

    def refresh_tags(self) -> None:
        image_id = self.current_image_id
        tags = None if image_id is None else self.project.store.tags(image_id)
        self.tags_panel.show_tags(self.project.store.classes(), tags, enabled=image_id is not None)

    def refresh_marks(self) -> None:
        if self.current_image_id is None:
            return
        self.canvas.seeds.set_colors(self.class_colors())
        self.canvas.seeds.set_labels(self.project.store.seed_map(self.current_image_id))

    def accept_prediction(self, min_confidence: float) -> None:
        preview = self.previews.get(self.current_image_id)
        if preview is None:
            QMessageBox.information(self, "Accept prediction", "There is no prediction for this image yet: train first.")
            return
        store = self.project.store
        marked = store.seed_map(self.current_image_id) != UNLABELED
        strokes = prediction_strokes(preview, store.image(self.current_image_id), store.classes(), marked,
                                     min_confidence, self.toolbar.network_only())
        if strokes:
            what = "prediction" if not min_confidence else f"confident prediction (p ≥ {min_confidence})"
            self._push(AddStrokes(store, strokes, self._on_change, f"accept {what}"))

    # ---- image and prediction ---------------------------------------------------------------------------------
    def show_image(self, image_id: int) -> None:
        project = self.project
        rec = project.store.image(image_id)
        try:
            if rec.width * rec.height > CANVAS_MAX_PIXELS:
                raise ImageLoadError(project.image_path(rec), too_large_to_show(rec.width, rec.height))
            image = project.load_image(rec)
        except ImageLoadError as exc:
            self.canvas.clear()
            self.detection.clear_image()
            self.current_image_id = None
            self.refresh_tags()
            moved = not project.image_path(rec).is_file()
            self.status_image.setText(f"{exc} — {LOCATE_HINT}" if moved else str(exc))
            return
        self.current_image_id = image_id
        self.canvas.set_image(image, project.store.seed_map(image_id), self.class_colors())
        self.detection.show_image(image_id, image, project.image_path(rec), image_id in done_image_ids(project.store))
        self.refresh_boxes()
        self.refresh_tags()
        if self.training is not None:
            self.training.worker.preview_image_id = image_id
        self.refresh_prediction()
        self._show_shares()
        scaled = "" if image.scale == 1 else f", shown at {image.pixels.shape[1]}×{image.pixels.shape[0]}"
        self.status_image.setText(f"{rec.path} — {rec.width}×{rec.height}{scaled}")

    def refresh_prediction(self) -> None:
        preview = self.previews.get(self.current_image_id)
        if preview is None or not self.toolbar.show_prediction.isChecked():
            self.canvas.set_prediction(None)
        else:
            heat = self.toolbar.heatmap_class()
            self.canvas.set_prediction(overlay_rgba(preview, self.class_colors(), heat, self.toolbar.network_only()))
            # A probability map is read by its shades: at a mask's see-through opacity they fade into the photo.
            opacity = self.toolbar.prediction_opacity.value() / 100
            self.canvas.prediction.setOpacity(opacity if heat is None else max(opacity, HEAT_OPACITY))
        if preview is not None:
            self.gradient_view.show_preview(preview)
        else:
            self.gradient_view.clear()

    # ---- training ---------------------------------------------------------------------------------------------
    @property
    def model_dir(self) -> Path:
        return self.project.root / "models" / "latest"

    def has_saved_model(self) -> bool:
        return (self.model_dir / "model.safetensors").is_file()

    def train(self, restart: bool = False) -> None:
        """Resume a paused run; else start one — from the network saved at the last Stop (Continue) unless
        ``restart`` or there is none."""
        if self.training is not None:
            self.training.worker.resume()
            self.training_panel.set_state("running")
            return
        try:
            config = self.training_panel.settings.config()
        except ValueError as exc:
            QMessageBox.warning(self, "Training settings", str(exc))
            return
        if not self._marks_teach_something():
            return
        if not restart and self.has_saved_model():
            config = dataclasses.replace(config, init_from=str(self.model_dir))
        worker = TrainingWorker(self.project.root, config, self.model_dir)
        worker.preview_image_id = self.current_image_id
        worker.progress.connect(self._on_progress)
        worker.failed.connect(self._on_failed)
        worker.stopped.connect(self._on_worker_stopped)  # a method of the window: runs in the GUI thread
        self.training = WorkerThread(worker, self)
        self.training_panel.reset()
        self.shares.clear()
        self._show_shares()
        self.training_panel.set_state("running")
        self.status_training.setText("starting…")
        self.training.start()

    def pause(self) -> None:
        if self.training is not None:
            self.training.worker.pause()
            self.training_panel.set_state("paused")
            self.status_training.setText("paused")

    def stop_training(self, wait: bool = False) -> None:
        if self.training is None:
            return
        self.training.worker.stop()
        self.status_training.setText("stopping…")
        if wait:
            self.training.wait(60000)
            self._on_stopped("", self.training)

    def _on_progress(self, rec: ProgressRecord) -> None:
        if self.project is None:  # a record still queued when the window closed
            return
        self.training_panel.add(rec)
        for note in rec.notes:
            self.statusBar().showMessage(note, 5000)
        self.status_training.setText(f"{rec.device} · step {rec.step} · {rec.steps_per_s:.1f} steps/s · "
                                     f"{rec.labelled_images} marked image{'s' * (rec.labelled_images != 1)}")
        self.training_panel.status.setText(
            f"step {rec.step}: loss {rec.losses['total']:.4f} (pCE {rec.losses['pce']:.4f}, "
            f"regularizer {rec.losses['reg']:.4f})" + (f", mIoU {rec.miou * 100:.1f}" if rec.miou is not None else ""))
        if rec.preview is not None:
            self.previews[rec.preview.image_id] = rec.preview
            steps, history = self.shares.setdefault(rec.preview.image_id, ([], []))
            steps.append(rec.step)
            history.append(class_shares(rec.preview.labels, len(self.project.store.classes())))
            if rec.preview.image_id == self.current_image_id:
                self.refresh_prediction()
                self._show_shares()

    def _show_shares(self) -> None:
        """The share curve of the shown image, and why a class fell back to its strokes where one did."""
        steps, history = self.shares.get(self.current_image_id, ([], []))
        hint = ""
        if history:
            seeds = self.project.store.seed_map(self.current_image_id, self.previews[self.current_image_id].labels.shape)
            stroked = class_shares(seeds, len(history[-1]))
            hint = shrink_hint([c.name for c in self.project.store.classes()], history, stroked)
        self.training_panel.show_shares(steps, history, self.class_colors(), hint)

    def _on_failed(self, message: str) -> None:
        QMessageBox.warning(self, "Training stopped", message)

    def _on_worker_stopped(self, saved: str) -> None:
        thread = next((t for t in self.findChildren(WorkerThread) if t.worker is self.sender()), None)
        if thread is not None:
            self._on_stopped(saved, thread)

    def _on_stopped(self, saved: str, thread: WorkerThread) -> None:
        """A training thread ended. Its signal may arrive after a new run started (Stop, then Continue at once):
        only the current run's end changes the window."""
        thread.wait(10000)
        if thread is not self.training:
            return
        self.training = None
        if self.project is None:  # the window closed while the worker's last signal was queued
            return
        self.training_panel.set_state("idle", saved=self.has_saved_model())
        self.status_training.setText("model saved" if saved else "not training")

    def _marks_teach_something(self) -> bool:
        """Strokes of a single class (and no boxes or tags) teach a network nothing but that class: say so, and
        let the user train anyway (to watch what happens) or go back and mark another class."""
        classes = self.project.store.marked_classes()
        if len(classes) != 1:
            return True
        answer = QMessageBox.question(
            self, "Train", f"All your marks are of one class, {classes[0]}. A network learns to tell classes apart "
                           "only from marks of at least two (a few strokes of the background too, for example).\n\n"
                           "Train anyway?")
        return answer == QMessageBox.StandardButton.Yes

    # ---- export -----------------------------------------------------------------------------------------------
    def _ensure_model(self) -> bool:
        if self.training is not None:
            answer = QMessageBox.question(self, "Export", "Training is running. Stop it and export what it learnt?")
            if answer != QMessageBox.StandardButton.Yes:
                return False
            self.stop_training(wait=True)
        if not (self.model_dir / "model.safetensors").is_file():
            QMessageBox.information(self, "Export", "There is no trained model yet: press Train first.")
            return False
        return True

    def export_masks(self) -> None:
        if not self._ensure_model():
            return
        folder = QFileDialog.getExistingDirectory(self, "Export masks (VOC palette PNGs) into folder", self._dialog_dir())
        if not folder or not self._claim(Path(folder), "export"):
            return
        dialog = QProgressDialog("Predicting and writing masks…", "Cancel", 0, 0, self)
        dialog.setWindowModality(Qt.WindowModality.WindowModal)
        dialog.setMinimumDuration(0)
        job = ExportMasksJob(self.project.root, self.model_dir, Path(folder), self)
        job.progress.connect(lambda d, t: (dialog.setMaximum(t), dialog.setValue(d)))
        dialog.canceled.connect(job.requestInterruption)
        job.done.connect(lambda msg: (dialog.close(), QMessageBox.information(self, "Export done", msg)))
        job.failed.connect(lambda msg: (dialog.close(), QMessageBox.warning(self, "Export", msg)))
        self._export_job = job
        job.start()

    def export_model(self) -> None:
        if not self._ensure_model():
            return
        folder = QFileDialog.getExistingDirectory(self, "Export the trained model (safetensors + JSON) into folder", self._dialog_dir())
        if not folder or not self._claim(Path(folder), "model", ("model.safetensors",)):
            return
        try:
            for name in ("model.safetensors", "model.json"):
                write_atomic(Path(folder) / name, lambda p, src=self.model_dir / name: shutil.copyfile(src, p))
        except OSError as exc:
            QMessageBox.warning(self, "Export model", f"Cannot write to {folder}: {exc.strerror or exc}")
            return
        self.statusBar().showMessage(f"model exported to {folder}", 5000)

    def _dialog_dir(self) -> str:
        """Where file dialogs open: beside the project, where its images and exports usually live (Qt's default
        is the directory the app was started from)."""
        return str(self.project.root.parent) if self.project is not None else ""

    def _claim(self, folder: Path, kind: str, signatures: tuple[str, ...] = ()) -> bool:
        """Whether ``folder`` may take an export: new, empty, or an earlier export of the same kind; else the
        user is told why not, and nothing is written."""
        try:
            claim_output(folder, kind, signatures)
        except OutputFolderError as exc:
            QMessageBox.warning(self, "Export", str(exc))
            return False
        return True

    # ---- closing ----------------------------------------------------------------------------------------------
    def closeEvent(self, event) -> None:
        """Stop training cleanly (the worker finishes its step and saves the model) before the window goes."""
        self.stop_training(wait=True)
        self.detection.shutdown()
        self.generative.shutdown()
        self.image_list.stop_loading()
        if self.project is not None:
            self.project.close()
            self.project = None
        super().closeEvent(event)


HEAT_OPACITY = 0.85
"""least opacity of a P(class) heat map over the photo"""


def _unique(keys: list[QKeySequence]) -> list[QKeySequence]:
    """Each key sequence once: a sequence bound twice to one action makes Qt call the shortcut ambiguous and
    ignore it (the platform's standard Redo is often Ctrl+Shift+Z itself)."""
    out: list[QKeySequence] = []
    for key in keys:
        if not key.isEmpty() and key not in out:
            out.append(key)
    return out
