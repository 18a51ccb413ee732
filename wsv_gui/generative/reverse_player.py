"""A player for a DDPM's reverse process: x_t beside x̂_0 (the clean image the model predicts from x_t), step by
step from pure noise x_T to the sample.

The frames are computed by the sampling service in its thread and arrive one by one, so the player shows the
process as it is computed; afterwards Play replays it and the slider steps through it. The user picks
deterministic DDIM over fewer steps or the full ancestral DDPM (T steps, slow on a CPU).
"""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import QComboBox, QDoubleSpinBox, QHBoxLayout, QLabel, QPushButton, QSlider, QSpinBox, \
    QVBoxLayout, QWidget

from wsv_gui.generative.images import GridView
from wsv_gui.generative.messages import ReverseFrame

FRAME_MS = 80
DDIM, DDPM = "ddim", "ddpm"


class ReversePlayer(QWidget):
    runRequested = Signal(int, int, int, float)  # n, seed, DDIM steps (0: full DDPM), η
    cancelRequested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.frames: list[ReverseFrame] = []
        self.running = False

        self.sampler = QComboBox()
        self.sampler.addItem("DDIM (fewer steps)", DDIM)
        self.sampler.addItem("DDPM (ancestral, all T steps)", DDPM)
        self.sampler.setToolTip("DDIM skips along a sub-sequence of t; the full DDPM takes every step and adds "
                                "fresh noise at each (slow on a CPU)")
        self.steps = QSpinBox()
        self.steps.setRange(1, 4000)
        self.steps.setValue(50)
        self.steps.setToolTip("DDIM steps")
        self.eta = QDoubleSpinBox()
        self.eta.setRange(0.0, 1.0)
        self.eta.setSingleStep(0.1)
        self.eta.setToolTip("DDIM η: 0 is deterministic, 1 adds noise like DDPM")
        self.count = QSpinBox()
        self.count.setRange(1, 64)
        self.count.setValue(16)
        self.count.setToolTip("images sampled side by side")
        self.seed = QSpinBox()
        self.seed.setRange(0, 1_000_000)
        self.run_button = QPushButton("Run reverse process")
        self.run_button.clicked.connect(self._run_or_cancel)
        top = QHBoxLayout()
        for label, w in (("", self.sampler), ("steps", self.steps), ("η", self.eta), ("n", self.count),
                         ("seed", self.seed)):
            if label:
                top.addWidget(QLabel(label))
            top.addWidget(w)
        top.addWidget(self.run_button)
        top.addStretch(1)

        self.play_button = QPushButton("Play")
        self.play_button.setCheckable(True)
        self.play_button.toggled.connect(self._play)
        self.step_button = QPushButton("Step ▶")
        self.step_button.clicked.connect(lambda: self.slider.setValue(self.slider.value() + 1))
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.valueChanged.connect(self._show)
        self.label = QLabel("Train or load a DDPM, then run its reverse process.")
        self.label.setMinimumWidth(260)
        bottom = QHBoxLayout()
        bottom.addWidget(self.play_button)
        bottom.addWidget(self.step_button)
        bottom.addWidget(self.slider, 1)
        bottom.addWidget(self.label)

        self.x_view = GridView("x_t", 64)
        self.x0_view = GridView("x̂₀", 64)
        pictures = QHBoxLayout()
        for title, view in (("x_t: the sampler's state", self.x_view),
                            ("x̂₀: the clean image the model predicts from x_t", self.x0_view)):
            box = QVBoxLayout()
            box.addWidget(QLabel(title))
            box.addWidget(view, 1)
            pictures.addLayout(box)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(pictures, 1)
        layout.addLayout(bottom)
        self.timer = QTimer(self, interval=FRAME_MS)
        self.timer.timeout.connect(self._advance)
        self.sampler.currentIndexChanged.connect(self._sampler_changed)
        self.set_enabled_model(False)

    def set_enabled_model(self, is_ddpm: bool) -> None:
        """Running needs a DDPM; frames already computed stay playable."""
        self.run_button.setEnabled(is_ddpm or self.running)
        if not self.running and not self.frames:
            self.label.setText("Press Run to watch the DDPM turn noise into images." if is_ddpm else
                               "Train or load a DDPM, then run its reverse process.")
        self._sampler_changed()

    def _sampler_changed(self) -> None:
        ddim = self.sampler.currentData() == DDIM
        self.steps.setEnabled(ddim)
        self.eta.setEnabled(ddim)

    def _run_or_cancel(self) -> None:
        if self.running:
            self.cancelRequested.emit()
            return
        self.start()
        steps = self.steps.value() if self.sampler.currentData() == DDIM else 0
        self.runRequested.emit(self.count.value(), self.seed.value(), steps, self.eta.value())

    def start(self) -> None:
        self.play_button.setChecked(False)
        self.frames.clear()
        self.running = True
        self.run_button.setText("Cancel")
        self.slider.setRange(0, 0)
        self.label.setText("computing…")

    def add_frame(self, frame: ReverseFrame) -> None:
        """Frames arrive in order; the view follows the newest unless the user moved back."""
        following = not self.frames or self.slider.value() == len(self.frames) - 1
        self.frames.append(frame)
        self.slider.setRange(0, len(self.frames) - 1)
        if following:
            self.slider.setValue(len(self.frames) - 1)

    def finished(self, problem: str) -> None:
        """``problem``: "" when the process ran to the end, else why it stopped."""
        self.running = False
        self.run_button.setText("Run reverse process")
        if problem:
            self.label.setText(f"stopped after {len(self.frames)} frames: {problem}")

    def _play(self, on: bool) -> None:
        self.play_button.setText("Pause" if on else "Play")
        if on:
            if self.slider.value() >= self.slider.maximum():
                self.slider.setValue(0)
            self.timer.start()
        else:
            self.timer.stop()

    def _advance(self) -> None:
        if self.slider.value() >= self.slider.maximum():
            if not self.running:
                self.play_button.setChecked(False)
            return
        self.slider.setValue(self.slider.value() + 1)

    def _show(self, i: int) -> None:
        if not self.frames:
            return
        f = self.frames[min(i, len(self.frames) - 1)]
        self.x_view.set_array(f.x)
        self.x0_view.set_array(f.x0)
        if f.t == 0:
            self.label.setText(f"step {f.index}/{f.total}: t = 0, the finished samples")
        else:
            self.label.setText(f"step {f.index}/{f.total}: t = {f.t}")

    def gif_frames(self) -> list[np.ndarray]:
        """Each frame as x_t and x̂_0 side by side on the grids' grey, for an animation."""
        out = []
        for f in self.frames:
            gap = np.full((f.x.shape[0], 8, 3), 128, np.uint8)
            out.append(np.concatenate([f.x, gap, f.x0], axis=1))
        return out
