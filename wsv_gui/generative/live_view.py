"""What training looks like while it runs: loss curves per term, a second plot (the GAN's D(x), D(G(z)) and
sample diversity; the steps per second of the other models), the sample grid from fixed noise with a slider back
through its history, and the VAE's reconstructions.

Records arrive after every step; curves are redrawn at most every REDRAW_S (and whenever a preview comes), so a
fast model does not keep the event loop busy plotting.
"""
from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QHBoxLayout, QLabel, QSlider, QSplitter, QVBoxLayout, QWidget

from engine.generative.records import GenerativeRecord
from wsv_gui.eta import time_left
from wsv_gui.generative.images import GridView
from wsv_gui.plots import add_legend

REDRAW_S = 0.25
SMOOTH_STEPS = 25
"""a loss term is drawn raw (faint) and as its mean over the last SMOOTH_STEPS steps: a DDPM's loss depends on
the t drawn for each batch, so the raw curve is a wide band whose trend is hard to read"""
MAX_HISTORY = 240
"""sample grids kept for the history slider; beyond it every other one is dropped, so the slider still spans the
whole run"""
COLLAPSE_DIVERSITY = 0.5
LOSS_TERMS = {"vae": ("recon", "kl", "total"), "gan": ("d_loss", "g_loss"), "ddpm": ("loss",)}
SECOND_TERMS = {"gan": ("d_real", "d_fake")}
LABELS = {"recon": "reconstruction", "kl": "KL", "total": "total (recon + β·KL)", "d_loss": "D loss",
          "g_loss": "G loss", "loss": "noise prediction ‖ε − ε̂‖²", "d_real": "D(x) on real images",
          "d_fake": "D(G(z)) on fakes", "diversity": "sample diversity", "steps_per_s": "steps/s"}
COLORS = {"recon": (80, 160, 240), "kl": (240, 150, 60), "total": (235, 235, 235), "d_loss": (230, 90, 80),
          "g_loss": (80, 160, 240), "loss": (120, 200, 90), "d_real": (120, 200, 90), "d_fake": (230, 90, 80),
          "diversity": (190, 110, 220), "steps_per_s": (200, 200, 200)}


def trailing_mean(y: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last ``window`` values at every point (fewer at the start)."""
    c = np.concatenate([[0.0], np.cumsum(y)])
    n = np.arange(1, len(y) + 1)
    lo = np.maximum(n - window, 0)
    return (c[n] - c[lo]) / (n - lo)


class LogLabelsAxis(pg.AxisItem):
    """On a log axis, labels only at 1, 2 and 5 × 10^k: over less than two decades pyqtgraph labels every minor
    tick (0.02, 0.03, …, 0.09) and the labels pile up."""

    def tickStrings(self, values, scale, spacing):
        strings = super().tickStrings(values, scale, spacing)
        if not self.logMode:
            return strings
        kept = []
        for value, text in zip(values, strings):
            mantissa = 10 ** (value - np.floor(value))
            kept.append(text if min(abs(mantissa - k) for k in (1, 2, 5, 10)) < 1e-6 else "")
        return kept


def _titled(title: str, widget: QWidget) -> QWidget:
    box = QWidget()
    v = QVBoxLayout(box)
    v.setContentsMargins(0, 0, 0, 0)
    label = QLabel(title)
    label.setWordWrap(True)
    v.addWidget(label)
    v.addWidget(widget, 1)
    box.title = label
    return box


class LiveView(QWidget):
    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.kind = "ddpm"
        self.steps: list[int] = []
        self.values: dict[str, list[float]] = {}
        self.diversity: list[tuple[int, float]] = []
        self.history: list[tuple[int, np.ndarray]] = []
        self.curves: dict[str, pg.PlotDataItem] = {}
        """raw values per term"""
        self.smoothed: dict[str, pg.PlotDataItem] = {}
        self._last_draw = 0.0

        self.loss_plot = pg.PlotWidget(axisItems={"left": LogLabelsAxis("left")})
        self.loss_plot.setLabel("bottom", "step")
        self.loss_plot.setLogMode(y=True)
        add_legend(self.loss_plot)
        self.second_plot = pg.PlotWidget()
        self.second_plot.setLabel("bottom", "step")
        add_legend(self.second_plot)
        self.collapse_line = pg.InfiniteLine(COLLAPSE_DIVERSITY, angle=0, pen=pg.mkPen((190, 110, 220), style=Qt.PenStyle.DashLine),
                                             label="collapse below", labelOpts={"position": 0.1, "color": (190, 110, 220)})
        plots = QWidget()
        h = QHBoxLayout(plots)
        h.setContentsMargins(0, 0, 0, 0)
        h.addWidget(self.loss_plot)
        h.addWidget(self.second_plot)

        self.samples = GridView("Samples appear here while training.")
        self.history_slider = QSlider(Qt.Orientation.Horizontal)
        self.history_slider.setEnabled(False)
        self.history_slider.valueChanged.connect(self._show_history)
        self.samples_box = _titled("Samples from fixed noise", self.samples)
        self.samples_box.layout().addWidget(self.history_slider)
        self.diversity_label = QLabel("")
        self.diversity_label.setWordWrap(True)
        self.diversity_label.setTextFormat(Qt.TextFormat.RichText)
        self.samples_box.layout().addWidget(self.diversity_label)
        self.reconstructions = GridView("VAE reconstructions appear here.")
        self.recon_box = _titled("Reconstructions: each training image, then its reconstruction", self.reconstructions)
        grids = QWidget()
        self.grid_layout = g = QGridLayout(grids)
        g.setContentsMargins(0, 0, 0, 0)
        g.addWidget(self.samples_box, 0, 0)
        g.addWidget(self.recon_box, 0, 1)
        g.setColumnStretch(0, 1)

        split = QSplitter(Qt.Orientation.Vertical)
        split.addWidget(plots)
        split.addWidget(grids)
        split.setSizes([300, 460])
        self.speed = QLabel("")
        layout = QVBoxLayout(self)
        layout.addWidget(split, 1)
        layout.addWidget(self.speed)
        self.reset("ddpm")

    def reset(self, kind: str) -> None:
        """Empty plots and grids for a new run (or a model loaded) of the given kind."""
        self.kind = kind
        self.steps.clear()
        self.values.clear()
        self.diversity.clear()
        self.history.clear()
        for plot in (self.loss_plot, self.second_plot):
            plot.clear()
        self.curves.clear()
        self.smoothed.clear()
        for name in LOSS_TERMS[kind]:
            self.curves[name] = self.loss_plot.plot(pen=pg.mkPen((*COLORS[name], 70), width=1))
            self.smoothed[name] = self.loss_plot.plot(pen=pg.mkPen(COLORS[name], width=2), name=LABELS[name])
        self.loss_plot.setTitle(f"loss (solid: mean of {SMOOTH_STEPS} steps)")
        if kind == "gan":
            self.second_plot.setTitle("discriminator outputs and diversity")
            self.second_plot.setLogMode(y=False)
            for name in (*SECOND_TERMS["gan"], "diversity"):
                self.curves[name] = self.second_plot.plot(pen=pg.mkPen(COLORS[name], width=1), name=LABELS[name],
                                                          symbol="o" if name == "diversity" else None, symbolSize=5)
            self.second_plot.addItem(self.collapse_line)
        else:
            self.second_plot.setTitle("training speed (steps/s)")
            self.curves["steps_per_s"] = self.second_plot.plot(pen=pg.mkPen(COLORS["steps_per_s"], width=1))
        self.samples.clear_image("Samples appear here while training.")
        self.reconstructions.clear_image("VAE reconstructions appear here.")
        self.recon_box.setVisible(kind == "vae")
        self.grid_layout.setColumnStretch(1, 1 if kind == "vae" else 0)
        self.samples_box.title.setText(
            {"vae": "Samples: fixed draws z ~ N(0, I) through the decoder",
             "gan": "Samples: G(z) for a fixed batch of noise z, over training",
             "ddpm": "Samples: DDIM (EMA weights) from a fixed x_T"}[kind])
        self.history_slider.setEnabled(False)
        self.history_slider.setRange(0, 0)
        self.diversity_label.setText("")
        self.speed.setText("")

    def add_record(self, rec: GenerativeRecord) -> None:
        self.steps.append(rec.step)
        for name, value in rec.losses.items():
            self.values.setdefault(name, []).append(value)
        self.values.setdefault("steps_per_s", []).append(rec.steps_per_s)
        self.speed.setText(f"step {rec.step}/{rec.total_steps} · {rec.steps_per_s:.2f} steps/s on {rec.device} · "
                           f"{rec.elapsed_s:.0f} s, {time_left(rec.total_steps - rec.step, rec.steps_per_s)} · "
                           f"lr {rec.lr:.2g} · "
                           + ", ".join(f"{LABELS.get(k, k)} {v:.4g}" for k, v in rec.losses.items()))
        if rec.preview is not None:
            self._add_preview(rec)
        if rec.preview is not None or time.monotonic() - self._last_draw >= REDRAW_S:
            self.redraw()

    def redraw(self) -> None:
        self._last_draw = time.monotonic()
        steps = np.asarray(self.steps, dtype=np.float64)
        for name, curve in self.curves.items():
            if name == "diversity":
                if self.diversity:
                    curve.setData(*np.asarray(self.diversity, dtype=np.float64).T)
                continue
            values = self.values.get(name)
            if values:
                y = np.asarray(values, dtype=np.float64)
                x = steps[-len(y):]
                if name in LOSS_TERMS[self.kind]:
                    y = np.maximum(y, 1e-8)  # log axis
                    self.smoothed[name].setData(x, trailing_mean(y, SMOOTH_STEPS))
                curve.setData(x, y)

    def _add_preview(self, rec: GenerativeRecord) -> None:
        p = rec.preview
        following = self.history_slider.value() >= len(self.history) - 1
        self.history.append((p.step, p.samples))
        if len(self.history) > MAX_HISTORY:
            self.history = self.history[::2] + ([self.history[-1]] if len(self.history) % 2 == 0 else [])
        self.history_slider.setEnabled(len(self.history) > 1)
        self.history_slider.blockSignals(True)
        self.history_slider.setRange(0, len(self.history) - 1)
        if following:
            self.history_slider.setValue(len(self.history) - 1)
        self.history_slider.blockSignals(False)
        self._show_history()
        if p.reconstructions is not None:
            self.reconstructions.set_array(p.reconstructions)
        if p.diversity is not None:
            self.diversity.append((p.step, p.diversity))
            text = (f"Diversity {p.diversity:.2f} at step {p.step}: the samples' mean pairwise distance over the "
                    f"training images' (about 1 is healthy).")
            if p.diversity < COLLAPSE_DIVERSITY:
                text += (f" <span style='color:#e8710a'><b>Below {COLLAPSE_DIVERSITY}: possible mode collapse</b> "
                         f"(G maps many z to a few images) — lower the learning rate or restart.</span>")
            self.diversity_label.setText(text)

    def _show_history(self) -> None:
        if not self.history:
            return
        i = min(self.history_slider.value(), len(self.history) - 1)
        step, grid = self.history[i]
        self.samples.set_array(grid)
        latest = " (latest)" if i == len(self.history) - 1 else ""
        self.history_slider.setToolTip(f"preview at step {step}{latest}")
        self.samples_box.title.setText(self.samples_box.title.text().split(" — ")[0] + f" — step {step}{latest}")

    def latest_grid(self) -> np.ndarray | None:
        return self.history[-1][1] if self.history else None
