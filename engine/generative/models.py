"""The three generative models behind one interface (build, sample, save, load). Saved as safetensors weights
plus a JSON description; loading never unpickles anything."""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Iterator

import torch
from torch import nn

from engine.errors import UserError
from engine.generative import vae as vae_ops
from engine.generative.config import GenerativeConfig
from engine.generative.diffusion import EMA, ReverseStep, Schedule, ddim_sample, ddpm_sample, last, make_schedule
from engine.generative.gan import Discriminator, Generator, latent
from engine.generative.guidance import ClassifierGuided, FreeGuided, NoisyClassifier
from engine.generative.latent import LatentEps
from engine.generative.unet import UNet
from engine.generative.vae import ConvVAE
from engine.io.weights import WeightsError, load_weights, read_description, save_weights

DESCRIPTION_FILE = "generative.json"
WEIGHTS_FILE = "generative.safetensors"
FORMAT_VERSION = 1


class GenerativeModelError(UserError):
    """A saved model that cannot be read, with the reason in words."""


def unet_mults(size: int) -> tuple[int, ...]:
    """Down to 8 x 8 at most three times (16 px: two levels): enough context for small images at CPU cost."""
    return (1, 2, 2) if size >= 32 else (1, 2)


@dataclass
class GenerativeModel:
    config: GenerativeConfig
    net: nn.Module
    """ConvVAE, Generator (GAN) or UNet (DDPM, the raw trained weights)"""
    discriminator: Discriminator | None = None
    ema: EMA | None = None
    """DDPM: the averaged weights that sampling uses"""
    schedule: Schedule | None = None
    classifier: NoisyClassifier | None = None
    """conditional DDPM trained with a classifier of noised images: for classifier guidance"""
    vae: ConvVAE | None = None
    """a latent DDPM's frozen VAE, whose decoder turns its samples into images"""
    steps_done: int = 0
    data_name: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def kind(self) -> str:
        return self.config.model

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    @property
    def shape(self) -> tuple[int, int, int]:
        c = self.config
        return c.channels, c.image_size, c.image_size

    @property
    def latent(self) -> bool:
        """A DDPM in a VAE's latent space (engine.generative.latent)."""
        return self.vae is not None

    def to_images(self, codes: torch.Tensor) -> torch.Tensor:
        """A latent DDPM's codes (in its unit-variance scale) decoded to images in [−1, 1]."""
        return self.vae.decode(codes * self.config.latent_scale)

    def noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """The model's input noise for ``n`` samples: latents z (VAE, GAN), x_T (DDPM) or z_T (latent DDPM).
        Fixing it (same seed) gives comparable grids over training."""
        if self.latent:
            return torch.randn(n, self.config.vae_config["latent_dim"], generator=generator).to(self.device)
        if self.kind == "ddpm":
            return torch.randn(n, *self.shape, generator=generator).to(self.device)
        return latent(n, self.config.latent_dim, generator, self.device)

    def eps_model(self) -> nn.Module:
        """DDPM: the EMA weights where there are any."""
        return (self.ema.model if self.ema is not None else self.net).eval()

    @property
    def classes(self) -> list[str]:
        """The classes a conditional model draws (empty for an unconditional one)."""
        return list(self.config.class_names) if self.config.conditional else []

    @torch.no_grad()
    def decode(self, noise: torch.Tensor, generator: torch.Generator | None = None, ddim_steps: int | None = None,
               eta: float = 0.0, clip: bool = True, labels: torch.Tensor | None = None,
               guidance: float | None = None, classifier_scale: float = 0.0) -> torch.Tensor:
        """Samples in [−1, 1] from given noise (``noise``); DDPM runs DDIM when ``ddim_steps`` is set. A conditional
        DDPM draws the classes ``labels`` (B,) with classifier-free guidance at ``guidance`` (default: the
        model's) and, where it has a classifier, classifier guidance at ``classifier_scale``."""
        if self.kind != "ddpm":
            if labels is not None and not self.classes:
                raise GenerativeModelError("this model was trained without classes: it cannot draw a given class")
            if labels is None and self.classes:
                raise GenerativeModelError("a conditional GAN draws given classes: name the classes to draw")
            if labels is not None:
                if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < len(self.classes):
                    raise GenerativeModelError(f"class labels must lie in 0..{len(self.classes) - 1}")
                labels = labels.to(self.device)
            was = self.net.training
            self.net.eval()
            out = self.net.decode(noise) if self.kind == "vae" else self.net(noise, labels)
            self.net.train(was)
            return out
        return last(self.reverse_process(noise, generator, ddim_steps, eta, clip, labels=labels, guidance=guidance,
                                         classifier_scale=classifier_scale))

    def sample(self, n: int, generator: torch.Generator | None = None, ddim_steps: int | None = None,
               eta: float = 0.0, clip: bool = True, labels: torch.Tensor | None = None,
               guidance: float | None = None, classifier_scale: float = 0.0) -> torch.Tensor:
        return self.decode(self.noise(n, generator), generator, ddim_steps, eta, clip, labels, guidance,
                           classifier_scale)

    def guided(self, labels: torch.Tensor | None, guidance: float | None = None, classifier_scale: float = 0.0):
        """The ε-model the samplers run: the (EMA) network, steered toward ``labels`` where given."""
        eps = self.eps_model()
        if labels is None:
            if classifier_scale:
                raise GenerativeModelError("classifier guidance needs the classes to steer toward")
            return eps
        if not self.classes:
            raise GenerativeModelError("this DDPM was trained without classes: it cannot draw a given class")
        if len(labels) and not 0 <= int(labels.min()) <= int(labels.max()) < len(self.classes):
            raise GenerativeModelError(f"class labels must lie in 0..{len(self.classes) - 1}")
        labels = labels.to(self.device)
        eps = FreeGuided(eps, labels, self.config.guidance if guidance is None else guidance)
        if classifier_scale:
            if self.classifier is None:
                raise GenerativeModelError("this DDPM was trained without a classifier (--classifier): no "
                                           "classifier guidance")
            eps = ClassifierGuided(eps, self.classifier.eval(), self.schedule, labels, classifier_scale)
        return eps

    def reverse_process(self, x_T: torch.Tensor, generator: torch.Generator | None = None,
                        ddim_steps: int | None = None, eta: float = 0.0, clip: bool = True,
                        variance: str = "beta", labels: torch.Tensor | None = None, guidance: float | None = None,
                        classifier_scale: float = 0.0) -> Iterator[ReverseStep]:
        """DDPM only: every step of ancestral sampling (``ddim_steps`` None) or of DDIM, with x_t and x̂_0, for a
        player. ``variance`` applies to ancestral sampling (see diffusion.py); ``labels``, ``guidance`` and
        ``classifier_scale`` as for ``decode``."""
        if self.kind != "ddpm":
            raise GenerativeModelError(f"a {self.kind} has no reverse process; only ddpm does")
        eps = self.guided(labels, guidance, classifier_scale)
        clip = clip and not self.latent  # codes are not bounded as pixels are
        if ddim_steps is None:
            steps = ddpm_sample(eps, self.schedule, x_T, generator, variance, clip)
        else:
            steps = ddim_sample(eps, self.schedule, x_T, ddim_steps, eta, generator, clip)
        return self._decoded(steps) if self.latent else steps

    @torch.no_grad()
    def _decoded(self, steps: Iterator[ReverseStep]) -> Iterator[ReverseStep]:
        """A latent DDPM's reverse process as images: each step's z and ẑ_0 through the decoder."""
        for step in steps:
            yield ReverseStep(step.t, self.to_images(step.x), self.to_images(step.x0_pred))


def build_generative(config: GenerativeConfig, device: torch.device | str = "cpu") -> GenerativeModel:
    c = config
    if c.model == "vae":
        return GenerativeModel(c, ConvVAE(c.channels, c.image_size, c.latent_dim, c.base_channels, c.recon).to(device))
    if c.latent_vae is not None:
        v = GenerativeConfig(**c.vae_config)
        vae = ConvVAE(v.channels, v.image_size, v.latent_dim, v.base_channels, v.recon).to(device).eval()
        vae.requires_grad_(False)
        net = LatentEps(v.latent_dim, hidden=8 * c.base_channels).to(device)
        return GenerativeModel(c, net, ema=EMA(net, c.ema_decay), schedule=make_schedule(c.schedule, c.timesteps),
                               vae=vae)
    classes = len(c.class_names) if c.conditional else 0
    if c.conditional and classes < 2:
        raise GenerativeModelError(f"a conditional {c.model} needs at least two classes")
    if c.model == "gan":
        return GenerativeModel(c, Generator(c.channels, c.image_size, c.latent_dim, c.base_channels, classes).to(device),
                               Discriminator(c.channels, c.image_size, c.base_channels, classes).to(device))
    net = UNet(c.channels, c.base_channels, unet_mults(c.image_size), classes).to(device)
    classifier = NoisyClassifier(c.channels, c.image_size, classes, c.base_channels).to(device) if c.classifier \
        else None
    return GenerativeModel(c, net, ema=EMA(net, c.ema_decay), schedule=make_schedule(c.schedule, c.timesteps),
                           classifier=classifier)


def _parts(model: GenerativeModel) -> dict[str, nn.Module]:
    parts = {"net": model.net}
    if model.discriminator is not None:
        parts["discriminator"] = model.discriminator
    if model.ema is not None:
        parts["ema"] = model.ema.model
    if model.classifier is not None:
        parts["classifier"] = model.classifier
    if model.vae is not None:
        parts["vae"] = model.vae
    return parts


def save_generative(model: GenerativeModel, folder: str | Path) -> Path:
    folder = Path(folder)
    state = {f"{name}.{k}": v for name, part in _parts(model).items() for k, v in part.state_dict().items()}
    description = {"format_version": FORMAT_VERSION, "config": model.config.as_dict(), "steps_done": model.steps_done,
                   "ema_updates": model.ema.updates if model.ema else 0, "data": model.data_name, "extra": model.extra}
    save_weights(state, folder / WEIGHTS_FILE, description, folder / DESCRIPTION_FILE)
    return folder


def _description(folder: Path) -> tuple[dict, GenerativeConfig]:
    """A saved model's description and config, checked, without its weights."""
    path, weights = folder / DESCRIPTION_FILE, folder / WEIGHTS_FILE
    if not path.is_file():
        raise GenerativeModelError(f"{folder} holds no generative model ({DESCRIPTION_FILE} expected; train one "
                                   f"with wsv generate train)")
    if not weights.is_file():
        raise GenerativeModelError(f"{folder} has no {WEIGHTS_FILE}")
    try:
        raw = read_description(weights, path)
        if raw.get("format_version", FORMAT_VERSION) > FORMAT_VERSION:
            raise GenerativeModelError(f"{path} was written by a newer version of WSV Studio")
        known = {f.name for f in fields(GenerativeConfig)}
        return raw, GenerativeConfig(**{k: v for k, v in raw["config"].items() if k in known})
    except WeightsError as exc:
        raise GenerativeModelError(str(exc)) from None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise GenerativeModelError(f"{path} is not a valid generative model description: {exc}") from None


def read_config(folder: str | Path) -> GenerativeConfig:
    """What a saved model is (kind, image size, ...), read without loading its weights."""
    return _description(Path(folder))[1]


def load_generative(folder: str | Path, device: torch.device | str = "cpu") -> GenerativeModel:
    folder = Path(folder)
    raw, config = _description(folder)
    weights = folder / WEIGHTS_FILE
    try:
        state = load_weights(weights)
    except WeightsError as exc:
        raise GenerativeModelError(str(exc)) from None
    model = build_generative(config, "cpu")
    try:
        for name, part in _parts(model).items():
            prefix = name + "."
            part.load_state_dict({k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}, strict=True)
    except RuntimeError as exc:
        raise GenerativeModelError(f"{weights} does not match its description: {exc}") from None
    if model.ema is not None:
        model.ema.updates = int(raw.get("ema_updates", 0))
    for part in _parts(model).values():
        part.to(device).eval()
    model.steps_done, model.data_name, model.extra = int(raw.get("steps_done", 0)), str(raw.get("data", "")), raw.get("extra", {})
    return model


def reconstructions(model: GenerativeModel, x: torch.Tensor) -> torch.Tensor:
    """VAE: originals and their reconstructions interleaved (original, reconstruction, ...), for a grid whose
    columns come in pairs."""
    was = model.net.training
    model.net.eval()
    rec = vae_ops.reconstruct(model.net, x)
    model.net.train(was)
    return torch.stack([x, rec], 1).flatten(0, 1)
