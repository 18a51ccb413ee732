"""Using a saved detector, whichever method trained it: one interface for the CLI and the GUI.

``load_detector(folder)`` reads ``detector.json`` and returns an object with ``classes``, ``working_size``,
``method``, ``score_floor`` and ``default_score_threshold`` (scores mean different things per method: class
probabilities for the networks, SVM margins for HOG + SVM) and ``detect(pixels)`` giving raw detections.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from engine.detection.hog_svm import METHOD as HOG_SVM, HogSvmDetector
from engine.detection.models import RAW_SCORE_FLOOR, DetectorConfig, load_torchvision_detector, read_detector_json, \
    run_detector
from engine.detection.postprocess import Detections
from engine.io.images import load_image


class TorchvisionDetector:
    method = "torchvision"
    score_floor = RAW_SCORE_FLOOR
    default_score_threshold = 0.5

    def __init__(self, model: torch.nn.Module, config: DetectorConfig, device: torch.device) -> None:
        self.model = model
        self.config = config
        self.device = device
        self.classes = config.classes
        self.working_size = config.working_size

    def detect(self, pixels: np.ndarray) -> Detections:
        """Raw detections in the pixel coordinates of ``pixels`` (H, W, 3) uint8."""
        return run_detector(self.model, pixels, self.device, self.device.type == "cuda", self.config.label_offset)


def load_detector(folder: str | Path, device: str | torch.device = "cpu") -> TorchvisionDetector | HogSvmDetector:
    """Raises DetectorError where the folder holds no usable detector."""
    if read_detector_json(folder).get("method") == HOG_SVM:
        return HogSvmDetector.load(folder)
    device = torch.device(device)
    model, config = load_torchvision_detector(folder, device)
    return TorchvisionDetector(model, config, device)


def detect_file(detector: TorchvisionDetector | HogSvmDetector, path: str | os.PathLike) -> tuple[Detections, tuple[int, int]]:
    """Raw detections for an image file, in its original pixels, and its original (width, height); the image is
    given to the detector at the working size it was trained at. Raises ImageLoadError."""
    image = load_image(path, max_side=detector.working_size)
    return detector.detect(image.pixels).scaled(1.0 / image.scale), image.original_size
