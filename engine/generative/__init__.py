"""Generative models for small images: a VAE, a DCGAN and a DDPM diffusion model, trained and sampled live.

Everything here is plain PyTorch and numpy (no Qt), sized so that 32 px images train on a CPU in minutes.
"""
