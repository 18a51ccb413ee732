"""Detector training and detection off the GUI thread, with plain-data signals.

``DetectionWorker`` drives either trainer (a torchvision network or HOG + linear SVM), checks stop between
records, scores the held-out images and saves the detector into the project when it ends. ``DetectorService``
lives in its own thread and answers "detect this image" requests with a saved detector, reloading it when a
new one is saved, so looking at any image after training shows its detections without blocking the window.
"""
from __future__ import annotations

import threading
import traceback
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.detection.config import DetectionConfig
from engine.detection.hog_svm import HogSvmConfig, HogSvmTrainer
from engine.detection.inference import detect_file, load_detector
from engine.detection.models import DetectorError
from engine.detection.trainer import DetectionTrainer
from engine.io.images import ImageLoadError
from engine.models.registry import ModelError
from engine.training.trainer import TrainingError


class DetectionWorker(QObject):
    progress = Signal(object)  # DetectionRecord or HogSvmRecord
    evaluated = Signal(object)  # DetectionScores, or None without held-out images
    failed = Signal(str)
    stopped = Signal(str)  # where the detector was saved ("" if it was not)

    def __init__(self, project_root: Path, config: DetectionConfig | HogSvmConfig, out: Path) -> None:
        super().__init__()
        self.project_root, self.config, self.out = project_root, config, out
        self.preview_image_id: int | None = None
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    @Slot()
    def run(self) -> None:
        saved = ""
        trainer = None
        try:
            hog = isinstance(self.config, HogSvmConfig)
            trainer = HogSvmTrainer(self.project_root, self.config) if hog else DetectionTrainer(self.project_root, self.config)
            records = trainer.run()
            try:
                for record in records:
                    self.progress.emit(record)
                    if self._stop.is_set():
                        break
                    if not hog:
                        trainer.preview_image_id = self.preview_image_id
            finally:
                records.close()
            if hog and trainer.detector is None:
                return  # stopped before the first class was trained: nothing to keep
            if not hog and not trainer.step:
                return
            trainer.save(self.out)
            saved = str(self.out)
            self.evaluated.emit(trainer.evaluate())
        except (TrainingError, DetectorError, ModelError, ValueError) as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug must reach the user, not kill the thread silently
            self.failed.emit(f"detector training failed: {exc}\n\n{traceback.format_exc(limit=5)}")
        finally:
            if trainer is not None:
                trainer.close()
            self.stopped.emit(saved)


class WorkerThread(QThread):
    """Owns one worker object for the life of the thread."""

    def __init__(self, worker: QObject, parent=None) -> None:
        super().__init__(parent)
        self.worker = worker
        worker.moveToThread(self)
        self.started.connect(worker.run)
        worker.stopped.connect(lambda _: self.quit())


class DetectorService(QObject):
    detected = Signal(int, object)  # image id, raw Detections in original pixels
    failed = Signal(int, str)
    request = Signal(int, str, str)  # image id, image path, detector folder (queued into the service's thread)

    def __init__(self) -> None:
        super().__init__()
        self._detector = None
        self._loaded_from: tuple[str, float] | None = None
        self.request.connect(self._detect)

    @Slot(int, str, str)
    def _detect(self, image_id: int, path: str, folder: str) -> None:
        try:
            stamp = (folder, (Path(folder) / "detector.json").stat().st_mtime)
            if stamp != self._loaded_from:
                self._detector, self._loaded_from = load_detector(folder), stamp
            detections, _ = detect_file(self._detector, path)
            self.detected.emit(image_id, detections)
        except (OSError, DetectorError, ImageLoadError) as exc:
            self.failed.emit(image_id, str(exc))
