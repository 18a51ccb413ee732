"""The image list: thumbnails, names and how many marks each image has.

Thumbnails are decoded in a background thread, so opening a folder of thousands of photos never blocks the
window; the thread sends plain numpy arrays and the list turns them into icons on the GUI thread.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np
from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QListWidget, QListWidgetItem

from engine.annotations.store import MarkCounts
from engine.annotations.types import ImageRecord
from engine.io.images import ImageLoadError, load_image, read_image_size
from wsv_gui.convert import rgb_image
from wsv_gui.workers import Worker, WorkerThread

THUMB = 72


class Thumbnails:
    """Small copies of images, one after another: records (image id, (h, w, 3) uint8 pixels or None, the reason
    it could not be read or "")."""

    def __init__(self, items: list[tuple[int, Path]]) -> None:
        self.items = items

    def run(self) -> Iterator[tuple[int, np.ndarray | None, str]]:
        for image_id, path in self.items:
            try:
                w, h = read_image_size(path)
                if w * h > CANVAS_MAX_PIXELS:
                    raise ImageLoadError(path, too_large_to_show(w, h))
                yield image_id, load_image(path, max_side=THUMB * 2).pixels, ""
            except ImageLoadError as exc:
                yield image_id, None, str(exc)


class ThumbnailWorker(Worker):
    """Decodes the thumbnails in its thread (wsv_gui.workers); stopping ends it between two images."""

    what = "reading thumbnails"

    def __init__(self, items: list[tuple[int, Path]]) -> None:
        super().__init__()
        self.items = items

    def create(self) -> Thumbnails:
        return Thumbnails(self.items)

    def finish(self, thumbnails: Thumbnails) -> str:
        return ""


CANVAS_MAX_PIXELS = 250_000_000
"""Largest image the window decodes (16 000 × 16 000 pixels). A PNG or TIFF is decoded whole before it can be
shown smaller, which for a 30 000 × 30 000 scan means tens of seconds and gigabytes with the window frozen; such
images are named with this limit instead, and the command line (whose masks are made in bands) takes them."""


def too_large_to_show(width: int, height: int) -> str:
    return (f"{width}×{height} ({width * height / 1e6:.0f} megapixels) is too large to show here (the window "
            f"shows up to {CANVAS_MAX_PIXELS / 1e6:.0f}); downscale it, or make its mask with wsv predict")


class ImageList(QListWidget):
    imageSelected = Signal(int)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setIconSize(QSize(THUMB, THUMB))
        self.setUniformItemSizes(True)
        self.setSpacing(2)
        self._items: dict[int, QListWidgetItem] = {}
        self._loader: WorkerThread | None = None
        self.currentItemChanged.connect(self._on_current)

    def populate(self, records: list[ImageRecord], paths: dict[int, Path], counts: dict[int, MarkCounts]) -> None:
        self.stop_loading()
        self.clear()
        self._items.clear()
        placeholder = QPixmap(THUMB, THUMB)
        placeholder.fill(QColor(70, 70, 74))
        for rec in records:
            item = QListWidgetItem(QIcon(placeholder), "")
            item.setData(Qt.ItemDataRole.UserRole, rec.id)
            item.setToolTip(rec.path)
            self.addItem(item)
            self._items[rec.id] = item
            self._label(rec, counts.get(rec.id))
        self._records = {rec.id: rec for rec in records}
        self._loader = WorkerThread(ThumbnailWorker([(rec.id, paths[rec.id]) for rec in records]), self)
        self._loader.worker.progress.connect(self._on_thumb)
        self._loader.start()

    def update_counts(self, counts: dict[int, MarkCounts]) -> None:
        for image_id, c in counts.items():
            if image_id in self._records:
                self._label(self._records[image_id], c)

    def _label(self, rec: ImageRecord, counts: MarkCounts | None) -> None:
        parts = []
        if counts is not None:
            if counts.strokes:
                parts.append(f"{counts.strokes} stroke{'s' * (counts.strokes != 1)}")
            if counts.boxes:
                parts.append(f"{counts.boxes} box{'es' * (counts.boxes != 1)}")
            if counts.tagged:
                parts.append("tagged")
        marks = ", ".join(parts) if parts else "no marks"
        self._items[rec.id].setText(f"{Path(rec.path).name}\n{marks}")

    def _on_thumb(self, record: tuple[int, np.ndarray | None, str]) -> None:
        image_id, pixels, problem = record
        if image_id not in self._items:
            return
        if pixels is None:
            self._items[image_id].setToolTip(problem)
            self._items[image_id].setForeground(QColor(220, 90, 80))
            return
        pm = QPixmap.fromImage(rgb_image(pixels)).scaled(
            THUMB, THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation)
        self._items[image_id].setIcon(QIcon(pm))

    def _on_current(self, current: QListWidgetItem | None, _previous) -> None:
        if current is not None:
            self.imageSelected.emit(int(current.data(Qt.ItemDataRole.UserRole)))

    def current_id(self) -> int | None:
        item = self.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def select(self, image_id: int) -> None:
        if image_id in self._items:
            self.setCurrentItem(self._items[image_id])

    def loading_done(self) -> bool:
        return self._loader is None or self._loader.isFinished()

    def stop_loading(self) -> None:
        if self._loader is not None:
            self._loader.worker.stop()
            self._loader.wait()
            self._loader = None
