"""DDPM (Ho et al. 2020) and DDIM (Song et al. 2021) with linear or cosine noise schedules, and an EMA of the
weights for sampling.

Indexing: the papers count steps t = 1..T; arrays here are 0-based, so ``betas[i]`` is β_(i+1) and the ε-model is
given the index i. ᾱ_0 = 1 (no noise) is the value "before" index 0.

Reverse-process variances, stated exactly because they differ:

* ``ddpm_sample`` is Algorithm 2 of Ho et al.: x_(t-1) = (x_t − β_t/√(1−ᾱ_t) ε̂)/√α_t + σ_t z with σ_t² = β_t
  (``variance="beta"``, the paper's choice) or σ_t² = β̃_t = (1−ᾱ_(t−1))/(1−ᾱ_t) β_t, the variance of the true
  posterior q(x_(t−1) | x_t, x_0) (``variance="posterior"``). No noise is added at the last step. The mean is
  computed in the equal form μ̃(x_t, x̂_0) = √ᾱ_(t−1) β_t/(1−ᾱ_t) x̂_0 + √α_t (1−ᾱ_(t−1))/(1−ᾱ_t) x_t, so that
  ``clip`` can act on x̂_0.
* ``ddim_sample`` is eq. 12 of Song et al.: x_s = √ᾱ_s x̂_0 + √(1−ᾱ_s−σ²) ε̂ + σ z with
  σ = η √((1−ᾱ_s)/(1−ᾱ_t)) √(1−ᾱ_t/ᾱ_s). With η = 1 and every step, σ² = β̃_t, so it is *exactly* DDPM with
  ``variance="posterior"`` (the same map for the same ε̂ and z), not with the paper's σ_t² = β_t; η = 0 is the
  deterministic DDIM.

``clip=True`` (both samplers) clamps x̂_0 to the data range [−1, 1] before it is used and, for DDIM, re-derives ε̂
from the clamped x̂_0, as the reference implementations do: a briefly trained model's x̂_0 at large t, divided by
√ᾱ_t ≈ 0.01, is otherwise far outside the data range and a few samples blow up. ``clip=False`` is the
algorithms as written. Either way DDIM(η = 1, all steps) and DDPM(posterior) remain the same map.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

SCHEDULES = ("linear", "cosine")
EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""ε̂(x_t, i) for a batch x_t and a (B,) long tensor of 0-based step indices"""

LINEAR_BETA_START = 1e-4
LINEAR_BETA_END = 0.02
"""Ho et al.'s endpoints for T = 1000; for other T both are scaled by 1000/T (Nichol & Dhariwal's rule), so the
total amount of noise, and hence ᾱ_T ≈ 4e-5, stays about the same"""
COSINE_OFFSET = 0.008
"""s in f(t) = cos²(((t/T) + s)/(1 + s) · π/2): keeps β_1 from being vanishingly small"""
MAX_BETA = 0.999
"""Nichol & Dhariwal clip the cosine schedule's β here, as ᾱ → 0 at t = T would make β_T = 1 (a singular step)"""


@dataclass(frozen=True)
class Schedule:
    kind: str
    betas: torch.Tensor
    """(T,) float64 β_t"""

    @property
    def T(self) -> int:
        return len(self.betas)

    @property
    def alphas(self) -> torch.Tensor:
        return 1.0 - self.betas

    @property
    def alpha_bars(self) -> torch.Tensor:
        """ᾱ_t = ∏_(s≤t) α_s"""
        return torch.cumprod(self.alphas, 0)

    def alpha_bar_prev(self) -> torch.Tensor:
        """ᾱ_(t−1) for every t, with ᾱ_0 = 1"""
        return torch.cat([torch.ones(1, dtype=torch.float64), self.alpha_bars[:-1]])

    def posterior_variance(self) -> torch.Tensor:
        """β̃_t = (1 − ᾱ_(t−1)) / (1 − ᾱ_t) · β_t, the variance of q(x_(t−1) | x_t, x_0)"""
        return (1 - self.alpha_bar_prev()) / (1 - self.alpha_bars) * self.betas


def make_schedule(kind: str, T: int) -> Schedule:
    if T < 1:
        raise ValueError(f"the number of diffusion steps must be >= 1, got {T}")
    if kind == "linear":
        scale = 1000.0 / T
        betas = torch.linspace(scale * LINEAR_BETA_START, min(scale * LINEAR_BETA_END, MAX_BETA), T, dtype=torch.float64)
    elif kind == "cosine":
        t = torch.arange(T + 1, dtype=torch.float64)
        f = torch.cos((t / T + COSINE_OFFSET) / (1 + COSINE_OFFSET) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=MAX_BETA)
    else:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
    return Schedule(kind, betas)


def _at(values: torch.Tensor, t: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Per-sample coefficients ``values[t]`` shaped to broadcast over an image batch ``like``."""
    return values.to(like.device)[t].to(like.dtype).view(-1, *([1] * (like.dim() - 1)))


def q_sample(schedule: Schedule, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """x_t ~ q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) in closed form, for 0-based indices ``t``; passing the same
    ``noise`` for every t gives a smooth picture of the forward process for a t slider."""
    ab = schedule.alpha_bars
    return _at(ab.sqrt(), t, x0) * x0 + _at((1 - ab).sqrt(), t, x0) * noise


def q_step(schedule: Schedule, x_prev: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """One forward step x_t ~ q(x_t | x_(t−1)) = N(√α_t x_(t−1), β_t I): what ``q_sample`` composes in one go."""
    return _at(schedule.alphas.sqrt(), t, x_prev) * x_prev + _at(schedule.betas.sqrt(), t, x_prev) * noise


def predict_x0(schedule: Schedule, x_t: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x̂_0 = (x_t − √(1−ᾱ_t) ε̂) / √ᾱ_t: the clean image the model currently believes in"""
    ab = schedule.alpha_bars
    return (x_t - _at((1 - ab).sqrt(), t, x_t) * eps) / _at(ab.sqrt(), t, x_t)


def ddpm_loss(model: EpsModel, schedule: Schedule, x0: torch.Tensor,
              generator: torch.Generator | None = None, labels: torch.Tensor | None = None, null: int = 0,
              drop: float = 0.0) -> torch.Tensor:
    """Algorithm 1 of Ho et al.: t ~ Uniform{1..T}, ε ~ N(0, I), loss = ‖ε − ε̂(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖²
    (mean over pixels and batch). t and ε are drawn on the CPU so a seeded run is the same on any device.
    A class-conditional model gets ``labels``, each replaced by the ``null`` label with probability ``drop``
    (classifier-free guidance's training)."""
    b = x0.shape[0]
    t = torch.randint(0, schedule.T, (b,), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
    x_t = q_sample(schedule, x0, t, noise)
    if labels is None:
        return F.mse_loss(model(x_t, t).float(), noise.float())
    kept = torch.rand(b, generator=generator) >= drop
    y = torch.where(kept, labels.cpu(), torch.full_like(labels.cpu(), null)).to(x0.device)
    return F.mse_loss(model(x_t, t, y).float(), noise.float())


def noisy_classifier_loss(classifier: EpsModel, schedule: Schedule, x0: torch.Tensor, labels: torch.Tensor,
                          generator: torch.Generator | None = None) -> torch.Tensor:
    """Cross-entropy of a classifier of noised images x_t (t uniform, as the DDPM's loss draws them): what
    classifier guidance needs, since it asks the classifier about every x_t of the reverse process."""
    t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator).to(x0.device)
    noise = torch.randn(x0.shape, generator=generator).to(x0.device, x0.dtype)
    return F.cross_entropy(classifier(q_sample(schedule, x0, t, noise), t).float(), labels)


@dataclass(frozen=True)
class ReverseStep:
    """One step of a reverse process, for a player that shows noise turning into images."""

    t: int
    """the 1-based step just taken, T ... 1 (DDIM: only the steps of its sub-sequence)"""
    x: torch.Tensor
    """x_(t−1) (DDIM: x at the next step of the sub-sequence), the sampler's state"""
    x0_pred: torch.Tensor
    """x̂_0 predicted from x_t, clamped to [−1, 1] for display; the chain itself never uses the clamped value"""


def _noise(shape: torch.Size | tuple[int, ...], generator: torch.Generator | None, like: torch.Tensor) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=generator).to(like.device, like.dtype)


@torch.no_grad()
def ddpm_sample(model: EpsModel, schedule: Schedule, x_T: torch.Tensor, generator: torch.Generator | None = None,
                variance: str = "beta", clip: bool = False) -> Iterator[ReverseStep]:
    """Ancestral sampling (Algorithm 2 of Ho et al.) from x_T, yielding every step; the last ``x`` is the sample.
    ``variance``: 'beta' (σ_t² = β_t, the paper's choice) or 'posterior' (σ_t² = β̃_t). Noise z is drawn on the
    CPU from ``generator`` at every step but the last."""
    step = AncestralStep(schedule, variance)
    x = x_T
    for i in reversed(range(schedule.T)):
        x, x0 = step(model, x, i, generator, clip)
        yield ReverseStep(i + 1, x, x0.clamp(-1, 1))


class AncestralStep:
    """x_t → x_(t−1) of ancestral sampling at the 0-based index i: the posterior mean of q(x_(t−1) | x_t, x̂_0)
    plus σ_t z (none at the last step). Samplers that steer the chain (engine.generative.restore) take the same
    steps."""

    def __init__(self, schedule: Schedule, variance: str = "beta") -> None:
        if variance not in ("beta", "posterior"):
            raise ValueError(f"variance must be 'beta' or 'posterior', got {variance!r}")
        self.schedule = schedule
        ab, ab_prev = schedule.alpha_bars, schedule.alpha_bar_prev()
        self.sigma = (schedule.betas if variance == "beta" else schedule.posterior_variance()).sqrt()
        self.coef_x0 = ab_prev.sqrt() * schedule.betas / (1 - ab)
        self.coef_xt = schedule.alphas.sqrt() * (1 - ab_prev) / (1 - ab)

    def __call__(self, model: EpsModel, x: torch.Tensor, i: int, generator: torch.Generator | None,
                 clip: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(x_(t−1), x̂_0) from x_t."""
        t = torch.full((x.shape[0],), i, dtype=torch.long, device=x.device)
        x0 = predict_x0(self.schedule, x, t, model(x, t).to(x.dtype))
        if clip:
            x0 = x0.clamp(-1, 1)
        mean = float(self.coef_x0[i]) * x0 + float(self.coef_xt[i]) * x
        return (mean + float(self.sigma[i]) * _noise(x.shape, generator, x) if i > 0 else mean), x0


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """``steps`` evenly spaced 0-based indices from T−1 down to 0 (both ends where steps ≥ 2; T−1 alone for one)."""
    if not 1 <= steps <= T:
        raise ValueError(f"DDIM steps must lie in 1..{T}, got {steps}")
    return sorted({round(v) for v in torch.linspace(T - 1, 0, steps).tolist()}, reverse=True)


@torch.no_grad()
def ddim_sample(model: EpsModel, schedule: Schedule, x_T: torch.Tensor, steps: int, eta: float = 0.0,
                generator: torch.Generator | None = None, clip: bool = False) -> Iterator[ReverseStep]:
    """DDIM (Song et al. eq. 12) over a sub-sequence of ``steps`` indices, yielding every step taken. η = 0 is
    deterministic; η = 1 with all T steps is DDPM with σ_t² = β̃_t (see the module docstring)."""
    if eta < 0:
        raise ValueError(f"eta must be >= 0, got {eta}")
    ab = schedule.alpha_bars
    seq = ddim_timesteps(schedule.T, steps)
    x = x_T
    for k, i in enumerate(seq):
        t = torch.full((x.shape[0],), i, dtype=torch.long, device=x.device)
        eps = model(x, t).to(x.dtype)
        x0 = predict_x0(schedule, x, t, eps)
        if clip:
            x0 = x0.clamp(-1, 1)
            eps = (x - float(ab[i].sqrt()) * x0) / float((1 - ab[i]).sqrt())
        ab_t = ab[i]
        ab_s = ab[seq[k + 1]] if k + 1 < len(seq) else torch.tensor(1.0, dtype=torch.float64)
        sigma = eta * ((1 - ab_s) / (1 - ab_t)).sqrt() * (1 - ab_t / ab_s).sqrt()
        direction = (1 - ab_s - sigma ** 2).clamp(min=0).sqrt()
        x = float(ab_s.sqrt()) * x0 + float(direction) * eps
        if k + 1 < len(seq):
            x = x + float(sigma) * _noise(x.shape, generator, x)
        yield ReverseStep(i + 1, x, x0.clamp(-1, 1))


def last(steps: Iterator[ReverseStep]) -> torch.Tensor:
    """Run a sampler to the end and return its sample."""
    out = None
    for out in steps:
        pass
    if out is None:
        raise ValueError("the sampler took no step")
    return out.x


class EMA:
    """An exponential moving average of a model's weights, which gives visibly cleaner diffusion samples than
    the raw weights. The decay is warmed up as min(decay, (1 + n)/(10 + n)) after n updates, so that a short run
    is not dominated by the random initial weights."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = min(self.decay, (1 + self.updates) / (10 + self.updates))
        self.updates += 1
        for shadow, p in zip(self.model.parameters(), model.parameters()):
            shadow.lerp_(p.detach(), 1.0 - d)
        for shadow, b in zip(self.model.buffers(), model.buffers()):
            shadow.copy_(b)
