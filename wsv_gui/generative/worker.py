"""Generative training off the GUI thread, with plain-data signals.

``GenerativeWorker`` drives ``GenerativeTrainer.run()`` and checks stop between records. It saves the model into
its folder every SNAPSHOT_INTERVAL_S while training and again when training ends, so the sampling views can work
from a recent copy during a long run (DDPM snapshots hold the EMA weights that sampling uses).
"""
from __future__ import annotations

import threading
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from engine.annotations.store import StoreError
from engine.generative.config import GenerativeConfig
from engine.generative.trainer import GenerativeTrainer
from engine.training.trainer import TrainingError
from wsv_gui.generative.model_files import MODEL_FILES_LOCK

SNAPSHOT_INTERVAL_S = 30.0


class GenerativeWorker(QObject):
    progress = Signal(object)  # engine.generative.records.GenerativeRecord
    saved = Signal(str)  # a snapshot was written to this folder; training goes on
    failed = Signal(str)
    stopped = Signal(str)  # the folder holding the final model ("" if none was saved)

    def __init__(self, config: GenerativeConfig, out: Path, snapshot_interval_s: float = SNAPSHOT_INTERVAL_S) -> None:
        super().__init__()
        self.config, self.out, self.snapshot_interval_s = config, out, snapshot_interval_s
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @Slot()
    def run(self) -> None:
        saved = ""
        try:
            trainer = GenerativeTrainer(self.config)
            records = trainer.run()
            last_snapshot = time.monotonic()
            try:
                for record in records:
                    self.progress.emit(record)
                    if self._stop.is_set():
                        break
                    if time.monotonic() - last_snapshot >= self.snapshot_interval_s:
                        self._save(trainer)
                        self.saved.emit(str(self.out))
                        last_snapshot = time.monotonic()
            finally:
                records.close()
            if trainer.step:
                self._save(trainer)
                saved = str(self.out)
        except (TrainingError, StoreError) as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug must reach the user, not kill the thread silently
            self.failed.emit(f"generative training failed: {exc}\n\n{traceback.format_exc(limit=5)}")
        finally:
            self.stopped.emit(saved)

    def _save(self, trainer: GenerativeTrainer) -> None:
        with MODEL_FILES_LOCK:
            trainer.save(self.out)
