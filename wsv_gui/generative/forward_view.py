"""The DDPM forward process on one training image: x_t ~ q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) for the t on
the slider, next to the schedule (β_t and ᾱ_t) with a marker at t.

It needs no trained model, only the schedule of the settings (or of the loaded DDPM), and is computed on the GUI
thread: one small image through one closed-form step costs microseconds. Each image keeps one fixed noise draw ε,
so moving the slider shows the same image sinking into the same noise.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSlider, QSpinBox, QVBoxLayout, QWidget

from engine.generative.diffusion import Schedule, make_schedule, q_sample
from engine.generative.grids import to_uint8
from wsv_gui.generative.images import GridView


class ForwardView(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.images: np.ndarray | None = None
        self.schedule: Schedule = make_schedule("linear", 1000)
        self.shown: np.ndarray | None = None
        """(S, S, 3) uint8 x_t on screen"""

        self.index = QSpinBox()
        self.index.setToolTip("which training image to noise")
        self.t = QSlider(Qt.Orientation.Horizontal)
        self.t.setToolTip("t = 0 is the clean image x_0; t = T is (almost) pure noise")
        self.t_label = QLabel()
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Training image"))
        controls.addWidget(self.index)
        controls.addWidget(QLabel("t"))
        controls.addWidget(self.t, 1)

        self.x0_view = GridView("x₀", 64)
        self.xt_view = GridView("x_t", 64)
        pictures = QHBoxLayout()
        for title, view in (("x₀ (clean)", self.x0_view), ("x_t ~ q(x_t | x₀)", self.xt_view)):
            box = QVBoxLayout()
            box.addWidget(QLabel(title))
            box.addWidget(view, 1)
            pictures.addLayout(box, 1)
        self.plot = pg.PlotWidget(title="schedule")
        self.plot.setLabel("bottom", "t")
        self.plot.addLegend(offset=(-5, 5))
        self.alpha_curve = self.plot.plot(pen=pg.mkPen((80, 160, 240), width=2), name="ᾱ_t (signal² kept)")
        self.beta_curve = self.plot.plot(pen=pg.mkPen((240, 150, 60), width=2), name="β_t ÷ max β")
        self.marker = pg.InfiniteLine(0, pen=pg.mkPen((235, 235, 235), style=Qt.PenStyle.DashLine))
        self.plot.addItem(self.marker)
        pictures.addWidget(self.plot, 2)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.t_label)
        layout.addLayout(pictures, 1)
        self.index.valueChanged.connect(self.redraw)
        self.t.valueChanged.connect(self.redraw)
        self.set_schedule("linear", 1000)

    def set_schedule(self, kind: str, T: int) -> None:
        self.schedule = make_schedule(kind, T)
        at_end = self.t.value() == self.t.maximum()
        self.t.setRange(0, T)
        if at_end:
            self.t.setValue(T)
        steps = np.arange(1, T + 1)
        betas = self.schedule.betas.numpy()
        self.alpha_curve.setData(steps, self.schedule.alpha_bars.numpy())
        self.beta_curve.setData(steps, betas / betas.max())
        self.plot.setTitle(f"{kind} schedule, T = {T} (β_t ÷ {betas.max():.3g})")
        self.redraw()

    def set_images(self, images: np.ndarray) -> None:
        """Training images (N, C, S, S) in [−1, 1]."""
        self.images = images
        self.index.setRange(0, max(0, len(images) - 1))
        self.redraw()

    def x_t(self, index: int, t: int) -> torch.Tensor:
        """x_t of training image ``index`` (t = 0: x_0 itself, 1 ≤ t ≤ T: the 0-based step t − 1)."""
        x0 = torch.from_numpy(self.images[index:index + 1])
        if t == 0:
            return x0
        noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(index)).to(x0.dtype)
        return q_sample(self.schedule, x0, torch.tensor([t - 1]), noise)

    def redraw(self) -> None:
        t = self.t.value()
        self.marker.setValue(max(t, 1))
        if t == 0:
            self.t_label.setText("t = 0: the clean image x₀")
        else:
            ab = float(self.schedule.alpha_bars[t - 1])
            self.t_label.setText(f"t = {t}/{self.schedule.T}: β_t = {float(self.schedule.betas[t - 1]):.2e}, "
                                 f"ᾱ_t = {ab:.4f}  (√ᾱ_t = {ab ** 0.5:.3f} signal, √(1−ᾱ_t) = {(1 - ab) ** 0.5:.3f} noise)")
        if self.images is None or not len(self.images):
            return
        i = min(self.index.value(), len(self.images) - 1)
        self.x0_view.set_array(to_uint8(torch.from_numpy(self.images[i:i + 1]))[0])
        self.shown = to_uint8(self.x_t(i, t))[0]
        self.xt_view.set_array(self.shown)
