"""Generative training off the GUI thread, with plain-data signals.

``GenerativeWorker`` drives ``GenerativeTrainer.run()`` and checks stop between records. It saves the model into
its folder every SNAPSHOT_INTERVAL_S while training and again when training ends, so the sampling views can work
from a recent copy during a long run (DDPM snapshots hold the EMA weights that sampling uses).
"""
from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Signal

from engine.generative.config import GenerativeConfig
from engine.generative.trainer import GenerativeTrainer
from wsv_gui.generative.model_files import MODEL_FILES_LOCK
from wsv_gui.workers import Worker

SNAPSHOT_INTERVAL_S = 30.0


class GenerativeWorker(Worker):
    saved = Signal(str)  # a snapshot was written to this folder; training goes on
    what = "generative training"

    def __init__(self, config: GenerativeConfig, out: Path, snapshot_interval_s: float = SNAPSHOT_INTERVAL_S) -> None:
        super().__init__()
        self.config, self.out, self.snapshot_interval_s = config, out, snapshot_interval_s
        self._last_snapshot = time.monotonic()

    def create(self) -> GenerativeTrainer:
        trainer = GenerativeTrainer(self.config)
        self._last_snapshot = time.monotonic()
        return trainer

    def after_record(self, trainer: GenerativeTrainer, record) -> None:
        if time.monotonic() - self._last_snapshot >= self.snapshot_interval_s:
            self._save(trainer)
            self.saved.emit(str(self.out))
            self._last_snapshot = time.monotonic()

    def finish(self, trainer: GenerativeTrainer) -> str:
        if not trainer.step:
            return ""
        self._save(trainer)
        return str(self.out)

    def _save(self, trainer: GenerativeTrainer) -> None:
        with MODEL_FILES_LOCK:
            trainer.save(self.out)
