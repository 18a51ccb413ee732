"""A label that shows a small uint8 image grid enlarged by pixel replication (whole multiples where there is room
for two or more), so 16-64 px samples stay crisp at any window size instead of being blurred by smooth scaling."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy


def to_qimage(rgb: np.ndarray) -> QImage:
    """(H, W, 3) uint8 to a QImage that owns its pixels (the array may be freed afterwards)."""
    rgb = np.ascontiguousarray(rgb)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class GridView(QLabel):
    """Holds the array it shows (``array``) and rescales it whenever the label is resized."""

    def __init__(self, placeholder: str = "", min_side: int = 96, parent=None) -> None:
        super().__init__(placeholder, parent)
        self.placeholder = placeholder
        self.array: np.ndarray | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setWordWrap(True)
        self.setMinimumSize(min_side, min_side)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setStyleSheet("QLabel { background: #202124; color: #9aa0a6; }")

    def set_array(self, rgb: np.ndarray | None) -> None:
        self.array = None if rgb is None else np.ascontiguousarray(rgb)
        self._rescale()

    def clear_image(self, placeholder: str | None = None) -> None:
        if placeholder is not None:
            self.placeholder = placeholder
        self.set_array(None)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._rescale()

    def _rescale(self) -> None:
        if self.array is None:
            self.setPixmap(QPixmap())
            self.setText(self.placeholder)
            return
        h, w = self.array.shape[:2]
        pixmap = QPixmap.fromImage(to_qimage(self.array))
        scale = min(self.width() / w, self.height() / h)
        if scale >= 2:  # whole multiples, so every source pixel becomes the same square
            pixmap = pixmap.scaled(w * int(scale), h * int(scale), Qt.AspectRatioMode.IgnoreAspectRatio,
                                   Qt.TransformationMode.FastTransformation)
        elif scale >= 1:  # below 2 a whole multiple would waste up to half the room: unequal squares instead
            pixmap = pixmap.scaled(self.width(), self.height(), Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.FastTransformation)
        else:
            pixmap = pixmap.scaled(self.width(), self.height(), Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
        self.setPixmap(pixmap)
