"""Training a VAE, DCGAN or DDPM as a generator of plain-data records.

``GenerativeTrainer.run()`` yields a GenerativeRecord after every step, so whoever drives it decides about pausing
(stop calling ``next``), stopping (``close()`` the generator) and throttling. Batches and all noise come from the
trainer's own CPU generator, so a seeded CPU run is exactly repeatable.

The DDPM also trains on several processes under torchrun (engine.training.distributed): its loss runs the
network once per batch, which is all DistributedDataParallel needs. Each rank holds every size-th training image,
draws its share of the global batch from them with its own generator, and the gradients are averaged; rank 0
previews. The VAE's loss calls the encoder and decoder separately and the GAN alternates two networks, so both
train in one process.
"""
from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path
from typing import Iterator

import torch
from torch.nn.parallel import DistributedDataParallel

from engine.generative.config import GenerativeConfig
from engine.generative.data import TrainingImages, load_training_images
from engine.generative.diffusion import ddpm_loss, noisy_classifier_loss
from engine.generative.gan import discriminator_step, generator_step, sample_diversity
from engine.generative.grids import image_grid
from engine.generative.latent import encode_all
from engine.generative.models import GenerativeModel, GenerativeModelError, build_generative, load_generative, \
    reconstructions, save_generative
from engine.generative.records import GenerativePreview, GenerativeRecord
from engine.generative.vae import vae_loss_terms
from engine.training.common import TrainingError, pick_device
from engine.training.distributed import agree, join, mean_over_ranks, rank_device

PREVIEW_SEED = 12345
"""fixed noise for previews, independent of the training seed so runs with different seeds compare directly"""


class GenerativeTrainer:
    def __init__(self, config: GenerativeConfig, data: TrainingImages | None = None) -> None:
        """``data``: training images already loaded (the GUI may reuse them); default: from ``config.source``."""
        c = self.config = config
        device = pick_device(config.device)
        self.world = join(device)
        self.device = rank_device(device, self.world)
        if self.world.distributed and c.model != "ddpm":
            raise TrainingError(f"only the DDPM trains on several processes; train the {c.model} in one")
        if c.batch_size % self.world.size:
            raise TrainingError(f"the batch of {c.batch_size} images cannot be split evenly over {self.world.size} "
                                f"processes: choose a multiple of {self.world.size}")
        if c.threads:
            torch.set_num_threads(c.threads)
        if data is None:
            try:
                data = load_training_images(c.source, c.image_size, c.channels, c.random_crops, c.seed,
                                            c.classes_from)
            except (ValueError, OSError) as exc:
                raise TrainingError(str(exc)) from None
        if data.size != c.image_size or data.channels != c.channels:
            raise TrainingError(f"the training images are {data.channels} x {data.size} px but the model expects "
                                f"{c.channels} x {c.image_size} px")
        if len(data.images) < 2:
            raise TrainingError("a generative model needs at least two training images")
        if c.conditional:
            if data.labels is None or len(data.classes) < 2:
                raise TrainingError(f"{data.name} has no classes to condition on: a conditional model learns from "
                                    "labelled images (the built-in digits, or a project's boxes or tagged images "
                                    "of two classes or more)")
            c = self.config = dataclasses.replace(c, class_names=list(data.classes))
        self.data = data
        shard = data.images[self.world.rank::self.world.size]
        if len(shard) < 2:
            raise TrainingError(f"{len(data.images)} training images leave fewer than two to each of "
                                f"{self.world.size} processes")
        self.images = shard.to(self.device)
        self.labels = None if data.labels is None else data.labels[self.world.rank::self.world.size]
        vae = None
        if c.latent_vae is not None:  # latent diffusion: the DDPM learns the frozen VAE's codes of the images
            vae = self._latent_vae(c.latent_vae)
            codes = encode_all(vae.net, self.images)
            c = self.config = dataclasses.replace(c, vae_config=vae.config.as_dict(),
                                                  latent_scale=float(codes.std()))
            self.images = codes / c.latent_scale
        torch.manual_seed(c.seed)  # the same initial weights on every rank
        rank = self.world.rank
        self.rng = torch.Generator().manual_seed(c.seed if rank == 0 else c.seed + 1_000_003 * rank)
        self.model: GenerativeModel = build_generative(c, self.device)
        if vae is not None:
            self.model.vae.load_state_dict(vae.net.state_dict())
        self.forward = (DistributedDataParallel(self.model.net, device_ids=[self.device.index]
                                                if self.device.type == "cuda" else None)
                        if self.world.distributed else self.model.net)
        """what the DDPM's loss runs: the network, or its wrapper that averages gradients over the ranks"""
        self.model.data_name = data.name
        betas = (0.5, 0.999) if c.model == "gan" else (0.9, 0.999)
        self.optimizer = torch.optim.Adam(self.model.net.parameters(), lr=c.effective_lr, betas=betas)
        self.opt_classifier = None
        self.classify = self.model.classifier
        """the noise-aware classifier a step trains (its DistributedDataParallel wrapper on several ranks)"""
        if self.model.classifier is not None:
            self.opt_classifier = torch.optim.Adam(self.model.classifier.parameters(), lr=c.effective_lr)
            if self.world.distributed:
                self.classify = DistributedDataParallel(self.model.classifier, device_ids=[self.device.index]
                                                        if self.device.type == "cuda" else None)
        self.opt_d = (torch.optim.Adam(self.model.discriminator.parameters(), lr=c.effective_lr, betas=betas)
                      if self.model.discriminator is not None else None)
        self.amp = self.device.type == "cuda" and c.model != "gan"
        """mixed precision on CUDA for the VAE and DDPM; the GAN's two-player updates stay in float32, where
        loss scaling would interleave awkwardly with the alternating steps"""
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        preview_rng = torch.Generator().manual_seed(PREVIEW_SEED)
        classes = len(c.class_names) if c.conditional else 0
        self.preview_columns = max(2, math.ceil(c.preview_count / classes)) if classes else None
        """a conditional model's previews: one row per class, this many samples each"""
        self.preview_labels = (torch.arange(classes).repeat_interleave(self.preview_columns) if classes else None)
        self.preview_noise = self.model.noise(c.preview_count if not classes else classes * self.preview_columns,
                                              preview_rng)
        idx = torch.randperm(len(self.images), generator=preview_rng)[:max(1, c.preview_count // 2)]
        self.preview_real = self.images[idx.to(self.device)]
        self.step = 0
        self.active_s = 0.0
        """seconds spent inside the loop; pauses between records do not count against ``max_minutes``"""

    def _latent_vae(self, folder: str) -> GenerativeModel:
        """The saved VAE a latent DDPM learns the codes of; it must work on the training images' size."""
        c = self.config
        try:
            vae = load_generative(folder, self.device)
        except GenerativeModelError as exc:
            raise TrainingError(f"latent diffusion needs a trained VAE: {exc}") from None
        if vae.kind != "vae":
            raise TrainingError(f"{folder} holds a {vae.kind}; latent diffusion needs a VAE run")
        v = vae.config
        if (v.image_size, v.channels) != (c.image_size, c.channels):
            raise TrainingError(f"the VAE in {folder} works on {v.channels} x {v.image_size} px images; this run "
                                f"trains on {c.channels} x {c.image_size} px")
        return vae

    # ---- the loop ---------------------------------------------------------------------------------------------
    def run(self) -> Iterator[GenerativeRecord]:
        c = self.config
        n_params = sum(p.numel() for p in self.model.net.parameters())
        notes = [f"{c.model} ({n_params / 1e6:.2f} M parameters) on {self.device}; data: {self.data.name}"]
        if self.data.warning:
            notes.append(self.data.warning)
        start = last_preview = time.monotonic()
        window: list[float] = []
        self.model.net.train()
        while self.step < c.steps:
            entered = time.monotonic()
            t0 = time.monotonic()
            try:
                losses = self._train_step()
            except torch.OutOfMemoryError:
                raise TrainingError(f"out of memory on {self.device} at batch size {c.batch_size}: lower the batch "
                                    f"size or the base channels, or use the CPU") from None
            window = (window + [time.monotonic() - t0])[-20:]
            self.step += 1
            self.model.steps_done = self.step
            now = time.monotonic()
            timed_out = agree(c.max_minutes is not None and self.active_s + now - entered > c.max_minutes * 60,
                              self.device)
            if timed_out:
                notes.append(f"stopped after {c.max_minutes} minutes (max_minutes)")
            preview = None
            due = now - last_preview >= c.preview_interval_s or self.step in (1, c.steps) or timed_out
            if due and self.world.main:
                preview = self.preview()
                last_preview = time.monotonic()
            self.active_s += time.monotonic() - entered
            yield GenerativeRecord(self.step, c.steps, losses, c.effective_lr, len(window) / max(sum(window), 1e-9),
                                   now - start, str(self.device), preview, notes)
            notes = []
            if timed_out:
                break

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Images of one step, and their labels where the model is conditional."""
        idx = torch.randint(0, len(self.images), (self.config.batch_size // self.world.size,), generator=self.rng)
        labels = self.labels[idx].to(self.device) if self.config.conditional else None
        return self.images[idx.to(self.device)], labels

    def _train_step(self) -> dict[str, float]:
        c = self.config
        real, labels = self._batch()
        if c.model == "gan":
            try:
                out = discriminator_step(self.model.net, self.model.discriminator, self.opt_d, real, self.rng, labels)
                out.update(generator_step(self.model.net, self.model.discriminator, self.optimizer, c.batch_size,
                                          self.device, self.rng))
            except FloatingPointError as exc:
                raise TrainingError(f"{exc} at step {self.step + 1}; lower the learning rate (now {c.effective_lr})") from None
            return out
        with torch.autocast(self.device.type, enabled=self.amp):
            if c.model == "vae":
                terms = vae_loss_terms(self.model.net, real, c.beta, self.rng)
            else:
                terms = {"loss": ddpm_loss(self.forward, self.model.schedule, real, self.rng, labels,
                                           null=len(c.class_names), drop=c.label_dropout)}
        total = terms["total" if c.model == "vae" else "loss"]
        if agree(not torch.isfinite(total.detach()), self.device):
            raise TrainingError(f"the loss became {total.item()} at step {self.step + 1}; lower the learning rate "
                                f"(now {c.effective_lr})")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.model.ema is not None:
            self.model.ema.update(self.model.net)
        losses = {name: t.detach().item() for name, t in terms.items()}
        if self.opt_classifier is not None:
            loss = noisy_classifier_loss(self.classify, self.model.schedule, real, labels, self.rng)
            self.opt_classifier.zero_grad(set_to_none=True)
            loss.backward()
            self.opt_classifier.step()
            losses["classifier"] = loss.detach().item()
        return mean_over_ranks(losses, list(losses), self.device)

    # ---- previews ---------------------------------------------------------------------------------------------
    def preview(self) -> GenerativePreview:
        c = self.config
        # DDIM with η = 0 draws no noise, so the preview generator never touches the training RNG.
        samples = self.model.decode(self.preview_noise, ddim_steps=min(c.preview_ddim_steps, c.timesteps),
                                    labels=self.preview_labels)
        recon = diversity = None
        if c.model == "vae":
            recon = image_grid(reconstructions(self.model, self.preview_real), nrow=2 * max(1, int(len(self.preview_real) ** 0.5)))
        if c.model == "gan":
            diversity = sample_diversity(samples, self.preview_real if len(self.preview_real) > 1 else self.images[:16])
        return GenerativePreview(self.step, image_grid(samples, nrow=self.preview_columns), recon, diversity)

    def save(self, folder: str | Path) -> Path:
        self.model.extra = {"train": self.config.as_dict(), "active_minutes": round(self.active_s / 60, 3)}
        return save_generative(self.model, folder)
