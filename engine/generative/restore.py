"""Diffusion as an image tool (lecture 000's applications): filling a hole and doubling the resolution of an image
with a trained DDPM, by steering its reverse process instead of training for the task.

* Inpainting (RePaint, Lugmayr et al. 2022): at every step the kept pixels are replaced by the original image
  noised to that step, x_(t−1) ~ q(x_(t−1) | x_0), and the hole by the model's step; each step is taken
  ``resample`` times, going back one step with fresh noise in between (x_t ~ q(x_t | x_(t−1))), so that what
  fills the hole has time to agree with what surrounds it.
* 2× super-resolution (ILVR, Choi et al. 2021): at every step the sample's low frequencies φ(x) = up(down(x))
  (2 × 2 means, then each value repeated over its 2 × 2 block) are replaced by those of the low-resolution image
  noised to that step: x ← x − φ(x) + φ(y_(t−1)). The result's 2 × 2 means equal the low-resolution image exactly;
  the model invents only the detail within each block.

Both take every one of the T ancestral steps (RePaint's ``resample`` times more), with the model's EMA weights; a
conditional model runs unconditionally (its null label). A latent DDPM cannot do either: the pixels to keep have
no place in its codes. ``on_step(done, total)``, called after each of the T steps, lets a window show progress
and stop a run (by raising).
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

from engine.generative.diffusion import AncestralStep, q_sample, q_step
from engine.generative.models import GenerativeModel, GenerativeModelError

StepCallback = Callable[[int, int], None]


def _check(model: GenerativeModel, image: torch.Tensor, size: int) -> None:
    if model.kind != "ddpm":
        raise GenerativeModelError(f"inpainting and super-resolution run a DDPM's reverse process; this is a {model.kind}")
    if model.latent:
        raise GenerativeModelError("inpainting and super-resolution need a DDPM trained on pixels; this one works in "
                                   "a VAE's latent space")
    c = model.config
    if image.dim() != 4 or image.shape[1] != c.channels or image.shape[-2:] != (size, size):
        raise GenerativeModelError(f"the model works on {c.channels} x {size} x {size} images; got "
                                   f"{tuple(image.shape[1:])}")


def _noised(model: GenerativeModel, x0: torch.Tensor, i: int, generator: torch.Generator | None) -> torch.Tensor:
    """x0 noised to the level the chain has after the step at 0-based index i (clean after the last)."""
    if i == 0:
        return x0
    t = torch.full((x0.shape[0],), i - 1, dtype=torch.long, device=x0.device)
    return q_sample(model.schedule, x0, t, torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype))


@torch.no_grad()
def inpaint(model: GenerativeModel, image: torch.Tensor, keep: torch.Tensor, generator: torch.Generator | None = None,
            resample: int = 1, on_step: StepCallback | None = None) -> torch.Tensor:
    """``image`` (B, C, S, S) in [−1, 1] with its hole filled where ``keep`` ((B, 1, S, S) bool) is False; the kept
    pixels come back unchanged."""
    c = model.config
    _check(model, image, c.image_size)
    if resample < 1:
        raise ValueError(f"resample must be at least 1, got {resample}")
    image, keep = image.to(model.device), keep.to(model.device)
    eps, step = model.eps_model(), AncestralStep(model.schedule)
    x = torch.randn(image.shape, generator=generator).to(image.device)
    for i in reversed(range(model.schedule.T)):
        repeats = resample if i > 0 else 1
        for r in range(repeats):
            x_prev, _ = step(eps, x, i, generator, clip=True)
            x_prev = torch.where(keep, _noised(model, image, i, generator), x_prev)
            if r + 1 < repeats:  # back up one step with fresh noise, and take the step again
                t = torch.full((x.shape[0],), i, dtype=torch.long, device=x.device)
                x = q_step(model.schedule, x_prev, t, torch.randn(x.shape, generator=generator).to(x.device))
            else:
                x = x_prev
        if on_step is not None:
            on_step(model.schedule.T - i, model.schedule.T)
    return x


def low_frequencies(x: torch.Tensor) -> torch.Tensor:
    """φ(x): the 2 × 2 means of x, each repeated over its block."""
    return F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")


@torch.no_grad()
def super_resolve(model: GenerativeModel, low: torch.Tensor, generator: torch.Generator | None = None,
                  on_step: StepCallback | None = None) -> torch.Tensor:
    """A (B, C, S, S) image in [−1, 1] whose 2 × 2 means are ``low`` (B, C, S/2, S/2), with the detail drawn by the
    model (S: the model's image size)."""
    c = model.config
    _check(model, low, c.image_size // 2)
    reference = F.interpolate(low.to(model.device), scale_factor=2, mode="nearest")
    eps, step = model.eps_model(), AncestralStep(model.schedule)
    x = torch.randn(reference.shape, generator=generator).to(reference.device)
    for i in reversed(range(model.schedule.T)):
        x, _ = step(eps, x, i, generator, clip=True)
        x = x - low_frequencies(x) + low_frequencies(_noised(model, reference, i, generator))
        if on_step is not None:
            on_step(model.schedule.T - i, model.schedule.T)
    return x


def with_hole(image: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """``image`` with its hole (``keep`` False) in mid-grey, to show beside the filled result."""
    return torch.where(keep, image, torch.zeros_like(image))


def bicubic(low: torch.Tensor) -> torch.Tensor:
    """Plain 2× bicubic enlargement, clipped to [−1, 1]: what super-resolution is compared with."""
    return F.interpolate(low, scale_factor=2, mode="bicubic", align_corners=False).clamp(-1, 1)
