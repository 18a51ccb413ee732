"""The training panel: Train / Pause / Stop, the settings, and live loss and mIoU curves (pyqtgraph).

Curves are redrawn from a timer at most five times a second however fast steps arrive, so plotting never
competes with painting for the event loop.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer, Signal
from PySide6.QtWidgets import QFrame, QGroupBox, QHBoxLayout, QLabel, QPushButton, QScrollArea, QVBoxLayout, QWidget

from engine.training.records import ProgressRecord
from engine.training.terms import TERMS, TOTAL, title
from wsv_gui.plots import DecadeAxis, add_legend
from wsv_gui.segmentation.settings import TrainingSettings



class TrainingPanel(QWidget):
    trainRequested = Signal()
    """Train, Resume (after Pause) or Continue (after Stop, from the network it saved)"""
    restartRequested = Signal()
    """train a fresh network, forgetting the saved one"""
    pauseRequested = Signal()
    stopRequested = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        buttons = QHBoxLayout()
        self.train_button = QPushButton("Train")
        self.restart_button = QPushButton("Restart")
        self.restart_button.setToolTip("Train a new network from its initial (ImageNet) weights, forgetting what the "
                                       "saved one learnt")
        self.pause_button = QPushButton("Pause")
        self.pause_button.setToolTip("Hold training; Resume goes on with the same network (Ctrl+P)")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("End training and save the network; Continue goes on from it later (Ctrl+.)")
        for b in (self.train_button, self.restart_button, self.pause_button, self.stop_button):
            buttons.addWidget(b)
        self.train_button.clicked.connect(self.trainRequested)
        self.restart_button.clicked.connect(self.restartRequested)
        self.pause_button.clicked.connect(self.pauseRequested)
        self.stop_button.clicked.connect(self.stopRequested)
        layout.addLayout(buttons)
        self.status = QLabel("Mark a few strokes for two or more classes, then press Train.")
        self.status.setWordWrap(True)
        layout.addWidget(self.status)
        self.settings_box = QGroupBox("Settings")
        box_layout = QVBoxLayout(self.settings_box)
        self.settings = TrainingSettings()
        # The form grows with every declared setting: it scrolls rather than squeeze its rows into each other.
        scroll = QScrollArea()
        scroll.setWidget(self.settings)
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setMinimumHeight(min(self.settings.sizeHint().height(), 150))
        box_layout.addWidget(scroll)
        layout.addWidget(self.settings_box, 1)

        self.loss_plot = pg.PlotWidget(title="loss", axisItems={"left": DecadeAxis("left")})
        add_legend(self.loss_plot)
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.setLogMode(y=True)
        self.curves: dict[str, pg.PlotDataItem] = {}
        """one per term the trainer reported (engine.training.terms), made when it first appears"""
        self.loss_plot.setMinimumHeight(170)  # the settings form below must not squash it to a strip
        layout.addWidget(self.loss_plot, 2)
        self.miou_plot = pg.PlotWidget(title="mIoU on images with ground truth")
        self.miou_plot.setLabel("bottom", "step")
        self.miou_plot.setYRange(0, 1)
        self.miou_plot.getAxis("left").setTicks([[(0.0, "0"), (0.5, "0.5"), (1.0, "1")]])
        self.miou_curve = self.miou_plot.plot(pen=pg.mkPen((120, 220, 120), width=2), symbol="o", symbolSize=5)
        self.miou_plot.setMinimumHeight(110)
        self.miou_plot.hide()
        layout.addWidget(self.miou_plot, 1)
        self.share_plot = pg.PlotWidget(title="share of this image per class")
        self.share_plot.setLabel("bottom", "step")
        self.share_plot.setYRange(0, 1)
        self.share_plot.getAxis("left").setTicks([[(0.0, "0"), (0.5, "50 %"), (1.0, "100 %")]])
        self.share_plot.setMinimumHeight(110)
        self.share_plot.hide()
        layout.addWidget(self.share_plot, 1)
        self.hint = QLabel("")
        self.hint.setWordWrap(True)
        self.hint.setStyleSheet("color: #d08000;")
        layout.addWidget(self.hint)
        self._share_curves: list[pg.PlotDataItem] = []

        self._steps: list[int] = []
        self._losses: dict[str, list[float]] = {}
        self._loss_steps: dict[str, list[int]] = {}
        self._miou: list[tuple[int, float]] = []
        self._dirty = False
        self._timer = QTimer(self)
        self._timer.setInterval(200)
        self._timer.timeout.connect(self._redraw)
        self._timer.start()
        self.set_state("idle")

    def set_state(self, state: str, saved: bool = False) -> None:
        """'idle', 'running' or 'paused': which buttons make sense, named for what they do — after a Stop with a
        ``saved`` network, Continue goes on from it and Restart starts afresh. Settings apply when training
        starts, so they are shown only while it is stopped, and the curves get their room while it runs."""
        label = {"paused": "Resume", "idle": "Continue" if saved else "Train"}.get(state, "Train")
        self.train_button.setText(label)
        self.train_button.setToolTip({"Resume": "Go on with the paused network (Ctrl+T)",
                                      "Continue": "Train on from the network saved at Stop (Ctrl+T)",
                                      "Train": "Start training from the initial (ImageNet) weights (Ctrl+T)"}[label])
        self.restart_button.setVisible(state == "idle" and saved)
        self.train_button.setEnabled(state != "running")
        self.pause_button.setEnabled(state == "running")
        self.stop_button.setEnabled(state != "idle")
        self.settings_box.setVisible(state == "idle")

    def show_shares(self, steps: list[int], history: list[np.ndarray], colors: np.ndarray, hint: str) -> None:
        """The shown image's class shares over the previews so far (one curve per class, in its colour), and the
        hint when one shrinks back toward its strokes."""
        self.share_plot.setVisible(bool(steps))
        shares = np.stack(history) if history else np.zeros((0, len(colors)))
        while len(self._share_curves) < shares.shape[1]:
            self._share_curves.append(self.share_plot.plot())
        for k, curve in enumerate(self._share_curves):
            if k < shares.shape[1]:
                curve.setPen(pg.mkPen(tuple(int(v) for v in colors[k]), width=2))
                curve.setData(np.asarray(steps, np.float64), shares[:, k])
            else:
                curve.setData([], [])
        self.hint.setText(hint)

    def reset(self) -> None:
        self._steps.clear()
        self._losses.clear()
        self._loss_steps.clear()
        for curve in self.curves.values():
            self.loss_plot.removeItem(curve)
        self.curves.clear()
        self.loss_plot.plotItem.legend.clear()
        self._miou.clear()
        self._dirty = True

    def add(self, rec: ProgressRecord) -> None:
        self._steps.append(rec.step)
        for key, value in rec.losses.items():
            self._losses.setdefault(key, []).append(max(value, 1e-8))
            self._loss_steps.setdefault(key, []).append(rec.step)
        self.status.setText(status_line(rec))
        if rec.miou is not None:
            self._miou.append((rec.step, rec.miou))
            self.miou_plot.show()
        self._dirty = True

    def _redraw(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        for key, values in self._losses.items():
            if key not in self.curves:
                self.curves[key] = self.loss_plot.plot(name=title(key), pen=pg.mkPen(colour(key), width=1.5))
            self.curves[key].setData(np.asarray(self._loss_steps[key], np.float64), np.asarray(values, np.float64))
        if self._miou:
            m = np.asarray(self._miou, np.float64)
            self.miou_curve.setData(m[:, 0], m[:, 1])


def colour(name: str) -> tuple[int, int, int]:
    """A reported term's curve colour: the one it declares, or a fixed one of its name's (stable between runs)."""
    term = TOTAL if name == "total" else TERMS.get(name)
    if term is not None:
        return term.colour
    return pg.intColor(sum(map(ord, name)) % 9, 9).getRgb()[:3]


def status_line(rec: ProgressRecord) -> str:
    """'step 12: loss 0.41 (pCE 0.30, regularizer 0.11), mIoU 71.2', listing the terms the record reports."""
    parts = ", ".join(f"{title(k)} {v:.4f}" for k, v in rec.losses.items() if k != "total")
    loss = f"loss {rec.losses['total']:.4f}" if "total" in rec.losses else "loss"
    return f"step {rec.step}: {loss} ({parts})" + (f", mIoU {rec.miou * 100:.1f}" if rec.miou is not None else "")
