"""Detector training settings, with defaults chosen so that a new user just presses Train."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.detection.models import DEFAULT_DETECTOR, DETECTORS
from engine.settings import SettingError, check, setting
from engine.training.common import devices

OPTIMIZERS = ("sgd", "adamw")
DEFAULT_LR = {"sgd": 0.01, "adamw": 1e-4}
"""torchvision's detection reference recipes scaled to a batch of a few images"""


@dataclass
class DetectionConfig:
    model: str = setting(DEFAULT_DETECTOR, choices=tuple(DETECTORS), help="torchvision detector")
    steps: int = setting(1000, low=1, help="training steps")
    max_minutes: float | None = setting(None, positive=True, help="stop after this many minutes of training")
    batch_size: int = setting(4, low=1, help="images per step")
    optimizer: str = setting("sgd", choices=OPTIMIZERS, help="optimizer")
    lr: float | None = setting(None, positive=True, help="learning rate (default: the optimizer's, DEFAULT_LR)")
    weight_decay: float = setting(1e-4, low=0, help="weight decay")
    warmup_steps: int = setting(50, low=0, help="linear warm-up steps (capped at a fifth of the run), then cosine "
                                                "decay")
    working_size: int = setting(512, low=32, help="longer image side given to the detector, in pixels (images "
                                                  "are never upscaled)")
    min_size: int | None = setting(None, low=32, help="the detector's internal resize of the shorter side "
                                                      "(default: torchvision's for the model)")
    max_size: int | None = setting(None, low=32, help="the detector's internal cap on the longer side")
    scale_jitter: tuple[float, float] = (0.75, 1.33)
    holdout_fraction: float = setting(0.2, low=0, high=0.95, flag="holdout",
                                      help="fraction of images held out for evaluation where none has the test "
                                           "split")
    holdout_seed: int = 0
    device: str = setting("auto", suggestions=devices, help="auto (CUDA where there is one, else the CPU), cpu or "
                                                             "cuda:N")
    threads: int | None = setting(None, low=1, help="CPU threads for torch (default: torch's)")
    seed: int = setting(0, help="seed of sampling, augmentation and initial weights")
    preview_interval_s: float = 0.5
    eval_interval_s: float = 30.0
    """how often to score the held-out images (mAP@0.5); 0 never"""
    allow_download: bool = setting(False, help="let torchvision download ImageNet backbone weights that are not in "
                                               "the torch cache")

    def __post_init__(self) -> None:
        check(self)
        lo, hi = self.scale_jitter
        if not 0 < lo <= hi:
            raise SettingError(f"scale_jitter must be (low, high) with 0 < low <= high, got {self.scale_jitter}")
        self.scale_jitter = (float(lo), float(hi))

    @property
    def effective_lr(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr

    def as_dict(self) -> dict:
        return asdict(self)
