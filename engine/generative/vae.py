"""A convolutional variational auto-encoder (Kingma & Welling 2014) for 16-64 px images in [−1, 1].

Loss per image, averaged over the batch: reconstruction + β · KL(q(z|x) ‖ N(0, I)).

* ``recon="mse"``: Σ over pixels of (x̂ − x)² with x̂ = tanh(decoder output), both in [−1, 1]. This is the negative
  log-likelihood of a Gaussian decoder with variance ½ up to a constant, so β = 1 is a proper ELBO for that
  decoder; a larger β trades sharper reconstructions for a smoother latent space.
* ``recon="bce"``: Σ over pixels of the binary cross-entropy between sigmoid(decoder output) and the target mapped
  to [0, 1], the Bernoulli decoder of the original paper (sensible for near-binary images such as digits).

Summing over pixels rather than averaging keeps the KL term's weight independent of image size.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

RECONSTRUCTIONS = ("mse", "bce")
LOGVAR_LIMIT = 10.0
"""log σ² is clamped to ±10 so that exp() cannot overflow in the KL term or the reparameterisation"""


def stride2_levels(size: int) -> int:
    """Stride-2 stages from ``size`` down to 4 x 4."""
    levels = size.bit_length() - 3
    if size < 8 or 4 << levels != size:
        raise ValueError(f"image size must be a power of two >= 8, got {size}")
    return levels


class ConvVAE(nn.Module):
    def __init__(self, channels: int = 1, size: int = 32, latent_dim: int = 32, base: int = 32,
                 recon: str = "mse") -> None:
        super().__init__()
        if recon not in RECONSTRUCTIONS:
            raise ValueError(f"reconstruction loss must be one of {RECONSTRUCTIONS}, got {recon!r}")
        self.recon, self.latent_dim = recon, latent_dim
        n = stride2_levels(size)
        widths = [base * min(2 ** i, 8) for i in range(n)]
        enc, cin = [], channels
        for w in widths:
            enc += [nn.Conv2d(cin, w, 4, 2, 1), nn.BatchNorm2d(w), nn.LeakyReLU(0.2)]
            cin = w
        self.encoder = nn.Sequential(*enc, nn.Flatten())
        self.to_stats = nn.Linear(cin * 16, 2 * latent_dim)
        self.from_z = nn.Linear(latent_dim, cin * 16)
        self.top = cin
        dec = []
        for w in reversed(widths[:-1]):
            dec += [nn.ConvTranspose2d(cin, w, 4, 2, 1), nn.BatchNorm2d(w), nn.ReLU()]
            cin = w
        self.decoder = nn.Sequential(*dec, nn.ConvTranspose2d(cin, channels, 4, 2, 1))

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, log σ²) of q(z | x), log σ² clamped to ±LOGVAR_LIMIT."""
        mu, logvar = self.to_stats(self.encoder(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-LOGVAR_LIMIT, LOGVAR_LIMIT)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.from_z(z).view(-1, self.top, 4, 4))

    def to_image(self, logits: torch.Tensor) -> torch.Tensor:
        """The decoder's output as an image in [−1, 1], by the squashing its loss assumes."""
        return torch.tanh(logits) if self.recon == "mse" else torch.sigmoid(logits) * 2 - 1

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.to_image(self.decode_logits(z))


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """z = μ + σ ε with ε ~ N(0, I), so gradients flow to μ and σ; ε is drawn on the CPU for seeded runs."""
    eps = torch.randn(mu.shape, generator=generator).to(mu.device, mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_j (μ_j² + σ_j² − 1 − log σ_j²) per image, averaged over the batch."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Per image (summed over pixels), averaged over the batch; ``x`` in [−1, 1]; see the module docstring."""
    if kind == "mse":
        per_pixel = (torch.tanh(logits) - x).pow(2)
    elif kind == "bce":
        per_pixel = F.binary_cross_entropy_with_logits(logits, (x + 1) / 2, reduction="none")
    else:
        raise ValueError(f"reconstruction loss must be one of {RECONSTRUCTIONS}, got {kind!r}")
    return per_pixel.flatten(1).sum(1).mean()


def vae_loss_terms(model: ConvVAE, x: torch.Tensor, beta: float = 1.0,
                   generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """'recon', 'kl' and 'total' = recon + β · kl for one batch."""
    mu, logvar = model.encode(x)
    logits = model.decode_logits(reparameterize(mu, logvar, generator)).float()
    recon = reconstruction_loss(logits, x.float(), model.recon)
    kl = kl_divergence(mu.float(), logvar.float())
    return {"recon": recon, "kl": kl, "total": recon + beta * kl}


@torch.no_grad()
def reconstruct(model: ConvVAE, x: torch.Tensor) -> torch.Tensor:
    """Decode the posterior mean μ(x): the VAE's best guess, without the sampling noise of z."""
    return model.decode(model.encode(x)[0])


@torch.no_grad()
def sample(model: ConvVAE, n: int, generator: torch.Generator | None = None,
           device: torch.device | str = "cpu") -> torch.Tensor:
    """Decode ``n`` draws from the prior N(0, I)."""
    return model.decode(torch.randn(n, model.latent_dim, generator=generator).to(device))


@torch.no_grad()
def interpolate(model: ConvVAE, a: torch.Tensor, b: torch.Tensor, steps: int = 8) -> torch.Tensor:
    """(steps, C, S, S): images decoded along the straight line between the posterior means of ``a`` and ``b``
    (each (C, S, S)), ends included."""
    mu = model.encode(torch.stack([a, b]))[0]
    w = torch.linspace(0, 1, steps, device=mu.device)[:, None]
    return model.decode((1 - w) * mu[0] + w * mu[1])
