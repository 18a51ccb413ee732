"""VAE loss terms against hand-computed values, the reparameterisation's statistics, GAN updates, KID, the
memorisation check, and a trainer save/load round trip."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from engine.generative.config import GenerativeConfig
from engine.generative.data import builtin_digits
from engine.generative.evaluate import kid, memorization
from engine.generative.gan import Discriminator, Generator, discriminator_step, gan_step, generator_step, \
    sample_diversity
from engine.generative.models import load_generative
from engine.generative.trainer import GenerativeTrainer
from engine.generative.vae import ConvVAE, kl_divergence, reconstruction_loss, reparameterize, vae_loss_terms
from engine.training.common import TrainingError


def test_kl_matches_closed_form():
    """KL(N(μ, σ²) ‖ N(0, 1)) = ½(μ² + σ² − 1 − ln σ²) per dimension, summed."""
    mu = torch.tensor([[1.0, -2.0], [0.0, 0.0]])
    logvar = torch.tensor([[0.0, math.log(4.0)], [0.0, 0.0]])
    first = 0.5 * (1 + 1 - 1 - 0) + 0.5 * (4 + 4 - 1 - math.log(4))
    assert kl_divergence(mu, logvar).item() == pytest.approx((first + 0.0) / 2)


def test_reconstruction_losses_by_hand():
    logits = torch.tensor([[[[0.0, 2.0]]]])
    x = torch.tensor([[[[0.5, -1.0]]]])
    assert reconstruction_loss(logits, x, "mse").item() == pytest.approx((0 - 0.5) ** 2 + (math.tanh(2) + 1) ** 2)
    # BCE on targets (x + 1)/2 = 0.75, 0: −[0.75 ln σ(0) + 0.25 ln(1 − σ(0))] − ln(1 − σ(2))
    want = math.log(2) + math.log(1 + math.exp(2))
    assert reconstruction_loss(logits, x, "bce").item() == pytest.approx(want, rel=1e-6)


def test_reparameterization_statistics():
    """z = μ + σε must have mean μ and std σ: with 200 000 draws the standard errors are ≈ 0.002σ."""
    n = 200_000
    mu, logvar = torch.full((n, 2), 1.5), torch.tensor([[math.log(0.25), math.log(9.0)]]).expand(n, 2)
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    assert torch.allclose(z.mean(0), torch.tensor([1.5, 1.5]), atol=0.02)
    assert torch.allclose(z.std(0), torch.tensor([0.5, 3.0]), rtol=0.01)


def test_vae_terms_total_and_logvar_clamp():
    torch.manual_seed(0)
    model = ConvVAE(1, 16, latent_dim=4, base=8)
    x = torch.rand(4, 1, 16, 16) * 2 - 1
    terms = vae_loss_terms(model, x, beta=3.0, generator=torch.Generator().manual_seed(0))
    assert terms["total"].item() == pytest.approx(terms["recon"].item() + 3.0 * terms["kl"].item(), rel=1e-6)
    with torch.no_grad():
        model.to_stats.bias.fill_(1e4)
    assert model.encode(x)[1].max().item() == 10.0


def test_gan_steps_alternate_and_report_finite_terms():
    torch.manual_seed(0)
    G, D = Generator(1, 16, 8, base=8), Discriminator(1, 16, base=8)
    opt_g, opt_d = torch.optim.Adam(G.parameters(), 1e-3), torch.optim.Adam(D.parameters(), 1e-3)
    real = torch.rand(8, 1, 16, 16) * 2 - 1
    g0, d0 = [p.clone() for p in G.parameters()], [p.clone() for p in D.parameters()]
    out = discriminator_step(G, D, opt_d, real)
    assert all(torch.equal(a, b) for a, b in zip(g0, G.parameters()))  # D's step leaves G alone
    assert any(not torch.equal(a, b) for a, b in zip(d0, D.parameters()))
    d1 = [p.clone() for p in D.parameters()]
    out.update(generator_step(G, D, opt_g, 8, "cpu"))
    assert all(torch.equal(a, b) for a, b in zip(d1, D.parameters()))  # G's step leaves D alone
    assert any(not torch.equal(a, b) for a, b in zip(g0, G.parameters()))
    both = gan_step(G, D, opt_g, opt_d, real)
    for terms in (out, both):
        assert set(terms) == {"d_loss", "g_loss", "d_real", "d_fake"}
        assert all(math.isfinite(v) for v in terms.values())
        assert 0 <= terms["d_real"] <= 1 and 0 <= terms["d_fake"] <= 1


def test_diversity_flags_collapse():
    real = torch.randn(64, 1, 8, 8)
    assert sample_diversity(torch.randn(64, 1, 8, 8), real) == pytest.approx(1.0, abs=0.1)
    collapsed = real[:1].expand(64, -1, -1, -1) + 0.01 * torch.randn(64, 1, 8, 8)
    assert sample_diversity(collapsed, real) < 0.1


def test_kid_self_near_zero_and_shift_positive():
    """Unbiased MMD²: zero in expectation for two draws of one distribution (its spread over draws at n = 300,
    d = 16 is ≈ 0.01 here); a mean shift of 1 in every dimension gives ≈ 1 or more."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(300, 16)), rng.normal(size=(300, 16))
    assert abs(kid(a, b)) < 0.05
    assert kid(a, a) < 0.05
    assert kid(a, b + 1.0) > 1.0


def test_memorization_spots_copies():
    train = builtin_digits(16, n=200).images
    copies = memorization(train[:20] + 0.001, train)
    assert copies.ratio < 0.1 and copies.close_fraction == 1.0
    noise = memorization(torch.rand(20, 1, 16, 16) * 2 - 1, train)
    assert noise.ratio > 1.0 and noise.close_fraction == 0.0


@pytest.mark.parametrize("kind", ["vae", "gan", "ddpm"])
def test_trainer_records_deterministic_and_save_load(kind, tmp_path, one_thread):
    c = GenerativeConfig(model=kind, image_size=16, steps=6, batch_size=8, base_channels=8, latent_dim=8,
                         timesteps=20, preview_ddim_steps=4, preview_count=4, device="cpu")
    data = builtin_digits(16, n=64)
    runs = []
    for _ in range(2):
        trainer = GenerativeTrainer(c, data)
        runs.append(list(trainer.run()))
    keys = {"vae": {"recon", "kl", "total"}, "gan": {"d_loss", "g_loss", "d_real", "d_fake"}, "ddpm": {"loss"}}[kind]
    assert all(set(r.losses) == keys for r in runs[0])
    assert [r.losses for r in runs[0]] == [r.losses for r in runs[1]]  # seeded CPU run repeats exactly
    last = runs[0][-1].preview
    assert last is not None and last.samples.dtype == np.uint8 and last.samples.shape[2] == 3
    assert (last.reconstructions is not None) == (kind == "vae") and (last.diversity is not None) == (kind == "gan")
    trainer.save(tmp_path / "run")
    loaded = load_generative(tmp_path / "run")
    a = trainer.model.sample(3, torch.Generator().manual_seed(5), ddim_steps=5 if kind == "ddpm" else None, eta=1.0)
    b = loaded.sample(3, torch.Generator().manual_seed(5), ddim_steps=5 if kind == "ddpm" else None, eta=1.0)
    assert torch.equal(a, b)


def test_trainer_rejects_mismatched_data_and_nonfinite_loss(one_thread):
    with pytest.raises(TrainingError, match="px"):
        GenerativeTrainer(GenerativeConfig(model="vae", image_size=32, device="cpu"), builtin_digits(16, n=8))
    c = GenerativeConfig(model="vae", image_size=16, steps=3, batch_size=4, base_channels=8, lr=1e30, device="cpu")
    trainer = GenerativeTrainer(c, builtin_digits(16, n=16))
    with torch.no_grad():
        trainer.model.net.to_stats.weight.fill_(float("nan"))
    with pytest.raises(TrainingError, match="lower the learning rate"):
        list(trainer.run())
