"""The image list: thumbnails, names and how many marks each image has.

A model/view list: only the rows on screen are drawn, and a thumbnail is decoded (in a background thread, which
sends plain numpy arrays the list turns into icons on the GUI thread) the first time its row is drawn, so a
project of 100 000 images opens at once and never decodes what nobody scrolled to.
"""
from __future__ import annotations

import queue
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from PySide6.QtCore import QAbstractListModel, QModelIndex, QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QAbstractItemView, QListView

from engine.annotations.store import MarkCounts
from engine.annotations.types import ImageRecord
from engine.io.images import ImageLoadError, load_image, read_image_size
from wsv_gui.convert import rgb_image
from wsv_gui.workers import Worker, WorkerThread

THUMB = 72


class Thumbnails:
    """Small copies of the images the list asks for, newest request first (the rows on screen now, not the ones
    scrolled past): records (image id, (h, w, 3) uint8 pixels or None, the reason it could not be read or "").
    ``None`` in the request stack ends the run."""

    def __init__(self, requests: queue.LifoQueue) -> None:
        self.requests = requests

    def run(self) -> Iterator[tuple[int, np.ndarray | None, str]]:
        while (request := self.requests.get()) is not None:
            image_id, path = request
            try:
                w, h = read_image_size(path)
                if w * h > CANVAS_MAX_PIXELS:
                    raise ImageLoadError(path, too_large_to_show(w, h))
                yield image_id, load_image(path, max_side=THUMB * 2).pixels, ""
            except ImageLoadError as exc:
                yield image_id, None, str(exc)


class ThumbnailWorker(Worker):
    """Decodes the thumbnails in its thread (wsv_gui.workers) as the list asks for them."""

    what = "reading thumbnails"

    def __init__(self, requests: queue.LifoQueue) -> None:
        super().__init__()
        self.requests = requests

    def create(self) -> Thumbnails:
        return Thumbnails(self.requests)

    def finish(self, thumbnails: Thumbnails) -> str:
        return ""


CANVAS_MAX_PIXELS = 250_000_000
"""Largest image the window decodes (16 000 × 16 000 pixels). A PNG or TIFF is decoded whole before it can be
shown smaller, which for a 30 000 × 30 000 scan means tens of seconds and gigabytes with the window frozen; such
images are named with this limit instead, and the command line (whose masks are made in bands) takes them."""


def too_large_to_show(width: int, height: int) -> str:
    return (f"{width}×{height} ({width * height / 1e6:.0f} megapixels) is too large to show here (the window "
            f"shows up to {CANVAS_MAX_PIXELS / 1e6:.0f}); downscale it, or make its mask with wsv predict")


def marks_text(counts: MarkCounts | None) -> str:
    parts = []
    if counts is not None:
        if counts.strokes:
            parts.append(f"{counts.strokes} stroke{'s' * (counts.strokes != 1)}")
        if counts.boxes:
            parts.append(f"{counts.boxes} box{'es' * (counts.boxes != 1)}")
        if counts.tagged:
            parts.append("tagged")
    return ", ".join(parts) if parts else "no marks"


class ImageModel(QAbstractListModel):
    """The project's images as rows: name and marks, a thumbnail once decoded. A row's thumbnail is asked for
    the first time the view draws the row, so a project of 100 000 images decodes only what is scrolled to."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.records: list[ImageRecord] = []
        self.rows: dict[int, int] = {}
        self.counts: dict[int, MarkCounts] = {}
        self.scores: dict[int, float] = {}
        """image id -> needs-marks score from the live network (engine.suggest), for the images scored so far"""
        self.icons: dict[int, QIcon] = {}
        self.problems: dict[int, str] = {}
        self.asked: set[int] = set()
        self.path_of: Callable[[ImageRecord], Path] = lambda rec: Path(rec.path)
        self.requests: queue.LifoQueue | None = None
        placeholder = QPixmap(THUMB, THUMB)
        placeholder.fill(QColor(70, 70, 74))
        self.placeholder = QIcon(placeholder)

    def reset(self, records: list[ImageRecord], path_of: Callable[[ImageRecord], Path],
              counts: dict[int, MarkCounts], requests: queue.LifoQueue) -> None:
        self.beginResetModel()
        self.records, self.path_of, self.counts, self.requests = records, path_of, counts, requests
        self.rows = {rec.id: i for i, rec in enumerate(records)}
        self.icons, self.problems, self.asked, self.scores = {}, {}, set(), {}
        self.endResetModel()

    def order(self, by_need: bool) -> None:
        """Rows in project order, or the images that need marks most first (unscored ones after the scored, in
        project order)."""
        self.beginResetModel()
        self.records.sort(key=lambda rec: (-self.scores.get(rec.id, -1.0), rec.id) if by_need else rec.id)
        self.rows = {rec.id: i for i, rec in enumerate(self.records)}
        self.endResetModel()

    def rowCount(self, parent=QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.records)

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid():
            return None
        rec = self.records[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            score = self.scores.get(rec.id)
            need = "" if score is None else f" · needs marks {score:.0%}"
            return f"{Path(rec.path).name}\n{marks_text(self.counts.get(rec.id))}{need}"
        if role == Qt.ItemDataRole.DecorationRole:
            if rec.id not in self.asked and self.requests is not None:
                self.asked.add(rec.id)
                self.requests.put((rec.id, self.path_of(rec)))
            return self.icons.get(rec.id, self.placeholder)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.problems.get(rec.id, rec.path)
        if role == Qt.ItemDataRole.ForegroundRole and rec.id in self.problems:
            return QColor(220, 90, 80)
        if role == Qt.ItemDataRole.UserRole:
            return rec.id
        return None

    def changed(self, image_id: int) -> None:
        index = self.index(self.rows[image_id])
        self.dataChanged.emit(index, index)


class ImageList(QListView):
    imageSelected = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setUniformItemSizes(True)
        self.setSpacing(2)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.list_model = ImageModel(self)
        self.setModel(self.list_model)
        self._loader: WorkerThread | None = None
        self.selectionModel().currentChanged.connect(self._on_current)

    def populate(self, records: list[ImageRecord], path_of: Callable[[ImageRecord], Path],
                 counts: dict[int, MarkCounts]) -> None:
        """Show these images; ``path_of`` finds an image's file when its thumbnail is first needed."""
        self.stop_loading()
        requests: queue.LifoQueue = queue.LifoQueue()
        self.list_model.reset(records, path_of, counts, requests)
        self._loader = WorkerThread(ThumbnailWorker(requests), self)
        self._loader.worker.progress.connect(self._on_thumb)
        self._loader.start()

    def count(self) -> int:
        return self.list_model.rowCount()

    def text(self, row: int) -> str:
        return self.list_model.data(self.list_model.index(row))

    def update_counts(self, counts: dict[int, MarkCounts]) -> None:
        model = self.list_model
        changed = [i for i, c in counts.items() if i in model.rows and model.counts.get(i) != c]
        model.counts = counts
        for image_id in changed:
            model.changed(image_id)

    def update_scores(self, scores: dict[int, float]) -> None:
        model = self.list_model
        model.scores.update(scores)
        for image_id in scores:
            if image_id in model.rows:
                model.changed(image_id)

    def order(self, by_need: bool) -> None:
        """Re-sort the rows (engine scores are kept), keeping the current image selected and in view."""
        current = self.current_id()
        self.blockSignals(True)  # the same image stays current: nothing to show again
        try:
            self.list_model.order(by_need)
            if current is not None:
                self.select(current)
        finally:
            self.blockSignals(False)
        self.scrollTo(self.currentIndex())

    def most_in_need(self, exclude: set[int]) -> int | None:
        """The scored image with the highest needs-marks score outside ``exclude``; None where there is none."""
        scores = self.list_model.scores
        candidates = [i for i in scores if i not in exclude and i in self.list_model.rows]
        return max(candidates, key=lambda i: (scores[i], -i)) if candidates else None

    def _on_thumb(self, record: tuple[int, np.ndarray | None, str]) -> None:
        image_id, pixels, problem = record
        model = self.list_model
        if image_id not in model.rows:
            return
        if pixels is None:
            model.problems[image_id] = problem
        else:
            model.icons[image_id] = QIcon(QPixmap.fromImage(rgb_image(pixels)).scaled(
                THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
        model.changed(image_id)

    def _on_current(self, current: QModelIndex, _previous) -> None:
        if current.isValid():
            self.imageSelected.emit(int(current.data(Qt.ItemDataRole.UserRole)))

    def current_id(self) -> int | None:
        index = self.currentIndex()
        return int(index.data(Qt.ItemDataRole.UserRole)) if index.isValid() else None

    def select(self, image_id: int) -> None:
        row = self.list_model.rows.get(image_id)
        if row is not None:
            self.setCurrentIndex(self.list_model.index(row))

    def select_row(self, row: int) -> None:
        self.setCurrentIndex(self.list_model.index(row))

    def thumbnails_pending(self) -> int:
        """Thumbnails asked for and not decoded yet."""
        model = self.list_model
        return len(model.asked) - len(model.icons) - len(model.problems)

    def loading_done(self) -> bool:
        """Every thumbnail the list has asked for so far is decoded (or known unreadable)."""
        return self._loader is None or self.thumbnails_pending() <= 0

    def stop_loading(self) -> None:
        if self._loader is not None:
            self.list_model.requests.put(None)
            self._loader.worker.stop()
            self._loader.wait()
            self._loader = None
