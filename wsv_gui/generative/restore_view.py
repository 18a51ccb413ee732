"""The trained DDPM as an image tool (engine.generative.restore): paint a hole over an image and let the model fill
it (RePaint), or shrink the image to half its size and let the model draw the detail back (2× super-resolution,
ILVR), beside what plain bicubic enlargement gives.

The image is a training image or any file, made square at the model's size as the training images were. The hole
is painted on an enlarged copy with the left button and rubbed out with the right. Both tools take every one of
the DDPM's T steps, so they run in the sampling service with a progress bar and can be cancelled.
"""
from __future__ import annotations

import numpy as np
import torch
from PySide6.QtCore import QPoint, QRect, Qt, Signal
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QLabel, QProgressBar, QPushButton, \
    QSizePolicy, QSpinBox, QVBoxLayout, QWidget

from engine.generative.grids import to_uint8
from wsv_gui.generative.images import GridView, to_qimage
from wsv_gui.generative.messages import RestoreRequest

HOLE_COLOUR = QColor(230, 60, 60, 140)


class HoleCanvas(QWidget):
    """One square image, enlarged by whole multiples, with the hole painted over it in red. ``hole`` is (S, S)
    bool in the image's pixels."""

    changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.image: np.ndarray | None = None
        """(S, S, 3) uint8"""
        self.hole: np.ndarray | None = None
        self.radius = 2
        self._erasing = False
        self.setMinimumSize(160, 160)
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.setToolTip("paint the hole with the left button, rub it out with the right")

    def set_image(self, rgb: np.ndarray | None) -> None:
        """A new image; the hole is kept when the size is the same, so one hole can be tried on several images."""
        if rgb is None or self.hole is None or self.hole.shape != rgb.shape[:2]:
            self.hole = None if rgb is None else np.zeros(rgb.shape[:2], bool)
        self.image = rgb
        self.update()

    def clear(self) -> None:
        if self.hole is not None:
            self.hole[:] = False
            self.update()
            self.changed.emit()

    def _frame(self) -> QRect:
        """Where the image is drawn: the largest whole multiple that fits, centred."""
        side = self.image.shape[0]
        scale = max(1, min(self.width(), self.height()) // side)
        size = side * scale
        return QRect((self.width() - size) // 2, (self.height() - size) // 2, size, size)

    def paintEvent(self, event) -> None:
        p = QPainter(self)
        p.fillRect(self.rect(), QColor("#202124"))
        if self.image is None:
            p.setPen(QColor("#9aa0a6"))
            p.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Pick an image")
            return
        frame = self._frame()
        p.drawImage(frame, to_qimage(self.image))
        overlay = np.zeros((*self.hole.shape, 4), np.uint8)
        overlay[self.hole] = HOLE_COLOUR.red(), HOLE_COLOUR.green(), HOLE_COLOUR.blue(), HOLE_COLOUR.alpha()
        h, w = self.hole.shape
        p.drawImage(frame, QImage(overlay.data, w, h, 4 * w, QImage.Format.Format_RGBA8888))

    def _paint_at(self, pos: QPoint) -> None:
        if self.image is None:
            return
        frame = self._frame()
        side = self.image.shape[0]
        x = (pos.x() - frame.x()) * side / frame.width()
        y = (pos.y() - frame.y()) * side / frame.height()
        rows, cols = np.ogrid[:side, :side]
        disc = (rows + 0.5 - y) ** 2 + (cols + 0.5 - x) ** 2 <= self.radius ** 2
        if disc.any():
            self.hole[disc] = not self._erasing
            self.update()
            self.changed.emit()

    def mousePressEvent(self, event) -> None:
        self._erasing = event.button() == Qt.MouseButton.RightButton
        self._paint_at(event.position().toPoint())

    def mouseMoveEvent(self, event) -> None:
        if event.buttons() & (Qt.MouseButton.LeftButton | Qt.MouseButton.RightButton):
            self._paint_at(event.position().toPoint())


class RestoreView(QWidget):
    restoreRequested = Signal(object)  # RestoreRequest
    cancelRequested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.images: np.ndarray | None = None
        """training images (N, C, S, S) in [−1, 1]"""
        self.image: np.ndarray | None = None
        """the image worked on, (C, S, S) in [−1, 1]"""
        self.model_shape: tuple[int, int] | None = None
        """(channels, size) of the loaded pixel-space DDPM; None where the tools cannot run"""
        self.running = False

        self.index = QSpinBox()
        self.index.setToolTip("which training image to work on")
        self.open_button = QPushButton("Open image file…")
        self.open_button.setToolTip("any image: its centred square, resized to the model's size")
        self.source_label = QLabel("")
        self.source_label.setWordWrap(True)  # a long file path must not widen the window
        self.source_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        pick = QHBoxLayout()
        pick.addWidget(QLabel("Training image"))
        pick.addWidget(self.index)
        pick.addWidget(self.open_button)
        pick.addWidget(self.source_label, 1)

        self.canvas = HoleCanvas()
        self.brush = QSpinBox()
        self.brush.setRange(1, 64)
        self.brush.setValue(2)
        self.brush.setToolTip("brush radius in the image's pixels")
        self.clear_button = QPushButton("Clear hole")
        self.resample = QSpinBox()
        self.resample.setRange(1, 50)
        self.resample.setValue(4)
        self.resample.setToolTip("RePaint's resampling: each step is taken this many times, going back one step "
                                 "with fresh noise in between, so the fill agrees better with what surrounds it "
                                 "(and takes as many times longer)")
        self.seed = QSpinBox()
        self.seed.setRange(0, 1_000_000)
        self.seed.setToolTip("the same seed gives the same result")
        self.fill_button = QPushButton("Fill the hole")
        self.upscale_button = QPushButton("2× detail")
        self.upscale_button.setToolTip("shrink the image to half its size (2 × 2 means), then let the DDPM draw "
                                       "the detail back: its result keeps those means exactly")
        tool_rows = []
        for widgets in ((("brush", self.brush), ("", self.clear_button), ("resample", self.resample),
                         ("", self.fill_button)),
                        (("seed", self.seed), ("", self.upscale_button))):
            row = QHBoxLayout()
            for label, w in widgets:
                if label:
                    row.addWidget(QLabel(label))
                row.addWidget(w)
            row.addStretch(1)
            tool_rows.append(row)

        self.progress = QProgressBar()
        self.progress.setFormat("step %v of %m")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        run_row = QHBoxLayout()
        run_row.addWidget(self.progress, 1)
        run_row.addWidget(self.cancel_button)

        left = QGroupBox("Image and hole")
        lv = QVBoxLayout(left)
        lv.addWidget(self.canvas, 1)
        right = QGroupBox("Result")
        rv = QVBoxLayout(right)
        self.result = GridView("Paint a hole and press Fill the hole, or press 2× detail.", 96)
        self.result_label = QLabel("")
        self.result_label.setWordWrap(True)
        rv.addWidget(self.result, 1)
        rv.addWidget(self.result_label)
        pictures = QHBoxLayout()
        pictures.addWidget(left, 1)
        pictures.addWidget(right, 1)

        self.status = QLabel("")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(pick)
        for row in tool_rows:
            layout.addLayout(row)
        layout.addLayout(pictures, 1)
        layout.addLayout(run_row)
        layout.addWidget(self.status)

        self.index.valueChanged.connect(self._pick_training)
        self.open_button.clicked.connect(self._open_file)
        self.brush.valueChanged.connect(lambda r: setattr(self.canvas, "radius", r))
        self.clear_button.clicked.connect(self.canvas.clear)
        self.canvas.changed.connect(self._update_buttons)
        self.fill_button.clicked.connect(lambda: self._request("inpaint"))
        self.upscale_button.clicked.connect(lambda: self._request("upscale"))
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.set_model(None)

    # ---- what is worked on ------------------------------------------------------------------------------------
    def set_images(self, images: np.ndarray) -> None:
        self.images = images
        self.index.setRange(0, max(0, len(images) - 1))
        self._pick_training()

    def _show(self, image: np.ndarray, source: str) -> None:
        self.image = image
        self.canvas.set_image(to_uint8(torch.from_numpy(image[None]))[0])
        self.source_label.setText(source)
        self._update_buttons()

    def _pick_training(self) -> None:
        if self.images is not None and len(self.images):
            i = min(self.index.value(), len(self.images) - 1)
            self._show(self.images[i], f"training image {i}")

    def _open_file(self) -> None:
        from engine.generative.data import image_tensor
        from engine.io.images import ImageLoadError

        if self.model_shape is None:
            return
        path, _ = QFileDialog.getOpenFileName(self, "Open an image", "", "Images (*.png *.jpg *.jpeg *.bmp *.tif "
                                                                         "*.tiff *.webp);;All files (*)")
        if not path:
            return
        channels, size = self.model_shape
        try:
            image, _ = image_tensor(path, size, channels)
        except ImageLoadError as exc:
            self.status.setText(f"Could not open {path}: {exc}")
            return
        self._show(image[0].numpy(), path)

    # ---- the model and the runs -------------------------------------------------------------------------------
    def set_model(self, kind: str | None, latent: bool = False, channels: int = 1, size: int = 0,
                  timesteps: int = 0) -> None:
        """The tools need a DDPM on pixels; anything else leaves them off, saying why."""
        self.model_shape = (channels, size) if kind == "ddpm" and not latent else None
        if kind is None:
            self.status.setText("Train or load a DDPM to fill holes and add detail.")
        elif kind != "ddpm":
            self.status.setText(f"Filling holes and adding detail run a DDPM's reverse process; the model is a {kind}.")
        elif latent:
            self.status.setText("This DDPM works in a VAE's latent space, where the pixels to keep have no place: "
                                "train a DDPM on pixels for these tools.")
        else:
            self.status.setText(f"Each run takes all T = {timesteps} steps of the DDPM; Fill the hole takes resample × "
                                f"{timesteps}.")
        self._update_buttons()

    def _fits(self) -> bool:
        return (self.model_shape is not None and self.image is not None
                and self.image.shape == (self.model_shape[0], self.model_shape[1], self.model_shape[1]))

    def _update_buttons(self) -> None:
        ready = self._fits() and not self.running
        hole = self.canvas.hole
        self.fill_button.setEnabled(ready and hole is not None and bool(hole.any()) and not bool(hole.all()))
        self.upscale_button.setEnabled(ready)
        self.open_button.setEnabled(self.model_shape is not None and not self.running)
        if self.model_shape is not None and self.image is not None and not self._fits():
            channels, size = self.model_shape
            self.status.setText(f"The image is {self.image.shape[0]} × {self.image.shape[1]} px × "
                                f"{self.image.shape[2]}; the model works on {channels}-channel {size} px images: "
                                "choose its training images' settings, or open a file.")

    def _request(self, task: str) -> None:
        if not self._fits():
            return
        hole = self.canvas.hole.copy() if task == "inpaint" else None
        self.running = True
        self.cancel_button.setEnabled(True)
        self.progress.setValue(0)
        self._update_buttons()
        self.status.setText("Filling the hole…" if task == "inpaint" else "Drawing the detail…")
        self.restoreRequested.emit(RestoreRequest(task, self.image.copy(), hole, self.seed.value(),
                                                  self.resample.value()))

    def show_progress(self, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)

    def finished(self, grid: np.ndarray | None, description: str) -> None:
        """A run ended: its result grid, or None with the reason it stopped."""
        self.running = False
        self.cancel_button.setEnabled(False)
        if grid is not None:
            self.result.set_array(grid)
            self.result_label.setText(description)
            self.status.setText("Done.")
        else:
            self.status.setText(f"Stopped: {description}")
        self._update_buttons()
