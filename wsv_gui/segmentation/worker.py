"""Runs the engine's segmentation trainer in a QThread and passes its plain-data records to the GUI as signals.

The worker checks pause and stop between steps, so the longest the window waits on it is one training step.
The model is saved to the project whenever training stops, so what was learnt survives closing the window.
"""
from __future__ import annotations

import threading
from pathlib import Path

from engine.training.config import TrainConfig
from engine.training.trainer import Trainer
from wsv_gui.workers import Worker


class TrainingWorker(Worker):
    def __init__(self, project_root: Path, config: TrainConfig, model_dir: Path) -> None:
        super().__init__()
        self.project_root, self.config, self.model_dir = project_root, config, model_dir
        self.preview_image_id: int | None = None
        self._running = threading.Event()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        super().stop()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def create(self) -> Trainer:
        return Trainer(self.project_root, self.config)

    def before_record(self, trainer: Trainer) -> bool:
        self._running.wait()
        trainer.preview_image_id = self.preview_image_id
        return super().before_record(trainer)

    def finish(self, trainer: Trainer) -> str:
        if not trainer.step:
            return ""
        trainer.save(self.model_dir)
        return str(self.model_dir)
