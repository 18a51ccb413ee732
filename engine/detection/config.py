"""Detector training settings, with defaults chosen so that a new user just presses Train."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.detection.models import DEFAULT_DETECTOR, DETECTORS
from engine.settings import SettingError
from engine.training.common import check_max_minutes

OPTIMIZERS = ("sgd", "adamw")
DEFAULT_LR = {"sgd": 0.01, "adamw": 1e-4}
"""torchvision's detection reference recipes scaled to a batch of a few images"""


@dataclass
class DetectionConfig:
    model: str = DEFAULT_DETECTOR
    steps: int = 1000
    max_minutes: float | None = None
    batch_size: int = 4
    optimizer: str = "sgd"
    lr: float | None = None
    """None: DEFAULT_LR[optimizer]"""
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    """linear warm-up (capped at a fifth of the run), then cosine decay"""
    working_size: int = 512
    """longer image side the detector is given, in pixels (images are never upscaled)"""
    min_size: int | None = None
    """the detector's internal resize of the shorter side; None: torchvision's default for the model"""
    max_size: int | None = None
    scale_jitter: tuple[float, float] = (0.75, 1.33)
    holdout_fraction: float = 0.2
    """fraction of annotated images set aside for evaluation where no image has the 'test' split"""
    holdout_seed: int = 0
    device: str = "auto"
    """'auto' picks CUDA when available, else the CPU"""
    threads: int | None = None
    seed: int = 0
    preview_interval_s: float = 0.5
    eval_interval_s: float = 30.0
    """how often to score the held-out images (mAP@0.5); 0 never"""
    allow_download: bool = False
    """let torchvision download ImageNet backbone weights that are not in the torch cache"""

    def __post_init__(self) -> None:
        check_max_minutes(self.max_minutes)
        if self.model not in DETECTORS:
            raise SettingError(f"model must be one of {', '.join(DETECTORS)}, got {self.model!r}")
        if self.optimizer not in OPTIMIZERS:
            raise SettingError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.lr is not None and not self.lr > 0:
            raise SettingError(f"lr must be positive, got {self.lr}")
        if self.steps < 1 or self.batch_size < 1 or self.working_size < 32:
            raise SettingError("steps and batch size must be >= 1, working size >= 32")
        if not 0.0 <= self.holdout_fraction < 1.0:
            raise SettingError(f"holdout_fraction must lie in [0, 1), got {self.holdout_fraction}")
        lo, hi = self.scale_jitter
        if not 0 < lo <= hi:
            raise SettingError(f"scale_jitter must be (low, high) with 0 < low <= high, got {self.scale_jitter}")
        self.scale_jitter = (float(lo), float(hi))

    @property
    def effective_lr(self) -> float:
        return DEFAULT_LR[self.optimizer] if self.lr is None else self.lr

    def as_dict(self) -> dict:
        return asdict(self)
