"""Generative training settings, with defaults that give recognisable 32 px digits on a CPU in minutes."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from engine.generative.data import CLASS_SOURCES, SIZES
from engine.generative.diffusion import SCHEDULES
from engine.generative.vae import RECONSTRUCTIONS
from engine.settings import SettingError, check, setting

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
    model: str = setting("ddpm", choices=MODELS, cli=False, help="vae, gan or ddpm")
    source: str = setting("builtin:digits", cli=False, help="'builtin:digits' or a project folder")
    image_size: int = setting(32, choices=SIZES, flag="size", help="side of the square training images, in pixels")
    channels: int = setting(1, choices=(1, 3), cli=False, help="1 grayscale, 3 colour")
    random_crops: int = setting(0, low=0, help="extra random crops per large project image (see "
                                               "data.project_images)")
    batch_size: int = setting(64, low=2, help="images per step")
    lr: float | None = setting(None, positive=True, help="learning rate (default: the model's recipe, DEFAULT_LR)")
    steps: int = setting(2000, low=1, help="training steps")
    max_minutes: float | None = setting(None, positive=True, help="stop after this many minutes of training")
    base_channels: int = setting(32, low=8, help="width of every network at full resolution; 64+ is better on a "
                                                 "GPU")
    latent_dim: int = setting(32, low=1, help="VAE and GAN latent size")
    beta: float = setting(1.0, low=0, help="VAE: weight of the KL term")
    recon: str = setting("mse", choices=RECONSTRUCTIONS, help="VAE reconstruction loss (see vae.py)")
    schedule: str = setting("linear", choices=SCHEDULES, help="DDPM noise schedule")
    timesteps: int = setting(1000, low=2, help="DDPM T")
    ema_decay: float = setting(0.999, low=0, high=0.99999,
                               help="DDPM: decay of the weight average used for sampling")
    conditional: bool = setting(False, help="DDPM and GAN: learn each class's images, p(x | class): the digits' "
                                            "labels, or a project's boxed objects or tagged images (--class-source)")
    class_source: str = setting("boxes", choices=CLASS_SOURCES,
                                help="conditional models on a project: learn its boxed objects (crops of the boxes) "
                                     "or its tagged images (whole images tagged with one class)")
    label_dropout: float = setting(0.1, low=0, high=1,
                                   help="conditional DDPM: share of labels replaced by 'no class' in training, "
                                        "which makes the same network unconditional for classifier-free guidance")
    guidance: float = setting(3.0, low=0, help="conditional DDPM: classifier-free guidance scale of the previews "
                                               "and the default of sampling (0 unconditional, 1 conditional)")
    classifier: bool = setting(False, help="conditional DDPM: also train a classifier of noised images, for "
                                           "classifier guidance")
    latent_vae: str | None = setting(None, help="DDPM: train in the latent space of this saved VAE run (frozen), "
                                                "decoding samples with it: latent diffusion")
    vae_config: dict = field(default_factory=dict)
    """a latent DDPM: the VAE's own config (set by the trainer), so the saved model rebuilds it"""
    latent_scale: float = 1.0
    """a latent DDPM: the codes' standard deviation over the training set, which they are divided by"""
    class_names: list[str] = field(default_factory=list)
    """the classes a conditional model learnt, in label order (set by the trainer from its data)"""
    preview_ddim_steps: int = setting(25, low=1, cli=False, help="steps of the DDIM sampling of previews")
    """DDPM previews sample with deterministic DDIM over this many steps: 1000 DDPM steps per preview would
    stall a CPU run (capped at timesteps)"""
    preview_count: int = setting(16, low=1, cli=False, help="samples per preview")
    preview_interval_s: float = 2.0
    seed: int = setting(0, help="seed of sampling and initial weights")
    device: str = setting("auto", help="auto (CUDA where there is one, else the CPU), cpu or cuda:N")
    threads: int | None = setting(None, low=1, help="CPU threads for torch (default: torch's)")

    def __post_init__(self) -> None:
        check(self)
        if self.conditional and self.model == "vae":
            raise SettingError("conditional applies to the ddpm and the gan, not the vae")
        if self.classifier and self.model != "ddpm":
            raise SettingError(f"classifier applies to the ddpm, not the {self.model}")
        if self.latent_vae is not None and (self.model != "ddpm" or self.conditional):
            raise SettingError("latent_vae applies to the unconditional ddpm")
        if self.classifier and not self.conditional:
            raise SettingError("classifier guidance needs the classes: train with conditional on")

    @property
    def classes_from(self) -> str | None:
        """Where a project's labelled images come from (engine.generative.data.CLASS_SOURCES); None for an
        unconditional model, which learns the whole images."""
        return self.class_source if self.conditional else None

    @property
    def effective_lr(self) -> float:
        return DEFAULT_LR[self.model] if self.lr is None else self.lr

    def as_dict(self) -> dict:
        return asdict(self)
