"""The main window: images, classes and tags on the left, the tabs (wsv_gui.tabs) in the middle, status bar
below. It owns the project's store connection (GUI thread), the undo stack and the marks commands, and tells
every tab what happened through the tab contract (wsv_gui.tab)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QSettings, Qt
from PySide6.QtGui import QColor, QKeySequence, QShortcut, QUndoStack
from PySide6.QtWidgets import QColorDialog, QComboBox, QDockWidget, QFileDialog, QInputDialog, QLabel, \
    QMainWindow, QMessageBox, QProgressDialog, QTabWidget, QVBoxLayout, QWidget

from engine.annotations.store import StoreError
from engine.annotations.types import Box, ClassDef, ImageRecord, Stroke, background_index
from engine.datasets.importer import import_dataset
from engine.errors import UserError
from engine.formats import FORMATS
from engine.io.images import ImageLoadError
from engine.io.outputs import OutputFolderError, claim_output
from engine.project import Project
from wsv_gui.class_panel import ClassPanel
from wsv_gui.commands import AddBox, AddClass, AddStrokes, DeleteBox, DeleteClass, EditClass, MoveBox, \
    ReorderClasses, SetTags
from wsv_gui.image_list import CANVAS_MAX_PIXELS, ImageList, too_large_to_show
from wsv_gui.tab import Menus, ShownImage, menu_action
from wsv_gui.tabs import TABS
from wsv_gui.tags_panel import TagsPanel

MAX_RECENT = 8
IMAGE_ORDERS = ("In project order", "Most in need of marks first")
LOCATE_HINT = "File ▸ Locate Missing Images… finds moved images"


class MainWindow(QMainWindow):
    def __init__(self, project: Project) -> None:
        super().__init__()
        self.project: Project | None = None
        self.current_image_id: int | None = None
        self.undo_stack = QUndoStack(self)
        self.resize(1440, 900)

        self.status_image = QLabel()
        self.status_training = QLabel("not training")
        self.status_saved = QLabel()
        self.status_zoom = QLabel()
        self.statusBar().addWidget(self.status_image, 1)
        for w in (self.status_training, self.status_saved, self.status_zoom):
            self.statusBar().addPermanentWidget(w)

        self.tabs = QTabWidget()
        self.pages = [tab(self) for tab in TABS]
        for page in self.pages:
            self.tabs.addTab(page, page.title)
            setattr(self, page.key, page)
        self.setCentralWidget(self.tabs)

        self.image_list = ImageList()
        self.image_list.imageSelected.connect(self.show_image)
        self.image_list.setMinimumWidth(210)
        self.image_order = QComboBox()
        self.image_order.addItems(IMAGE_ORDERS)
        self.image_order.setToolTip("Most in need of marks first: the images the network is least sure about, as "
                                    "scored while it trains (S jumps to the next one)")
        self.image_order.currentIndexChanged.connect(lambda i: self.image_list.order(by_need=i == 1))
        images = QWidget()
        column = QVBoxLayout(images)
        column.setContentsMargins(0, 0, 0, 0)
        column.addWidget(self.image_order)
        column.addWidget(self.image_list, 1)
        images_dock = self._dock("Images", images, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.class_panel = ClassPanel()
        classes_dock = self._dock("Classes", self.class_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.tags_panel = TagsPanel()
        tags_dock = self._dock("Tags", self.tags_panel, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.splitDockWidget(images_dock, classes_dock, Qt.Orientation.Vertical)
        self.splitDockWidget(classes_dock, tags_dock, Qt.Orientation.Vertical)
        self.resizeDocks([images_dock, classes_dock, tags_dock], [520, 200, 160], Qt.Orientation.Vertical)
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
        self.tags_panel.tagsChanged.connect(self.set_tags)
        self.class_panel.classSelected.connect(self._class_selected)
        self.class_panel.addRequested.connect(self.add_class)
        self.class_panel.renameRequested.connect(self.rename_class)
        self.class_panel.recolorRequested.connect(self.recolor_class)
        self.class_panel.moveRequested.connect(self.move_class)
        self.class_panel.deleteRequested.connect(self.delete_class)

    def _build_menus(self) -> None:
        file = self.menuBar().addMenu("&File")
        menu_action(self, file, "Open &Folder of Images…", self.open_folder_dialog, QKeySequence.StandardKey.Open)
        menu_action(self, file, "Open &Project…", self.open_project_dialog, "Ctrl+Shift+O")
        self.recent_menu = file.addMenu("&Recent Projects")
        menu_action(self, file, "&Locate Missing Images…", self.locate_missing_images)
        menu_action(self, file, "&Import Annotations…", self.import_annotations)
        file.addSeparator()
        edit = self.menuBar().addMenu("&Edit")
        undo = self.undo_stack.createUndoAction(self, "&Undo")
        undo.setShortcut(QKeySequence.StandardKey.Undo)
        redo = self.undo_stack.createRedoAction(self, "&Redo")
        redo.setShortcuts(_unique([QKeySequence("Ctrl+Shift+Z"), QKeySequence("Ctrl+Y"),
                                   *QKeySequence.keyBindings(QKeySequence.StandardKey.Redo)]))
        edit.addAction(undo)
        edit.addAction(redo)
        edit.addSeparator()
        view = self.menuBar().addMenu("&View")
        menus = Menus(file, edit, view, self.menuBar())
        for page in self.pages:
            page.add_menus(menus)
        file.addSeparator()
        menu_action(self, file, "&Quit", self.close, QKeySequence.StandardKey.Quit)
        for i in range(9):
            QShortcut(QKeySequence(str(i + 1)), self, activated=lambda i=i: self.class_panel.select_index(i))

    # ---- project ----------------------------------------------------------------------------------------------
    def set_project(self, project: Project) -> None:
        for page in self.pages:  # each stops what belongs to the old project first
            page.set_project(project)
        if self.project is not None:
            self.image_list.stop_loading()
            self.project.close()
        self.project = project
        self.current_image_id = None
        self.undo_stack.clear()
        self.setWindowTitle(project.root.name)  # Qt appends " — WSV Studio", the application's display name
        self._remember(project.root)
        self._refresh_classes()
        records = self._populate_images()
        if records:
            self.image_list.select(records[0].id)
        else:
            self.status_image.setText("This project has no images yet: File ▸ Open Folder of Images…")
        self.status_saved.setText("all marks saved")
        missing = project.missing_images(records)
        if missing:
            self.status_image.setText(f"{len(missing)} of {len(records)} images are not where the project refers to "
                                      f"them: {LOCATE_HINT}")

    def _populate_images(self) -> list[ImageRecord]:
        records = self.project.store.images()
        self.image_list.populate(records, self.project.image_path, self.project.store.mark_counts())
        self.image_order.blockSignals(True)  # a new list starts in project order, with no scores yet
        self.image_order.setCurrentIndex(0)
        self.image_order.blockSignals(False)
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
            chosen = QFileDialog.getExistingDirectory(self, f"Where are the {len(missing)} missing images now?", self.dialog_dir())
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
        folder = QFileDialog.getExistingDirectory(self, "Open WSV Studio project", self.dialog_dir())
        if folder:
            self._open_path(Path(folder))

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images", self.dialog_dir())
        if folder:
            self.open_folder(Path(folder))

    def import_annotations(self) -> None:
        """A dataset folder, COCO, labelme, VOC or YOLO annotations into a new project (or one with the same
        classes), which the window then opens; what could not be read is listed."""
        titles = {f.title: name for name, f in FORMATS.items()}
        title, ok = QInputDialog.getItem(self, "Import annotations", "Format:", list(titles), 0, False)
        if not ok:
            return
        name = titles[title]
        if name == "coco":
            source, _ = QFileDialog.getOpenFileName(self, "COCO annotations", self.dialog_dir(), "COCO JSON (*.json)")
        else:
            source = QFileDialog.getExistingDirectory(self, f"The {title} folder", self.dialog_dir())
        if not source:
            return
        target = QFileDialog.getExistingDirectory(self, "Folder of the new project", self.dialog_dir())
        if not target:
            return
        progress = QProgressDialog(f"Importing {title}…", "", 0, 0, self)
        progress.setCancelButton(None)
        progress.setMinimumDuration(500)
        try:
            dataset = FORMATS[name].read(Path(source), None)
            project, report = import_dataset(dataset, Path(target),
                                             on_progress=lambda d, t: (progress.setMaximum(t), progress.setValue(d)))
        except UserError as exc:
            QMessageBox.warning(self, "Import annotations", str(exc))
            return
        finally:
            progress.close()
        if report.errors:
            QMessageBox.warning(self, "Some files were skipped", f"{len(report.errors)} could not be imported:\n\n"
                                + "\n".join(report.errors[:20]))
        self.set_project(project)

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

    def current_class(self) -> ClassDef | None:
        return self.class_panel.current_class()

    def _refresh_classes(self) -> None:
        classes = self.project.store.classes()
        self.class_panel.set_classes(classes)
        for page in self.pages:
            page.classes_changed(classes)
        self.refresh_tags()

    def _class_selected(self, class_id: int) -> None:
        cls = self.class_panel.current_class()
        if cls is not None:
            for page in self.pages:
                page.class_selected(cls)

    def on_change(self, kind: str, detail) -> None:
        """Called by undo commands after they changed the store (or failed to: kind "error"); every tab hears
        of it (wsv_gui.tab)."""
        if kind == "error":
            self.refresh_tags()  # what the store holds, without the change that failed
            for page in self.pages:
                page.marks_changed(kind, detail)
            self.status_saved.setText("NOT SAVED")
            QMessageBox.warning(self, "Not saved", f"{detail}\n\nThe last change was not saved; what you see now is "
                                "what the project holds.")
            return
        if kind == "classes":
            self._refresh_classes()
        elif kind == "tags" and detail == self.current_image_id:
            self.refresh_tags()
        for page in self.pages:
            page.marks_changed(kind, detail)
        self.image_list.update_counts(self.project.store.mark_counts())
        self.status_saved.setText("all marks saved")

    def add_class(self) -> None:
        name, ok = QInputDialog.getText(self, "Add class", "Name of the new class:")
        if ok and name.strip():
            self.push(AddClass(self.project.store, name.strip(), self.on_change))

    def rename_class(self, class_id: int) -> None:
        cls = next(c for c in self.project.store.classes() if c.id == class_id)
        name, ok = QInputDialog.getText(self, "Rename class", "New name:", text=cls.name)
        if ok and name.strip() and name.strip() != cls.name:
            self.push(EditClass(self.project.store, cls, self.on_change, name=name.strip()))

    def recolor_class(self, class_id: int) -> None:
        cls = next(c for c in self.project.store.classes() if c.id == class_id)
        color = QColorDialog.getColor(QColor(*cls.color), self, f"Colour of {cls.name}")
        if color.isValid():
            self.push(EditClass(self.project.store, cls, self.on_change, color=(color.red(), color.green(), color.blue())))

    def move_class(self, class_id: int, direction: int) -> None:
        order = [c.id for c in self.project.store.classes()]
        i = order.index(class_id)
        j = i + direction
        if 0 <= j < len(order):
            order[i], order[j] = order[j], order[i]
            self.push(ReorderClasses(self.project.store, order, self.on_change))

    def delete_class(self, class_id: int) -> None:
        if len(self.project.store.classes()) <= 2:
            QMessageBox.information(self, "Delete class", "A project needs at least two classes.")
            return
        self.push(DeleteClass(self.project.store, class_id, self.on_change))

    def push(self, command) -> None:
        """Do an undoable edit (wsv_gui.commands) and put it on the undo stack."""
        self.undo_stack.push(command)

    # ---- marks ------------------------------------------------------------------------------------------------
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
        self.push(AddStrokes(self.project.store, [stroke], self.on_change, "erase" if eraser else f"paint {cls.name}"))

    def add_box(self, xyxy: tuple) -> None:
        cls = self.class_panel.current_class()
        if self.current_image_id is None or cls is None:
            return
        if cls.index == background_index([c.name for c in self.project.store.classes()]):
            self.statusBar().showMessage(f"Boxes outline objects: pick an object class, not '{cls.name}' "
                                         "(everything outside every box is taken as background)", 6000)
            return
        box = Box(self.current_image_id, cls.id, *xyxy)
        self.push(AddBox(self.project.store, box, cls.name, self.on_change))

    def set_tags(self, class_ids: set[int] | None) -> None:
        if self.current_image_id is not None:
            self.push(SetTags(self.project.store, self.current_image_id, class_ids, self.on_change))

    def move_box(self, box: Box, xyxy: tuple) -> None:
        self.push(MoveBox(self.project.store, box, xyxy, self.on_change))

    def delete_box(self, box_id: int) -> None:
        self.push(DeleteBox(self.project.store, box_id, self.on_change))

    def refresh_tags(self) -> None:
        image_id = self.current_image_id
        tags = None if image_id is None else self.project.store.tags(image_id)
        self.tags_panel.show_tags(self.project.store.classes(), tags, enabled=image_id is not None)

    # ---- image ------------------------------------------------------------------------------------------------
    def show_image(self, image_id: int) -> None:
        """Load the picked image once and show it in every tab (None to each where it cannot be read)."""
        project = self.project
        rec = project.store.image(image_id)
        try:
            if rec.width * rec.height > CANVAS_MAX_PIXELS:
                raise ImageLoadError(project.image_path(rec), too_large_to_show(rec.width, rec.height))
            image = project.load_image(rec)
        except ImageLoadError as exc:
            self.current_image_id = None
            for page in self.pages:
                page.show_image(None)
            self.refresh_tags()
            moved = not project.image_path(rec).is_file()
            self.status_image.setText(f"{exc} — {LOCATE_HINT}" if moved else str(exc))
            return
        self.current_image_id = image_id
        shown = ShownImage(image_id, image, project.image_path(rec))
        for page in self.pages:
            page.show_image(shown)
        self.refresh_tags()
        scaled = "" if image.scale == 1 else f", shown at {image.pixels.shape[1]}×{image.pixels.shape[0]}"
        self.status_image.setText(f"{rec.path} — {rec.width}×{rec.height}{scaled}")

    def set_training_status(self, text: str) -> None:
        self.status_training.setText(text)

    # ---- what tabs share --------------------------------------------------------------------------------------
    def dialog_dir(self) -> str:
        """Where file dialogs open: beside the project, where its images and exports usually live (Qt's default
        is the directory the app was started from)."""
        return str(self.project.root.parent) if self.project is not None else ""

    def claim(self, folder: Path, kind: str, signatures: tuple[str, ...] = ()) -> bool:
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
        """Every tab stops its threads and keeps what was learnt before the window goes."""
        for page in self.pages:
            page.shutdown()
        self.image_list.stop_loading()
        if self.project is not None:
            self.project.close()
            self.project = None
        super().closeEvent(event)


def _unique(keys: list[QKeySequence]) -> list[QKeySequence]:
    """Each key sequence once: a sequence bound twice to one action makes Qt call the shortcut ambiguous and
    ignore it (the platform's standard Redo is often Ctrl+Shift+Z itself)."""
    out: list[QKeySequence] = []
    for key in keys:
        if not key.isEmpty() and key not in out:
            out.append(key)
    return out
