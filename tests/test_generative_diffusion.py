"""DDPM/DDIM: schedules against their formulas, the closed-form forward process against iterated steps, the
samplers against an oracle ε-predictor on Gaussian data, and a tiny U-Net that learns a toy set."""
from __future__ import annotations

import math

import pytest
import torch

from engine.generative.diffusion import (EMA, ddim_sample, ddim_timesteps, ddpm_loss, ddpm_sample, last,
                                         make_schedule, q_sample, q_step)
from engine.generative.unet import UNet


def test_linear_schedule_matches_formula():
    s = make_schedule("linear", 1000)
    assert s.betas[0].item() == pytest.approx(1e-4)
    assert s.betas[-1].item() == pytest.approx(0.02)
    assert s.betas[499].item() == pytest.approx(1e-4 + 499 / 999 * (0.02 - 1e-4))
    assert s.alpha_bars[1].item() == pytest.approx((1 - 1e-4) * (1 - (1e-4 + (0.02 - 1e-4) / 999)))
    # T = 100: endpoints scaled by 1000/T
    s100 = make_schedule("linear", 100)
    assert s100.betas[0].item() == pytest.approx(1e-3)
    assert s100.betas[-1].item() == pytest.approx(0.2)


def test_cosine_schedule_matches_formula():
    T, off = 1000, 0.008
    f = lambda t: math.cos((t / T + off) / (1 + off) * math.pi / 2) ** 2  # noqa: E731
    s = make_schedule("cosine", T)
    for t in (1, 10, 500, 900):
        assert s.alpha_bars[t - 1].item() == pytest.approx(f(t) / f(0), rel=1e-9)
    assert s.betas[0].item() == pytest.approx(1 - f(1) / f(0))
    assert s.betas[499].item() == pytest.approx(1 - f(500) / f(499))
    assert s.betas[-1].item() == pytest.approx(0.999)  # the clip: unclipped it would be exactly 1
    assert torch.all(s.betas[1:] >= s.betas[:-1])


def test_closed_form_forward_matches_iterated_steps():
    """Both ways of reaching x_t from a fixed x_0 must give N(√ᾱ_t x_0, (1 − ᾱ_t)). With n = 40 000 draws per
    pixel the standard error is ≈ 0.005 for the mean and ≈ 0.007 for the variance (√(2/n)·σ²); 0.03 is > 4 of them."""
    s = make_schedule("cosine", 100)
    g = torch.Generator().manual_seed(0)
    x0 = torch.tensor([-1.0, -0.3, 0.0, 0.5, 1.0], dtype=torch.float64)
    n, i = 40_000, 59
    x0b = x0.expand(n, -1)
    closed = q_sample(s, x0b, torch.full((n,), i), torch.randn(n, 5, generator=g, dtype=torch.float64))
    x = x0b.clone()
    for k in range(i + 1):
        x = q_step(s, x, torch.full((n,), k), torch.randn(n, 5, generator=g, dtype=torch.float64))
    ab = s.alpha_bars[i].item()
    for got in (closed, x):
        assert torch.allclose(got.mean(0), math.sqrt(ab) * x0, atol=0.03)
        assert torch.allclose(got.var(0), torch.full((5,), 1 - ab, dtype=torch.float64), atol=0.03)
    assert torch.allclose(closed.mean(0), x.mean(0), atol=0.03)


def gaussian_oracle(schedule, m: float, s2: float):
    """The exact E[ε | x_t] when x_0 ~ N(m, s2) per pixel: x_t = √ᾱ x_0 + √(1−ᾱ) ε is jointly Gaussian with ε."""
    ab = schedule.alpha_bars

    def eps(x, t):
        a = ab[t].to(x.dtype).view(-1, *([1] * (x.dim() - 1)))
        return (1 - a).sqrt() * (x - a.sqrt() * m) / (a * s2 + 1 - a)
    return eps


@pytest.mark.parametrize("clip", [False, True])
def test_ddim_eta1_all_steps_is_ddpm_with_posterior_variance(clip):
    """η = 1 over all steps gives σ_t² = β̃_t: the very same update as DDPM with the posterior variance, so with
    the same x_T and the same noise draws the chains agree to rounding (float64 here)."""
    s = make_schedule("linear", 50)
    model = gaussian_oracle(s, 0.3, 0.25)
    x_T = torch.randn(8, 1, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    a = last(ddim_sample(model, s, x_T, 50, 1.0, torch.Generator().manual_seed(2), clip=clip))
    b = last(ddpm_sample(model, s, x_T, torch.Generator().manual_seed(2), "posterior", clip=clip))
    assert torch.allclose(a, b, atol=1e-9)
    c = last(ddpm_sample(model, s, x_T, torch.Generator().manual_seed(2), "beta", clip=clip))
    assert not torch.allclose(a, c, atol=1e-3)  # the paper's σ_t² = β_t is a different chain


@pytest.mark.parametrize("sampler", ["ddpm_beta", "ddpm_posterior", "ddim_eta1", "ddim_eta0_all"])
def test_samplers_recover_gaussian_data_with_oracle(sampler):
    """With the exact ε-predictor every sampler over all T = 100 steps should land near the data distribution
    N(0.3, 0.5²). n = 20 000 pixels: the standard error is 0.004 on the mean and 0.003 on the std; the tolerance
    (0.03) also allows for the discretisation error of 100 steps (DDIM η = 0 reaches std 0.488)."""
    s = make_schedule("linear", 100)
    model = gaussian_oracle(s, 0.3, 0.25)
    x_T = torch.randn(1250, 1, 4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    g = torch.Generator().manual_seed(4)
    steps = {"ddpm_beta": lambda: ddpm_sample(model, s, x_T, g, "beta"),
             "ddpm_posterior": lambda: ddpm_sample(model, s, x_T, g, "posterior"),
             "ddim_eta1": lambda: ddim_sample(model, s, x_T, 100, 1.0, g),
             "ddim_eta0_all": lambda: ddim_sample(model, s, x_T, 100, 0.0, g)}[sampler]
    x = last(steps())
    assert x.mean().item() == pytest.approx(0.3, abs=0.03)
    assert x.std().item() == pytest.approx(0.5, abs=0.03)


def test_deterministic_ddim_converges_with_more_steps():
    """DDIM η = 0 on a sub-sequence is a coarse discretisation: on Gaussian data it under-disperses (std 0.37
    at 10 steps), and the error must shrink as steps are added."""
    s = make_schedule("linear", 100)
    model = gaussian_oracle(s, 0.3, 0.25)
    x_T = torch.randn(1250, 1, 4, 4, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    errors = [abs(last(ddim_sample(model, s, x_T, n)).std().item() - 0.5) for n in (10, 20, 50, 100)]
    assert errors == sorted(errors, reverse=True) and errors[-1] < 0.02
    again = last(ddim_sample(model, s, x_T, 20, generator=torch.Generator().manual_seed(9)))
    assert torch.equal(again, last(ddim_sample(model, s, x_T, 20)))  # η = 0 draws no noise


def test_ddim_timesteps_and_frames():
    assert ddim_timesteps(1000, 1) == [999]
    seq = ddim_timesteps(1000, 50)
    assert seq[0] == 999 and seq[-1] == 0 and len(seq) == 50
    s = make_schedule("cosine", 30)
    frames = list(ddpm_sample(gaussian_oracle(s, 0.0, 1.0), s, torch.randn(2, 1, 4, 4)))
    assert [f.t for f in frames] == list(range(30, 0, -1))
    assert all(f.x0_pred.abs().max() <= 1 for f in frames)


def test_tiny_ddpm_learns_a_toy_set(one_thread):
    """Two patterns at 8 px (left half bright or right half bright, ±0.8): 300 Adam steps should lower the loss
    clearly, and the EMA model's samples should move from noise (std ≈ 1 everywhere, mean ≈ 0) toward the data's
    per-pixel mean (0) and std (0.8)."""
    torch.manual_seed(0)
    left = torch.full((1, 8, 8), -0.8)
    left[:, :, :4] = 0.8
    data = torch.stack([left, left.flip(-1)] * 32)
    s = make_schedule("linear", 100)
    model = UNet(channels=1, base=16, mults=(1, 2))
    ema = EMA(model, 0.99)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(300):
        loss = ddpm_loss(model, s, data, g)
        opt.zero_grad()
        loss.backward()
        opt.step()
        ema.update(model)
        losses.append(loss.item())
    assert sum(losses[-50:]) / 50 < 0.5 * sum(losses[:20]) / 20
    x = last(ddim_sample(ema.model, s, torch.randn(64, 1, 8, 8, generator=g), steps=25, generator=g, clip=True))
    # samples should be bimodal ±0.8 per pixel: |x| near 0.8, and the halves anti-correlated
    assert abs(x.abs().mean().item() - 0.8) < 0.25
    corr = torch.corrcoef(torch.stack([x[:, 0, :, :4].mean((1, 2)), x[:, 0, :, 4:].mean((1, 2))]))[0, 1]
    assert corr < -0.5
