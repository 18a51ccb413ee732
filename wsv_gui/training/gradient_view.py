"""The regularizer's gradient ∂R/∂S_k for one class, next to the current prediction.

Blue where the regularizer pushes class k's probability up (negative gradient), red where it pushes it down,
white where it is indifferent, on a colour scale symmetric about zero — as in the lecture figure of the dense
CRF loss. Both images are the trainer's latest preview of the image on the canvas.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine.training.records import Preview


class GradientView(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        row.addWidget(QLabel("∂R/∂S for class"))
        self.class_box = QComboBox()
        self.class_box.currentIndexChanged.connect(lambda _: self._draw())
        row.addWidget(self.class_box, 1)
        layout.addLayout(row)
        self.graphics = pg.GraphicsLayoutWidget()
        self.pred_box = self.graphics.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.grad_box = self.graphics.addViewBox(row=0, col=1, lockAspect=True, invertY=True, enableMouse=False)
        self.pred_item = pg.ImageItem(axisOrder="row-major")
        self.grad_item = pg.ImageItem(axisOrder="row-major")
        self.pred_box.addItem(self.pred_item)
        self.grad_box.addItem(self.grad_item)
        self.colorbar = pg.ColorBarItem(colorMap=pg.colormap.get("CET-D1"), interactive=False, width=12)
        self.colorbar.setImageItem(self.grad_item)
        self.graphics.addItem(self.colorbar, row=0, col=2)
        layout.addWidget(self.graphics, 1)
        self.caption = QLabel("Train to see where the regularizer pushes the prediction.")
        self.caption.setWordWrap(True)
        layout.addWidget(self.caption)
        self._preview: Preview | None = None
        self._colors = np.zeros((0, 3), np.uint8)

    def set_classes(self, names: list[str], colors: np.ndarray) -> None:
        current = self.class_box.currentIndex()
        self.class_box.blockSignals(True)
        self.class_box.clear()
        self.class_box.addItems(names)
        self.class_box.setCurrentIndex(min(max(current, 1 if len(names) > 1 else 0), len(names) - 1))
        self.class_box.blockSignals(False)
        self._colors = colors
        self._draw()

    def clear(self) -> None:
        self._preview = None
        self.pred_item.clear()
        self.grad_item.clear()
        self.caption.setText("Train to see where the regularizer pushes the prediction.")

    def show_preview(self, preview: Preview) -> None:
        self._preview = preview
        self._draw()

    def _draw(self) -> None:
        p = self._preview
        k = self.class_box.currentIndex()
        if p is None or k < 0:
            return
        lut = np.zeros((256, 3), np.uint8)
        lut[: len(self._colors)] = self._colors
        self.pred_item.setImage(lut[p.labels], autoLevels=False, levels=(0, 255))
        if p.reg_gradient is None or k >= p.reg_gradient.shape[0]:
            self.grad_item.clear()
            self.caption.setText("No regularizer is active: the gradient is zero.")
            return
        g = p.reg_gradient[k]
        bound = float(np.percentile(np.abs(g), 99.5)) or 1e-12
        self.colorbar.setLevels((-bound, bound))
        self.grad_item.setImage(g, autoLevels=False, levels=(-bound, bound))
        self.caption.setText(f"left: prediction; right: ∂R/∂S for '{self.class_box.currentText()}' "
                             f"(blue: raise, red: lower; scale ±{bound:.2e})")
