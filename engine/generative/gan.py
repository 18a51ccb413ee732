"""A DCGAN (Radford et al. 2016) for 16-64 px images in [−1, 1], trained with the non-saturating loss.

One ``gan_step`` is a discriminator update on a real and a fake batch, then a generator update on fresh fakes:
D minimises −log D(x) − log(1 − D(G(z))); G minimises −log D(G(z)) (Goodfellow et al.'s non-saturating form,
which gives G strong gradients exactly when D rejects its samples, early in training).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from engine.generative.vae import stride2_levels

DEFAULT_LATENT = 64


def _init(module: nn.Module) -> None:
    """DCGAN's initialisation: N(0, 0.02) for convolutions, N(1, 0.02) for batch-norm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


class Generator(nn.Module):
    """z (B, latent) → 4 x 4 → one transposed-convolution doubling per level up to ``size``, tanh output."""

    def __init__(self, channels: int = 1, size: int = 32, latent_dim: int = DEFAULT_LATENT, base: int = 32) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        n = stride2_levels(size)
        widths = [base * min(2 ** i, 8) for i in reversed(range(n))]
        layers: list[nn.Module] = [nn.ConvTranspose2d(latent_dim, widths[0], 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(_init)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """Image → one stride-2 convolution per level down to 4 x 4 → one logit; no batch norm on the first layer,
    as in DCGAN."""

    def __init__(self, channels: int = 1, size: int = 32, base: int = 32) -> None:
        super().__init__()
        n = stride2_levels(size)
        widths = [base * min(2 ** i, 8) for i in range(n)]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)
        self.apply(_init)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten()


def latent(n: int, dim: int, generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
    """z ~ N(0, I), drawn on the CPU so that a seeded run gives the same z on any device."""
    return torch.randn(n, dim, generator=generator).to(device)


def discriminator_step(G: Generator, D: Discriminator, opt_d: torch.optim.Optimizer, real: torch.Tensor,
                       generator: torch.Generator | None = None) -> dict[str, float]:
    """One update of D only (the fakes are detached); returns 'd_loss', 'd_real' = mean D(x) and 'd_fake' =
    mean D(G(z)) as probabilities, measured before the update."""
    with torch.no_grad():
        fake = G(latent(real.shape[0], G.latent_dim, generator, real.device))
    real_logits, fake_logits = D(real).float(), D(fake).float()
    loss = F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()  # −log σ(r) − log(1 − σ(f))
    _check(loss, "discriminator")
    opt_d.zero_grad(set_to_none=True)
    loss.backward()
    opt_d.step()
    return {"d_loss": loss.item(), "d_real": torch.sigmoid(real_logits).mean().item(),
            "d_fake": torch.sigmoid(fake_logits).mean().item()}


def generator_step(G: Generator, D: Discriminator, opt_g: torch.optim.Optimizer, batch_size: int,
                   device: torch.device | str, generator: torch.Generator | None = None) -> dict[str, float]:
    """One update of G only (D's gradients are computed but D is not stepped and its grads are cleared next
    time): the non-saturating loss −log D(G(z))."""
    logits = D(G(latent(batch_size, G.latent_dim, generator, device))).float()
    loss = F.softplus(-logits).mean()
    _check(loss, "generator")
    opt_g.zero_grad(set_to_none=True)
    loss.backward()
    opt_g.step()
    return {"g_loss": loss.item()}


def _check(loss: torch.Tensor, which: str) -> None:
    if not torch.isfinite(loss.detach()):
        raise FloatingPointError(f"the {which} loss became {loss.item()}")


def gan_step(G: Generator, D: Discriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
             real: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, float]:
    """D then G, once each: 'd_loss', 'g_loss', 'd_real', 'd_fake'."""
    out = discriminator_step(G, D, opt_d, real, generator)
    out.update(generator_step(G, D, opt_g, real.shape[0], real.device, generator))
    return out


def mean_pairwise_distance(x: torch.Tensor, limit: int = 256) -> float:
    """Mean L2 distance between distinct pairs among the first ``limit`` images (flattened)."""
    f = x[:limit].flatten(1).float()
    if len(f) < 2:
        raise ValueError("need at least two images to measure diversity")
    d = torch.cdist(f, f)
    return (d.sum() / (len(f) * (len(f) - 1))).item()


def sample_diversity(samples: torch.Tensor, real: torch.Tensor, limit: int = 256) -> float:
    """Mean pairwise distance of samples over that of real images: about 1 for a healthy generator, well below 1
    (say < 0.5) hints at mode collapse, where G maps many z to a few images."""
    return mean_pairwise_distance(samples, limit) / max(mean_pairwise_distance(real, limit), 1e-12)
