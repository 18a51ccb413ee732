"""Generative training settings, with defaults that give recognisable 32 px digits on a CPU in minutes."""
from __future__ import annotations

from dataclasses import asdict, dataclass

from engine.generative.data import SIZES
from engine.generative.diffusion import SCHEDULES
from engine.generative.vae import RECONSTRUCTIONS
from engine.settings import SettingError
from engine.training.common import check_max_minutes

MODELS = ("vae", "gan", "ddpm")
DEFAULT_LR = {"vae": 1e-3, "gan": 2e-4, "ddpm": 2e-4}
"""Adam rates from the usual recipes: DCGAN's 2e-4 (with β1 = 0.5), Ho et al.'s 2e-4, 1e-3 for a small VAE"""


CPU_OVERRIDES = {"image_size": 16, "base_channels": 16}
"""Where no GPU is present: small images and narrow networks, so a first run shows samples within minutes (a
DDPM at 16 px and 16 channels draws recognisable digits in about two minutes on a 2-core CPU; the 32 px defaults
need a GPU or much longer)."""
CPU_LR = {"ddpm": 1e-3}
"""learning rates that beat the recipes' on a CPU's short runs (with CPU_OVERRIDES)"""


def device_defaults(cuda: bool) -> dict:
    """The settings to start from on this machine: the recipes' on a GPU, CPU_OVERRIDES on a CPU."""
    return {} if cuda else dict(CPU_OVERRIDES)


def default_lr(model: str, cuda: bool) -> float:
    return DEFAULT_LR[model] if cuda else CPU_LR.get(model, DEFAULT_LR[model])


@dataclass
class GenerativeConfig:
    model: str = "ddpm"
    source: str = "builtin:digits"
    """'builtin:digits' or a project folder"""
    image_size: int = 32
    channels: int = 1
    """1 grayscale, 3 colour"""
    random_crops: int = 0
    """extra random crops per large project image (see data.project_images)"""
    batch_size: int = 64
    lr: float | None = None
    """None: DEFAULT_LR[model]"""
    steps: int = 2000
    max_minutes: float | None = None
    base_channels: int = 32
    """width of every network at full resolution; 64+ is better on a GPU"""
    latent_dim: int = 32
    """VAE and GAN latent size"""
    beta: float = 1.0
    """VAE: weight of the KL term"""
    recon: str = "mse"
    """VAE reconstruction loss, 'mse' or 'bce' (see vae.py)"""
    schedule: str = "linear"
    """DDPM β schedule: 'linear' or 'cosine'"""
    timesteps: int = 1000
    """DDPM T"""
    ema_decay: float = 0.999
    """DDPM: decay of the weight average used for sampling"""
    preview_ddim_steps: int = 25
    """DDPM previews sample with deterministic DDIM over this many steps: 1000 DDPM steps per preview would
    stall a CPU run (capped at timesteps)"""
    preview_count: int = 16
    preview_interval_s: float = 2.0
    seed: int = 0
    device: str = "auto"
    """'auto' picks CUDA when available, else the CPU"""
    threads: int | None = None

    def __post_init__(self) -> None:
        check_max_minutes(self.max_minutes)
        if self.model not in MODELS:
            raise SettingError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if self.image_size not in SIZES:
            raise SettingError(f"image size must be one of {SIZES}, got {self.image_size}")
        if self.channels not in (1, 3):
            raise SettingError(f"channels must be 1 or 3, got {self.channels}")
        if self.lr is not None and not self.lr > 0:
            raise SettingError(f"lr must be positive, got {self.lr}")
        if self.steps < 1 or self.batch_size < 2 or self.base_channels < 8 or self.latent_dim < 1:
            raise SettingError("steps must be >= 1, batch size >= 2, base channels >= 8, latent size >= 1")
        if self.beta < 0:
            raise SettingError(f"beta must be >= 0, got {self.beta}")
        if self.recon not in RECONSTRUCTIONS:
            raise SettingError(f"recon must be one of {RECONSTRUCTIONS}, got {self.recon!r}")
        if self.schedule not in SCHEDULES:
            raise SettingError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.timesteps < 2:
            raise SettingError(f"timesteps must be >= 2, got {self.timesteps}")
        if not 0.0 <= self.ema_decay < 1.0:
            raise SettingError(f"ema_decay must lie in [0, 1), got {self.ema_decay}")
        if self.preview_ddim_steps < 1 or self.preview_count < 1:
            raise SettingError("preview DDIM steps and the preview count must be >= 1")

    @property
    def effective_lr(self) -> float:
        return DEFAULT_LR[self.model] if self.lr is None else self.lr

    def as_dict(self) -> dict:
        return asdict(self)
