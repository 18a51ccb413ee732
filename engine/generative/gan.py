"""A DCGAN (Radford et al. 2016) for 16-64 px images in [−1, 1], trained with the non-saturating loss.

One ``gan_step`` is a discriminator update on a real and a fake batch, then a generator update on fresh fakes:
D minimises −log D(x) − log(1 − D(G(z))); G minimises −log D(G(z)) (Goodfellow et al.'s non-saturating form,
which gives G strong gradients exactly when D rejects its samples, early in training).

The conditional GAN (``num_classes`` > 0; Mirza & Osindero 2014) gives both networks the label: G reads the
class as a one-hot vector beside z (a learnt embedding as large as z let G ignore z and draw one image per class),
and D adds a projection term ⟨embed(y), φ(x)⟩ of its pooled features to its
logit (Miyato & Koyama 2018), so it judges "a real image of class y", not only "a real image". The fakes of a
step carry the real batch's labels in D's update and uniformly drawn labels in G's.
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

    def __init__(self, channels: int = 1, size: int = 32, latent_dim: int = DEFAULT_LATENT, base: int = 32,
                 num_classes: int = 0) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.num_classes = num_classes
        n = stride2_levels(size)
        widths = [base * min(2 ** i, 8) for i in reversed(range(n))]
        inputs = latent_dim + num_classes
        layers: list[nn.Module] = [nn.ConvTranspose2d(inputs, widths[0], 4, 1, 0, bias=False),
                                   nn.BatchNorm2d(widths[0]), nn.ReLU(True)]
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True)]
        layers += [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(_init)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            if y is None:
                raise ValueError("a conditional generator needs the classes to draw")
            z = torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], 1)
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """Image → one stride-2 convolution per level down to 4 x 4 → one logit; no batch norm on the first layer,
    as in DCGAN."""

    def __init__(self, channels: int = 1, size: int = 32, base: int = 32, num_classes: int = 0) -> None:
        super().__init__()
        n = stride2_levels(size)
        widths = [base * min(2 ** i, 8) for i in range(n)]
        layers: list[nn.Module] = [nn.Conv2d(channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]
        for cin, cout in zip(widths, widths[1:]):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
        layers += [nn.Conv2d(widths[-1], 1, 4, 1, 0)]
        self.net = nn.Sequential(*layers)
        """all but the last layer make φ(x), the 4 x 4 feature map the logit (the last layer) reads"""
        self.label_emb = nn.Embedding(num_classes, widths[-1]) if num_classes else None
        self.apply(_init)
        if self.label_emb is not None:
            nn.init.normal_(self.label_emb.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.net[:-1](x)
        logit = self.net[-1](h).flatten()
        if self.label_emb is not None:
            if y is None:
                raise ValueError("a conditional discriminator needs the images' classes")
            logit = logit + (self.label_emb(y) * h.sum((2, 3))).sum(1)
        return logit


def latent(n: int, dim: int, generator: torch.Generator | None, device: torch.device | str) -> torch.Tensor:
    """z ~ N(0, I), drawn on the CPU so that a seeded run gives the same z on any device."""
    return torch.randn(n, dim, generator=generator).to(device)


def discriminator_step(G: Generator, D: Discriminator, opt_d: torch.optim.Optimizer, real: torch.Tensor,
                       generator: torch.Generator | None = None, labels: torch.Tensor | None = None
                       ) -> dict[str, float]:
    """One update of D only (the fakes are detached); returns 'd_loss', 'd_real' = mean D(x) and 'd_fake' =
    mean D(G(z)) as probabilities, measured before the update. A conditional GAN's fakes take the real images'
    ``labels``."""
    with torch.no_grad():
        fake = G(latent(real.shape[0], G.latent_dim, generator, real.device), labels)
    real_logits, fake_logits = D(real, labels).float(), D(fake, labels).float()
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
    time): the non-saturating loss −log D(G(z)); a conditional G draws uniformly chosen classes."""
    z = latent(batch_size, G.latent_dim, generator, device)
    y = torch.randint(0, G.num_classes, (batch_size,), generator=generator).to(device) if G.num_classes else None
    logits = D(G(z, y), y).float()
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
             real: torch.Tensor, generator: torch.Generator | None = None, labels: torch.Tensor | None = None
             ) -> dict[str, float]:
    """D then G, once each: 'd_loss', 'g_loss', 'd_real', 'd_fake'."""
    out = discriminator_step(G, D, opt_d, real, generator, labels)
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
