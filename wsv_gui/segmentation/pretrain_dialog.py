"""Training ▸ Pretrain on Unlabeled Images: self-supervised pretraining (engine.training.pretrain) of the network
the Segmentation tab trains, on every image of the project, with its live loss and one crop's corrupted input,
the network's answer and the clean target. The result lands in the project (models/pretrained), and the tab's
next fresh run (Train with no saved network, or Restart) starts from it."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtWidgets import QComboBox, QDialog, QFormLayout, QHBoxLayout, QLabel, QPushButton, QSpinBox, \
    QVBoxLayout

from engine.training.pretrain import TASKS, PretrainConfig, PretrainRecord, Pretrainer
from wsv_gui.generative.images import GridView
from wsv_gui.workers import Worker, WorkerThread

TASK_HELP = {"inpainting": "redraw grey rectangles hidden over a quarter of each crop",
             "denoising": "remove Gaussian noise of a random strength",
             "colorization": "restore the colours of a grey crop (colour images only)"}


def pretrained_dir(project_root: Path) -> Path:
    return project_root / "models" / "pretrained"


class PretrainWorker(Worker):
    what = "pretraining"

    def __init__(self, project_root: Path, config: PretrainConfig, out: Path) -> None:
        super().__init__()
        self.project_root, self.config, self.out = project_root, config, out

    def create(self) -> Pretrainer:
        return Pretrainer(self.project_root, self.config)

    def finish(self, trainer: Pretrainer) -> str:
        if not trainer.step:
            return ""
        trainer.save(self.out)
        return str(self.out)


class PretrainDialog(QDialog):
    def __init__(self, project_root: Path, model: str, working_size: int, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Pretrain on unlabeled images")
        self.project_root, self.model, self.working_size = project_root, model, working_size
        self.job: WorkerThread | None = None
        self.saved = ""
        self.task = QComboBox()
        for task in TASKS:
            self.task.addItem(f"{task}: {TASK_HELP[task]}", task)
        self.steps = QSpinBox()
        self.steps.setRange(1, 1_000_000)
        self.steps.setSingleStep(100)
        self.steps.setValue(500)
        form = QFormLayout()
        form.addRow("Task", self.task)
        form.addRow("Steps", self.steps)
        form.addRow("Network", QLabel(f"{model}, images at {working_size} px (the Segmentation tab's settings)"))
        self.start_button, self.stop_button = QPushButton("Start"), QPushButton("Stop")
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        self.stop_button.setEnabled(False)
        buttons = QHBoxLayout()
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        buttons.addStretch(1)
        self.plot = pg.PlotWidget()
        self.plot.setLabel("left", "loss (mean absolute error, 0..1)")
        self.plot.getAxis("left").enableAutoSIPrefix(False)
        self.plot.setLabel("bottom", "step")
        self.curve = self.plot.plot(pen=pg.mkPen((90, 170, 255), width=2))
        self.steps_seen: list[int] = []
        self.losses: list[float] = []
        self.views = [GridView(name, 128) for name in ("input", "output", "target")]
        previews = QHBoxLayout()
        for title, view in zip(("what the network sees", "what it answers", "the clean crop"), self.views):
            column = QVBoxLayout()
            column.addWidget(QLabel(title))
            column.addWidget(view, 1)
            previews.addLayout(column)
        self.status = QLabel(f"Learns from all {self._image_count()} images of the project, marked or not.")
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.plot, 1)
        layout.addLayout(previews, 1)
        layout.addWidget(self.status)
        self.resize(720, 640)

    def _image_count(self) -> int:
        from engine.project import Project

        with Project.open(self.project_root) as project:
            return len(project.store.images())

    def config(self) -> PretrainConfig:
        return PretrainConfig(task=self.task.currentData(), model=self.model, steps=self.steps.value(),
                              working_size=self.working_size, threads=max(1, (os.cpu_count() or 2) - 1))

    def start(self) -> None:
        if self.job is not None:
            return
        worker = PretrainWorker(self.project_root, self.config(), pretrained_dir(self.project_root))
        worker.progress.connect(self._on_progress)
        worker.failed.connect(self._on_failed)
        worker.stopped.connect(self._on_stopped)
        self.steps_seen, self.losses = [], []
        self.job = WorkerThread(worker, self)
        self.start_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.task.setEnabled(False)
        self.status.setText("starting…")
        self.job.start()

    def stop(self, wait: bool = False) -> None:
        if self.job is not None:
            self.job.worker.stop()
            if wait:
                self.job.wait(60000)

    def _on_progress(self, rec: PretrainRecord) -> None:
        self.steps_seen.append(rec.step)
        self.losses.append(rec.loss)
        self.curve.setData(np.array(self.steps_seen), np.array(self.losses))
        if rec.preview is not None:
            for view, array in zip(self.views, rec.preview):
                view.set_array(array)
        note = f" — {rec.notes[-1]}" if rec.notes else ""
        self.status.setText(f"step {rec.step}/{rec.total_steps}, loss {rec.loss:.4f}, {rec.steps_per_s:.1f} "
                            f"steps/s{note}")

    def _on_failed(self, message: str) -> None:
        self.status.setText(f"Pretraining stopped: {message}")

    def _on_stopped(self, saved: str) -> None:
        if self.job is not None:
            self.job.wait(10000)
        self.job = None
        self.saved = saved
        self.start_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.task.setEnabled(True)
        if saved:
            self.status.setText(f"Saved to {saved}. The Segmentation tab's next fresh training (Train with no "
                                "saved network, or Restart) starts from it.")

    def closeEvent(self, event) -> None:
        self.stop(wait=True)
        super().closeEvent(event)

    def done(self, result: int) -> None:
        self.stop(wait=True)
        super().done(result)
