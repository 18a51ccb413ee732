"""Steering a class-conditional DDPM's samples toward a class (lecture 004):

* classifier-free guidance (Ho & Salimans 2022): ε̃ = ε(x_t, t, ∅) + s · (ε(x_t, t, y) − ε(x_t, t, ∅)), with one
  network trained with its labels dropped now and then. s = 0 is the unconditional model, s = 1 the conditional
  one, s > 1 trades variety for fidelity to the class;
* classifier guidance (Dhariwal & Nichol 2021, Algorithm 2, as lecture 004 gives it for DDIM): a classifier
  p_φ(y | x_t, t) trained on noised images steers any ε-model, ε̃ = ε(x_t, t) − s · √(1 − ᾱ_t) · ∇_x log p_φ(y | x_t, t).

Both wrap an ε-model into another ε-model (x_t, t) → ε̃, so every sampler (ancestral DDPM, DDIM) takes them.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.generative.diffusion import Schedule
from engine.generative.unet import ResBlock, _norm, timestep_embedding


class FreeGuided:
    """Classifier-free guidance of a conditional U-Net toward ``labels`` (B,) at scale ``scale``."""

    def __init__(self, net: nn.Module, labels: torch.Tensor, scale: float) -> None:
        self.net, self.labels, self.scale = net, labels, scale

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.scale == 0:
            return self.net(x, t)  # the null label: the unconditional model itself
        if self.scale == 1:
            return self.net(x, t, self.labels)
        null = torch.full_like(self.labels, self.net.num_classes)
        cond, uncond = self.net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([self.labels, null])).chunk(2)
        return uncond + self.scale * (cond - uncond)


class NoisyClassifier(nn.Module):
    """p_φ(y | x_t, t): a small convolutional classifier of noised images, told the step t through the same
    sinusoidal embedding as the U-Net (an image at t = 900 is mostly noise and must be judged as such)."""

    def __init__(self, channels: int, size: int, num_classes: int, base: int = 32) -> None:
        super().__init__()
        self.base = base
        tdim = base * 4
        self.time_mlp = nn.Sequential(nn.Linear(base, tdim), nn.SiLU(), nn.Linear(tdim, tdim))
        self.stem = nn.Conv2d(channels, base, 3, padding=1)
        self.blocks = nn.ModuleList([ResBlock(base, base, tdim), ResBlock(base, 2 * base, tdim),
                                     ResBlock(2 * base, 2 * base, tdim)])
        self.norm = _norm(2 * base)
        self.head = nn.Linear(2 * base, num_classes)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_mlp(timestep_embedding(t, self.base))
        h = self.stem(x)
        for i, block in enumerate(self.blocks):
            h = block(h, temb)
            if i < len(self.blocks) - 1:
                h = F.avg_pool2d(h, 2)
        return self.head(F.silu(self.norm(h)).mean((2, 3)))


class ClassifierGuided:
    """Classifier guidance of any ε-model toward ``labels`` (B,) with a noise-aware classifier at ``scale``."""

    def __init__(self, eps_model, classifier: nn.Module, schedule: Schedule, labels: torch.Tensor,
                 scale: float) -> None:
        self.eps_model, self.classifier, self.labels, self.scale = eps_model, classifier, labels, scale
        self.schedule = schedule

    def __call__(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        eps = self.eps_model(x, t)
        if self.scale == 0:
            return eps
        with torch.enable_grad():  # the samplers run under no_grad
            x_in = x.detach().float().requires_grad_(True)
            log_p = F.log_softmax(self.classifier(x_in, t).float(), 1)
            grad = torch.autograd.grad(log_p[torch.arange(len(x_in)), self.labels].sum(), x_in)[0]
        sigma = (1 - self.schedule.alpha_bars.to(x.device)[t]).sqrt().float()[:, None, None, None]
        return eps - (self.scale * sigma * grad).to(eps.dtype)
