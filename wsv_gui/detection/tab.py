"""The Detection tab: box objects on the canvas (the same box tool and store as the Segmentation tab), train a
detector from those boxes, and watch its detections on the image shown; loss curves per term while training,
and a precision-recall curve per class with AP and mAP on the held-out images when it stops.

Score threshold and NMS IoU act on the raw detections kept for the image, so moving a slider re-filters at
once without running the network again.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import Qt, QThread
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QCheckBox, QComboBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QSlider, \
    QSpinBox, QSplitter, QVBoxLayout, QWidget

from engine.annotations.types import UNLABELED, ClassDef
from engine.detection.config import DetectionConfig
from engine.detection.data import done_image_ids, set_images_done
from engine.detection.hog_svm import METHOD as HOG_SVM, HogSvmConfig
from engine.detection.models import DEFAULT_DETECTOR, DETECTORS
from engine.detection.postprocess import Detections, postprocess
from engine.detection.records import DetectionRecord
from engine.project import Project
from wsv_gui.canvas.view import BOX, CanvasView
from wsv_gui.detection.overlay import DetectionOverlay
from wsv_gui.detection.worker import DetectionWorker, DetectorService
from wsv_gui.eta import time_left
from wsv_gui.tab import ShownImage, Tab
from wsv_gui.plots import add_legend
from wsv_gui.workers import WorkerThread

SCORE_RANGE = {"torchvision": (0.0, 1.0), HOG_SVM: (-1.0, 3.0)}
"""slider range of the score threshold: class probabilities for the networks, SVM margins for HOG + SVM"""
DEFAULT_THRESHOLD = {"torchvision": 0.5, HOG_SVM: 0.0}
CURVE_COLORS = [(230, 90, 80), (80, 160, 240), (120, 200, 90), (240, 190, 60), (190, 110, 220), (90, 210, 210)]


class DetectionTab(Tab):
    title = "Detection"
    key = "detection"

    def __init__(self, host) -> None:
        super().__init__(host)
        self.project: Project | None = None
        self.image_id: int | None = None
        self.image_path: Path | None = None
        self.raw: dict[int, Detections] = {}
        self.names: list[str] = []
        self.colors: list[QColor] = []
        self.kind = "torchvision"
        self.training: WorkerThread | None = None
        self.losses: dict[str, list[float]] = {}
        self.steps: list[int] = []

        self.canvas = CanvasView()
        self.canvas.set_tool(BOX)
        self.canvas.boxDrawn.connect(host.add_box)  # the same boxes as the Segmentation tab's
        self.canvas.boxMoved.connect(host.move_box)
        self.canvas.boxDeleteRequested.connect(host.delete_box)
        self.overlay = DetectionOverlay(self.canvas.scene())
        hint = QLabel("Draw boxes around objects of the class selected on the left (drag, or two clicks); "
                      "they are the same boxes as in the Segmentation tab.")
        hint.setWordWrap(True)
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        lv.addWidget(hint)
        lv.addWidget(self.canvas, 1)

        side = QWidget()
        sv = QVBoxLayout(side)
        form = QFormLayout()
        self.method = QComboBox()
        gpu = torch.cuda.is_available()
        for name in DETECTORS:
            self.method.addItem(name + ("" if gpu else " (CNN: slow on a CPU)"), name)
        self.method.addItem("HOG + linear SVM (classic, quick on a CPU)", HOG_SVM)
        # A CNN detector needs many minutes of CPU before it finds anything; HOG + SVM gives boxes within a minute.
        self.method.setCurrentIndex(self.method.findData(DEFAULT_DETECTOR if gpu else HOG_SVM))
        self.method.setToolTip("a torchvision CNN detector (best with a GPU), or the classic HOG features + linear "
                               "SVM with sliding windows, an image pyramid, hard-negative mining and NMS (trains in "
                               "seconds to a minute on a CPU)")
        form.addRow("Method", self.method)
        self.steps_box = QSpinBox()
        self.steps_box.setRange(10, 100_000)
        self.steps_box.setValue(500)
        self.steps_box.setToolTip("training steps of the CNN detectors (Stop ends sooner and keeps what was learnt)")
        form.addRow("Steps", self.steps_box)
        self.holdout = QSpinBox()
        self.holdout.setRange(0, 90)
        self.holdout.setValue(20)
        self.holdout.setSuffix(" %")
        self.holdout.setToolTip("share of the boxed images held out for evaluation (images of the 'test' split "
                                "are used instead where the project has them)")
        form.addRow("Held out", self.holdout)
        sv.addLayout(form)
        # Steps mean nothing to HOG + SVM, which trains in stages until its mining rounds are done.
        self.method.currentIndexChanged.connect(
            lambda _: form.setRowVisible(self.steps_box, self.method.currentData() != HOG_SVM))
        form.setRowVisible(self.steps_box, self.method.currentData() != HOG_SVM)
        row = QHBoxLayout()
        self.train_button = QPushButton("Train")
        self.train_button.clicked.connect(self.train)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        row.addWidget(self.train_button)
        row.addWidget(self.stop_button)
        sv.addLayout(row)
        self.status = QLabel("Box a few dozen objects, then press Train.")
        self.status.setWordWrap(True)
        sv.addWidget(self.status)

        post = QFormLayout()
        self.score = QSlider(Qt.Orientation.Horizontal)
        self.score.setRange(0, 100)
        self.score_label = QLabel()
        self.score.valueChanged.connect(self.redraw)
        post.addRow(self.score_label, self.score)
        self.nms = QSlider(Qt.Orientation.Horizontal)
        self.nms.setRange(10, 90)
        self.nms.setValue(50)
        self.nms_label = QLabel()
        self.nms.valueChanged.connect(self.redraw)
        post.addRow(self.nms_label, self.nms)
        sv.addLayout(post)
        self.show_truth = QCheckBox("Show your boxes")
        self.show_truth.setChecked(True)
        self.show_truth.toggled.connect(self.canvas.boxes.set_visible)
        sv.addWidget(self.show_truth)
        self.negative = QCheckBox("Done: no unboxed objects here (use as a negative)")
        self.negative.setToolTip("an image without boxes teaches the detector only when marked done")
        self.negative.toggled.connect(self._set_done)
        sv.addWidget(self.negative)

        self.loss_plot = pg.PlotWidget(title="loss")
        self.loss_plot.setLabel("bottom", "step")
        add_legend(self.loss_plot)
        self.loss_curves: dict[str, pg.PlotDataItem] = {}
        sv.addWidget(self.loss_plot, 1)
        self.pr_plot = pg.PlotWidget(title="precision–recall (IoU 0.5, held out)")
        self.pr_plot.setLabel("bottom", "recall")
        self.pr_plot.setLabel("left", "precision")
        self.pr_plot.setRange(xRange=(0, 1), yRange=(0, 1.02))
        add_legend(self.pr_plot, (-5, -5))
        sv.addWidget(self.pr_plot, 1)
        self.metrics = QLabel()
        self.metrics.setWordWrap(True)
        sv.addWidget(self.metrics)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(side)
        split.setStretchFactor(0, 1)
        split.setSizes([900, 380])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(split)

        self.service = DetectorService()
        self.service_thread = QThread(self)
        self.service.moveToThread(self.service_thread)
        self.service.detected.connect(self._on_detected)
        self.service.failed.connect(lambda _, msg: self.status.setText(msg))
        self.service_thread.start()
        self._set_kind("torchvision")

    # ---- project and image ------------------------------------------------------------------------------------
    @property
    def detector_dir(self) -> Path:
        return self.project.root / "models" / "detector"

    def set_project(self, project: Project) -> None:
        """The window's project (its store connection is the GUI thread's)."""
        self.stop(wait=True)
        self.project = project
        self.image_id = None
        self.raw.clear()
        self.canvas.clear()
        self.overlay.clear()
        self._clear_plots()
        saved = self._saved_method()
        if saved:
            self._set_kind(HOG_SVM if saved == HOG_SVM else "torchvision")
            self.status.setText("A trained detector is saved in this project: its detections are shown.")
        else:
            self.status.setText("Box a few dozen objects, then press Train.")

    def classes_changed(self, classes: list[ClassDef]) -> None:
        self.names = [c.name for c in classes]
        self.colors = [QColor(*c.color) for c in classes]
        self.refresh_boxes()
        self.redraw()

    def show_image(self, shown: ShownImage | None) -> None:
        if shown is None:
            self.image_id = None
            self.canvas.clear()
            self.overlay.clear()
            return
        image_id, image, path = shown.image_id, shown.image, shown.path
        self.image_id, self.image_path = image_id, path
        w, h = image.original_size
        self.canvas.set_image(image, np.full((h, w), UNLABELED, np.uint8), np.zeros((0, 3), np.uint8))
        self.canvas.set_tool(BOX)
        self.negative.blockSignals(True)
        self.negative.setChecked(image_id in done_image_ids(self.project.store))
        self.negative.blockSignals(False)
        self.refresh_boxes()
        self.redraw()
        if self.training is None and image_id not in self.raw and self._saved_method():
            self.service.request.emit(image_id, str(path), str(self.detector_dir))

    def marks_changed(self, kind: str, detail) -> None:
        if kind in ("boxes", "classes", "error"):
            self.refresh_boxes()

    def refresh_boxes(self) -> None:
        """The user's boxes of the shown image (hidden while 'Show your boxes' is off)."""
        if self.image_id is None:
            return
        classes = self.project.store.classes()
        self.canvas.boxes.set_boxes(self.project.store.boxes(self.image_id), {c.id: QColor(*c.color) for c in classes},
                                    {c.id: c.name for c in classes})
        self.canvas.boxes.set_visible(self.show_truth.isChecked())

    def _saved_method(self) -> str | None:
        try:
            return json.loads((self.detector_dir / "detector.json").read_text()).get("method", "torchvision")
        except (OSError, ValueError, AttributeError):
            return None

    def _set_done(self, done: bool) -> None:
        if self.image_id is not None and self.project is not None:
            set_images_done(self.project.store, [self.image_id], done)

    # ---- thresholds -------------------------------------------------------------------------------------------
    def _set_kind(self, kind: str) -> None:
        self.kind = kind
        lo, hi = SCORE_RANGE[kind]
        self.score.blockSignals(True)
        self.score.setValue(round(100 * (DEFAULT_THRESHOLD[kind] - lo) / (hi - lo)))
        self.score.blockSignals(False)
        self.redraw()

    def score_threshold(self) -> float:
        lo, hi = SCORE_RANGE[self.kind]
        return lo + (hi - lo) * self.score.value() / 100

    def nms_iou(self) -> float:
        return self.nms.value() / 100

    def redraw(self) -> None:
        self.score_label.setText(f"Score ≥ {self.score_threshold():.2f}")
        self.nms_label.setText(f"NMS IoU {self.nms_iou():.2f}")
        raw = self.raw.get(self.image_id)
        shown = None if raw is None else postprocess(raw, self.score_threshold(), self.nms_iou())
        self.overlay.show(shown, self.colors, self.names)

    def _on_detected(self, image_id: int, detections: Detections) -> None:
        self.raw[image_id] = detections
        if image_id == self.image_id:
            self.redraw()

    # ---- training ---------------------------------------------------------------------------------------------
    def train(self) -> None:
        if self.training is not None or self.project is None:
            return
        method = self.method.currentData()
        fraction = self.holdout.value() / 100
        if method == HOG_SVM:
            config = HogSvmConfig(holdout_fraction=fraction)
        else:
            config = DetectionConfig(model=method, steps=self.steps_box.value(), holdout_fraction=fraction,
                                     threads=1, eval_interval_s=0)
        self._set_kind(HOG_SVM if method == HOG_SVM else "torchvision")
        worker = DetectionWorker(self.project.root, config, self.detector_dir)
        worker.preview_image_id = self.image_id
        worker.progress.connect(self._on_progress)
        worker.evaluated.connect(self._on_evaluated)
        worker.failed.connect(lambda msg: self.status.setText(f"Training stopped: {msg}"))
        worker.stopped.connect(self._on_stopped)
        self.training = WorkerThread(worker, self)
        self.raw.clear()
        self._clear_plots()
        self.train_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.status.setText("starting…")
        self.training.start()

    def stop(self, wait: bool = False) -> None:
        if self.training is None:
            return
        self.training.worker.stop()
        self.status.setText("stopping…")
        if wait:
            self.training.wait(120000)
            self._on_stopped("")

    def shutdown(self) -> None:
        self.stop(wait=True)
        self.service_thread.quit()
        self.service_thread.wait(10000)

    def _on_progress(self, rec) -> None:
        if self.training is not None:
            self.training.worker.preview_image_id = self.image_id
        if not isinstance(rec, DetectionRecord):
            self.status.setText(f"HOG + SVM: {rec.description} ({rec.stage}/{rec.total_stages}; "
                                f"{rec.positives} positive and {rec.negatives} negative windows)")
            return
        self.steps.append(rec.step)
        for name, value in rec.losses.items():
            self.losses.setdefault(name, []).append(value)
            if name not in self.loss_curves:
                color = CURVE_COLORS[len(self.loss_curves) % len(CURVE_COLORS)] if name != "total" else (240, 240, 240)
                self.loss_curves[name] = self.loss_plot.plot(pen=pg.mkPen(color, width=2 if name == "total" else 1),
                                                             name=name)
        if rec.step % 5 == 0 or rec.step == 1:
            for name, curve in self.loss_curves.items():
                values = self.losses[name]
                curve.setData(self.steps[-len(values):], values)
        self.status.setText(f"step {rec.step}/{rec.total_steps} · {rec.steps_per_s:.2f} steps/s on {rec.device} · "
                            f"{time_left(rec.total_steps - rec.step, rec.steps_per_s)} · "
                            f"{rec.train_images} training images ({rec.negative_images} negatives), {rec.boxes} boxes, "
                            f"{rec.heldout_images} held out · lr {rec.lr:.2g}")
        if rec.preview is not None:
            self._on_detected(rec.preview.image_id, rec.preview.detections)

    def _on_evaluated(self, scores) -> None:
        self.pr_plot.clear()
        if scores is None or not scores.curves:
            self.metrics.setText("No held-out image has boxes: raise the held-out share to measure AP.")
            return
        def fmt(v: float | None) -> str:
            return "–" if v is None or math.isnan(v) else f"{v * 100:.1f}"

        parts = []
        for n, (k, (precision, recall)) in enumerate(sorted(scores.curves.items())):
            name = self.names[k] if k < len(self.names) else str(k)
            color = self.colors[k] if k < len(self.colors) else QColor(*CURVE_COLORS[n % len(CURVE_COLORS)])
            self.pr_plot.plot(np.asarray(recall), np.asarray(precision), pen=pg.mkPen(color, width=2),
                              name=f"{name} AP {fmt(scores.ap50[k])}")
            parts.append(f"{name} {fmt(scores.ap50[k])}")
        self.metrics.setText(f"held out: mAP@0.5 {fmt(scores.map50)} (VOC {fmt(scores.map50_voc)}), "
                             f"mAP@[.5:.95] {fmt(scores.map)}; AP@0.5 per class: " + ", ".join(parts))

    def _on_stopped(self, saved: str) -> None:
        if self.training is not None:
            self.training.wait(10000)
            self.training = None
        self.train_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        if saved:
            self.status.setText(f"Detector saved in {saved}.")
            self.raw.clear()
            if self.image_id is not None:
                self.service.request.emit(self.image_id, str(self.image_path), saved)

    def _clear_plots(self) -> None:
        self.loss_plot.clear()
        self.loss_curves.clear()
        self.losses.clear()
        self.steps.clear()
        self.pr_plot.clear()
        self.metrics.setText("")
