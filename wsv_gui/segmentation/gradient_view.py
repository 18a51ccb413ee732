"""What drives the network, for one class, next to the current prediction: the regularizer's gradient or the
class's probability map.

* ∂R/∂S_k: blue where the regularizer pushes class k's probability up (negative gradient), red where it pushes
  it down, white where it is indifferent, on a colour scale symmetric about zero — as in the lecture figure of
  the dense CRF loss.
* P(class): class k's softmax probability at every pixel (not a class activation map in Zhou et al.'s sense:
  a fully convolutional net scores every pixel itself); the contour encloses the top-ρ share of pixels whose mean is the image-level score
  the tag loss pools, i.e. exactly where the network looks when it decides whether the image shows class k.

Both come from the trainer's latest preview of the image on the canvas.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QVBoxLayout, QWidget

from engine.losses.tags import TOP_FRACTION
from engine.training.records import Preview

GRADIENT, PROBABILITY = "∂R/∂S", "P(class)"


def top_fraction_score(prob: np.ndarray, fraction: float = TOP_FRACTION) -> tuple[float, float]:
    """(threshold, score): the probability above which the top ``fraction`` of pixels lie, and their mean —
    the same pooled image score as ``engine.losses.tags.pooled_scores``."""
    flat = np.sort(prob.astype(np.float32).ravel())[::-1]
    n = max(1, int(round(flat.size * fraction)))
    return float(flat[n - 1]), float(flat[:n].mean())


class GradientView(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        row = QHBoxLayout()
        self.mode_box = QComboBox()
        self.mode_box.addItems([GRADIENT, PROBABILITY])
        self.mode_box.setToolTip("∂R/∂S: where the regularizer pushes the class's probability; "
                                 "P(class): the network's softmax probability of the class at each pixel")
        self.mode_box.currentIndexChanged.connect(lambda _: self._draw())
        row.addWidget(self.mode_box)
        row.addWidget(QLabel("for class"))
        self.class_box = QComboBox()
        self.class_box.currentIndexChanged.connect(lambda _: self._draw())
        row.addWidget(self.class_box, 1)
        layout.addLayout(row)
        self.graphics = pg.GraphicsLayoutWidget()
        # Stacked, map first: photos are wider than tall and the panel is narrow, so side by side each would get
        # a strip of it.
        self.map_box = self.graphics.addViewBox(row=0, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.pred_box = self.graphics.addViewBox(row=1, col=0, lockAspect=True, invertY=True, enableMouse=False)
        self.pred_item = pg.ImageItem(axisOrder="row-major")
        self.map_item = pg.ImageItem(axisOrder="row-major")
        self.contour = pg.IsocurveItem(pen=pg.mkPen((80, 255, 120), width=2), axisOrder="row-major")
        self.contour.setParentItem(self.map_item)
        self.pred_box.addItem(self.pred_item)
        self.map_box.addItem(self.map_item)
        self.colorbar = pg.ColorBarItem(colorMap=pg.colormap.get("CET-D1"), interactive=False, width=12)
        self.colorbar.setImageItem(self.map_item)
        self.graphics.addItem(self.colorbar, row=0, col=1, rowspan=2)
        self.graphics.ci.layout.setRowStretchFactor(0, 3)
        self.graphics.ci.layout.setRowStretchFactor(1, 2)
        layout.addWidget(self.graphics, 1)
        self.caption = QLabel()
        self.caption.setWordWrap(True)
        layout.addWidget(self.caption)
        self._preview: Preview | None = None
        self._colors = np.zeros((0, 3), np.uint8)
        self.clear()

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
        self.map_item.clear()
        self.contour.setData(None)
        self.caption.setText("Train to see where the regularizer pushes the prediction (∂R/∂S) and where the "
                             "network finds each class (P(class)).")

    def show_preview(self, preview: Preview) -> None:
        self._preview = preview
        self._draw()

    def _draw(self) -> None:
        p = self._preview
        k = self.class_box.currentIndex()
        if p is None or k < 0 or k >= p.probs.shape[0]:
            return
        lut = np.zeros((256, 3), np.uint8)
        lut[: len(self._colors)] = self._colors
        self.pred_item.setImage(lut[p.labels], autoLevels=False, levels=(0, 255))
        name = self.class_box.currentText()
        if self.mode_box.currentText() == PROBABILITY:
            self._draw_probability(p.probs[k].astype(np.float32), name)
        else:
            self._draw_gradient(p, k, name)

    def _draw_gradient(self, p: Preview, k: int, name: str) -> None:
        self.contour.setData(None)
        self.colorbar.setColorMap(pg.colormap.get("CET-D1"))
        if p.reg_gradient is None or k >= p.reg_gradient.shape[0]:
            self.map_item.clear()
            self.caption.setText("No regularizer is active: the gradient is zero.")
            return
        g = p.reg_gradient[k]
        bound = float(np.percentile(np.abs(g), 99.5)) or 1e-12
        self.colorbar.setLevels((-bound, bound))
        self.map_item.setImage(g, autoLevels=False, levels=(-bound, bound))
        self.caption.setText(f"top: ∂R/∂S for '{name}', below: the prediction "
                             f"(blue: raise, red: lower; scale ±{bound:.2e})")

    def _draw_probability(self, prob: np.ndarray, name: str) -> None:
        self.colorbar.setColorMap(pg.colormap.get("inferno"))
        self.colorbar.setLevels((0.0, 1.0))
        self.map_item.setImage(prob, autoLevels=False, levels=(0.0, 1.0))
        threshold, score = top_fraction_score(prob)
        self.contour.setData(prob, threshold)
        self.caption.setText(f"top: P({name}), the softmax probability, below: the prediction; the green line "
                             f"encloses its top {TOP_FRACTION:.0%} pixels, whose mean {score:.2f} is the image-level "
                             f"score for '{name}'")
