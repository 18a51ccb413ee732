"""Runs the engine's trainer in a QThread and passes its plain-data records to the GUI as signals.

The worker checks pause and stop between steps, so the longest the window waits on it is one training step.
The trainer is created inside the thread (it opens its own store connection there) and the model is saved to
the project whenever training stops, so what was learnt survives closing the window.
"""
from __future__ import annotations

import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.models.registry import ModelError
from engine.training.config import TrainConfig
from engine.training.trainer import Trainer, TrainingError


class TrainingWorker(QObject):
    progress = Signal(object)  # engine.training.records.ProgressRecord
    failed = Signal(str)
    stopped = Signal(str)  # where the model was saved ("" if it was not)

    def __init__(self, project_root: Path, config: TrainConfig, model_dir: Path) -> None:
        super().__init__()
        self.project_root, self.config, self.model_dir = project_root, config, model_dir
        self.preview_image_id: int | None = None
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    def stop(self) -> None:
        self._stop.set()
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    @Slot()
    def run(self) -> None:
        saved = ""
        trainer = None
        try:
            trainer = Trainer(self.project_root, self.config)
            steps = trainer.run()
            try:
                while not self._stop.is_set():
                    self._running.wait()
                    if self._stop.is_set():
                        break
                    trainer.preview_image_id = self.preview_image_id
                    try:
                        record = next(steps)
                    except StopIteration:
                        break
                    self.progress.emit(record)
            finally:
                steps.close()
            if trainer.step:
                trainer.save(self.model_dir)
                saved = str(self.model_dir)
        except (TrainingError, ModelError, ValueError) as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug must reach the user, not kill the thread silently
            self.failed.emit(f"training failed: {exc}\n\n{traceback.format_exc(limit=5)}")
        finally:
            if trainer is not None:
                trainer.close()
            self.stopped.emit(saved)


class TrainingThread(QThread):
    """Owns a worker for one training session."""

    def __init__(self, worker: TrainingWorker, parent=None) -> None:
        super().__init__(parent)
        self.worker = worker
        worker.moveToThread(self)
        self.started.connect(worker.run)
        worker.stopped.connect(lambda _: self.quit())
