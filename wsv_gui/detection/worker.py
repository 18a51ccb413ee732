"""Detector training and detection off the GUI thread, with plain-data signals.

``DetectionWorker`` drives either trainer (a torchvision network or HOG + linear SVM), checks stop between
records, saves the detector into the project and scores the held-out images when it ends. ``DetectorService``
lives in its own thread and answers "detect this image" requests with a saved detector, reloading it when a
new one is saved, so looking at any image after training shows its detections without blocking the window.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from engine.detection.config import DetectionConfig
from engine.detection.hog_svm import HogSvmConfig, HogSvmTrainer
from engine.detection.inference import detect_file, load_detector
from engine.detection.models import DetectorError
from engine.detection.trainer import DetectionTrainer
from engine.io.images import ImageLoadError
from wsv_gui.workers import Worker


class DetectionWorker(Worker):
    """Drives either detector trainer and, when it ends, saves the detector and scores the held-out images."""

    evaluated = Signal(object)  # DetectionScores, or None without held-out images
    what = "detector training"

    def __init__(self, project_root: Path, config: DetectionConfig | HogSvmConfig, out: Path) -> None:
        super().__init__()
        self.project_root, self.config, self.out = project_root, config, out
        self.preview_image_id: int | None = None

    def create(self) -> DetectionTrainer | HogSvmTrainer:
        if isinstance(self.config, HogSvmConfig):
            return HogSvmTrainer(self.project_root, self.config)
        return DetectionTrainer(self.project_root, self.config)

    def before_record(self, trainer) -> bool:
        if isinstance(trainer, DetectionTrainer):
            trainer.preview_image_id = self.preview_image_id
        return super().before_record(trainer)

    def finish(self, trainer) -> str:
        if isinstance(trainer, HogSvmTrainer) and trainer.detector is None:
            return ""  # stopped before every class had its first SVM: nothing to keep
        if isinstance(trainer, DetectionTrainer) and not trainer.step:
            return ""
        trainer.save(self.out)
        self.evaluated.emit(trainer.evaluate())
        return str(self.out)


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
