"""``wsv bench generative``: training speed of the VAE, DCGAN and DDPM, of their class-conditional forms and of
latent diffusion, and what each sampler's samples are worth.

Every model trains on the same images under the same budget (steps or minutes). Speed is steps per second after
a warm-up, with the steps that also drew a preview left out. Then each model draws samples from seeded noise,
timed; the DDPM twice from the same x_T — ancestral sampling over all T steps and deterministic DDIM (η = 0)
over a short sub-sequence — so the table shows what DDIM's speed-up costs in quality. Ancestral sampling is T
network passes per image, so it runs on fewer samples (``ddpm_samples``) and DDIM is repeated on exactly those.

Quality is KID and FID against as many training images (engine.generative.evaluate: EfficientNet-Lite0 ImageNet
features, not Inception, so the figures compare models here but not with papers) and the nearest-training-image
check for copies. With a few hundred samples KID is noisy and FID biased upward, so every KID comes with its
spread over random half-size subsets, and a reference row scores real training images against other training
images: the floor a perfect model would reach at that sample count.

The conditional models (``cgan``; ``cddpm``, with a classifier of noised images beside it) draw every class
alike, and a Judge trained once on the labelled training images says what share of the samples show the class
they were drawn for; the conditional DDPM is sampled with DDIM at each classifier-free guidance scale asked for,
and once with classifier guidance alone (free guidance 0). ``latent-ddpm`` spends LATENT_VAE_SHARE of the budget
on a VAE and the rest on a DDPM over its codes, so it compares with the pixel DDPM at the same budget.
"""
from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import torch

from engine.generative.config import GenerativeConfig
from engine.generative.data import TrainingImages, load_training_images
from engine.generative.diffusion import ddim_timesteps
from engine.generative.evaluate import FeatureExtractor, Judge, fid, kid, memorization
from engine.generative.models import GenerativeModel
from engine.generative.trainer import GenerativeTrainer

WARMUP_STEPS = 10
"""training steps left out of the speed figure: the first ones pay for allocation and kernel selection"""
LOSS_WINDOW = 50
"""final losses are the mean over this many last steps, since one batch's loss is noisy"""
KID_SUBSETS = 50
"""random half-size subsets whose KID spread is reported with every KID"""
LOG_INTERVAL_S = 30.0
VARIANTS = {"vae": {"model": "vae"}, "gan": {"model": "gan"}, "ddpm": {"model": "ddpm"},
            "cgan": {"model": "gan", "conditional": True},
            "cddpm": {"model": "ddpm", "conditional": True, "classifier": True},
            "latent-ddpm": {"model": "ddpm"}}
"""what each model name of the bench trains (latent-ddpm also trains its VAE first)"""
LATENT_VAE_SHARE = 1 / 3
"""share of latent-ddpm's steps and minutes that go to its VAE"""


def _load_avg() -> float | None:
    """The 1-minute load average, recorded with the speed figures: on a shared machine it says how much of the
    CPU the benchmark actually had."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _synced(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Scorer:
    """Scores sample sets against one fixed draw of training images, whose features are computed once per device
    so that every model is measured against the same reference."""

    def __init__(self, data: TrainingImages, max_samples: int, device: torch.device, seed: int) -> None:
        self.train = data.images
        self.extractor = FeatureExtractor(device)
        order = torch.randperm(len(self.train), generator=torch.Generator().manual_seed(seed))
        self.n = min(max_samples, len(self.train))
        self.ref = self.extractor(self.train[order[:self.n]])
        held = order[self.n:2 * self.n]
        self.others = self.extractor(self.train[held]) if len(held) == self.n else None
        """features of as many other training images, for the reference row; None where the set is too small"""
        self.rng = np.random.default_rng(seed)
        self.seed = seed

    def kid_spread(self, fa: np.ndarray, fb: np.ndarray) -> float:
        n, half = len(fa), len(fa) // 2
        return float(np.std([kid(fa[self.rng.choice(n, half, replace=False)], fb[self.rng.choice(n, half, replace=False)])
                             for _ in range(KID_SUBSETS)]))

    def distances(self, fa: np.ndarray) -> dict:
        n = len(fa)
        fb = self.ref[:n]
        return {"samples": n, "reference_images": n, "kid": round(kid(fa, fb), 5), "kid_std": round(self.kid_spread(fa, fb), 5),
                "kid_std_from": f"{KID_SUBSETS} random subsets of {n // 2}", "fid": round(fid(fa, fb), 2),
                "features": self.extractor.name}

    def score(self, samples: torch.Tensor) -> dict:
        mem = memorization(samples, self.train, seed=self.seed).as_dict()
        return {**self.distances(self.extractor(samples)),
                "memorization_ratio": round(mem["ratio"], 3), "close_fraction": round(mem["close_fraction"], 3),
                "median_sample_to_train": round(mem["median_sample_to_train"], 3),
                "train_to_train": round(mem["train_to_train"], 3)}

    def floor(self, n: int) -> dict:
        """Real training images against the reference: the KID and FID of a perfect generator at ``n`` samples."""
        return self.distances(self.others[:n])


def _train(name: str, config: GenerativeConfig, data: TrainingImages,
           log: Callable[[str], None]) -> tuple[GenerativeTrainer, dict]:
    trainer = GenerativeTrainer(config, data)
    n_params = sum(p.numel() for p in trainer.model.net.parameters())
    load_start = _load_avg()
    durations: list[tuple[float, bool]] = []
    losses: list[dict[str, float]] = []
    last = last_log = time.perf_counter()
    for rec in trainer.run():
        now = time.perf_counter()
        durations.append((now - last, rec.preview is not None))
        losses.append(rec.losses)
        if now - last_log >= LOG_INTERVAL_S:
            log(f"{name} on {trainer.device}: step {rec.step}, " + " ".join(f"{k} {v:.4g}" for k, v in rec.losses.items()))
            last_log = now
        last = time.perf_counter()
    warmup = min(WARMUP_STEPS, len(durations) // 2)
    timed = [d for d, preview in durations[warmup:] if not preview] or [d for d, _ in durations]
    steps_per_s = len(timed) / sum(timed)
    window = losses[-LOSS_WINDOW:]
    record = {"bench": "generative", "measure": "training", "model": name, "device": str(trainer.device),
              "threads": torch.get_num_threads() if trainer.device.type == "cpu" else None,
              "params_m": round(n_params / 1e6, 3), "image_size": config.image_size, "batch_size": config.batch_size,
              "steps": trainer.step, "minutes": round(trainer.active_s / 60, 2), "steps_per_s": round(steps_per_s, 3),
              "images_per_s": round(steps_per_s * config.batch_size, 1), "timed_steps": len(timed),
              **{f"final_{k}": round(float(np.mean([w[k] for w in window])), 5) for k in window[-1]},
              "final_losses_over": len(window), "load_avg_start": load_start, "load_avg_end": _load_avg(),
              "data": data.name, "train_images": len(data.images)}
    log(f"{name} on {trainer.device}: {trainer.step} steps in {record['minutes']} min, {steps_per_s:.2f} steps/s")
    return trainer, record


def _timed_sample(model: GenerativeModel, noise: torch.Tensor, seed: int, ddim_steps: int | None = None,
                  **steering) -> tuple[torch.Tensor, float]:
    """Samples from ``noise`` and the seconds they took, after one tiny warm-up call; the ancestral sampler's
    fresh noise at every step comes from a generator seeded with ``seed``. ``steering``: labels and guidance
    scales of a conditional model (engine.generative.models.GenerativeModel.decode)."""
    labels = steering.get("labels")
    warm = {**steering, "labels": None if labels is None else labels[:2]}
    model.decode(noise[:2], ddim_steps=1 if model.kind == "ddpm" else None, **warm)
    _synced(model.device)
    t0 = time.perf_counter()
    out = model.decode(noise, torch.Generator().manual_seed(seed), ddim_steps=ddim_steps, **steering)
    _synced(model.device)
    return out, time.perf_counter() - t0


def _sampling_record(name: str, model: GenerativeModel, sampler: str, evaluations: int, seconds: float,
                     scores: dict) -> dict:
    n = scores["samples"]
    return {"bench": "generative", "measure": "sampling", "model": name, "sampler": sampler,
            "device": str(model.device), "train_steps": model.steps_done, "network_evaluations": evaluations,
            "seconds": round(seconds, 3), "ms_per_sample": round(seconds * 1000 / n, 2), **scores}


def _sample_and_score(name: str, model: GenerativeModel, scorer: Scorer, samples: int, ddpm_samples: int,
                      ddim_steps: int, seed: int, log: Callable[[str], None]) -> list[dict]:
    noise = model.noise(max(samples, ddpm_samples), torch.Generator().manual_seed(seed))
    if model.kind != "ddpm":
        out, seconds = _timed_sample(model, noise[:samples], seed)
        rec = _sampling_record(name, model, "decoder" if model.kind == "vae" else "generator", 1, seconds,
                               scorer.score(out))
        log(f"{name}: {samples} samples in {seconds:.2f} s, KID {rec['kid']:.4f} ± {rec['kid_std']:.4f}")
        return [rec]
    T = model.config.timesteps
    ddim_name, ddim_evals = f"ddim-{ddim_steps} (eta 0)", len(ddim_timesteps(T, ddim_steps))
    log(f"{name}: {ddpm_samples} samples with {T}-step ancestral sampling")
    out, ddpm_s = _timed_sample(model, noise[:ddpm_samples], seed)
    records = [_sampling_record(name, model, f"ddpm-{T}", T, ddpm_s, scorer.score(out))]
    out, ddim_s = _timed_sample(model, noise[:ddpm_samples], seed, ddim_steps)
    records.append({**_sampling_record(name, model, ddim_name, ddim_evals, ddim_s, scorer.score(out)),
                    "speedup_vs_ddpm": round(ddpm_s / ddim_s, 1)})
    if samples != ddpm_samples:
        out, seconds = _timed_sample(model, noise[:samples], seed, ddim_steps)
        records.append(_sampling_record(name, model, ddim_name, ddim_evals, seconds, scorer.score(out)))
    for r in records:
        log(f"{name} {r['sampler']}: {r['samples']} samples in {r['seconds']:.1f} s, KID {r['kid']:.4f} ± "
            f"{r['kid_std']:.4f}")
    return records


def _by_class(name: str, model: GenerativeModel, scorer: Scorer, judge: Judge, samples: int, ddim_steps: int,
              guidance_scales: list[float], classifier_scale: float, seed: int, log: Callable[[str], None]) -> list[dict]:
    """A conditional model's rows: the same noise and the same classes (each as often) under every way of
    steering, scored by KID and by the judge."""
    labels = torch.arange(samples) % len(model.classes)
    noise = model.noise(samples, torch.Generator().manual_seed(seed))
    if model.kind == "gan":
        ways = [("generator", 1, {})]
    else:
        evals = len(ddim_timesteps(model.config.timesteps, ddim_steps))
        ways = [(f"ddim-{ddim_steps}, free guidance {g:g}", evals * (1 if g in (0, 1) else 2),
                 {"ddim_steps": ddim_steps, "guidance": g}) for g in guidance_scales]
        if classifier_scale and model.classifier is not None:
            ways.append((f"ddim-{ddim_steps}, classifier {classifier_scale:g}", evals,
                         {"ddim_steps": ddim_steps, "guidance": 0.0, "classifier_scale": classifier_scale}))
    records = []
    for sampler, evaluations, steering in ways:
        out, seconds = _timed_sample(model, noise, seed, labels=labels, **steering)
        check = judge.check(out, labels)
        rec = {**_sampling_record(name, model, sampler, evaluations, seconds, scorer.score(out)),
               "class_accuracy": round(check.sample_accuracy, 3), "chance": round(check.chance, 3),
               "judge_heldout_accuracy": round(check.judge_heldout_accuracy, 3), "judge": check.judge}
        log(f"{name} {sampler}: the judge labels {check.sample_accuracy * 100:.0f}% as their class, KID {rec['kid']:.4f}")
        records.append(rec)
    return records


def _budget(config: GenerativeConfig, share: float) -> GenerativeConfig:
    """``config`` with ``share`` of its steps and minutes."""
    return replace(config, steps=max(1, round(config.steps * share)),
                   max_minutes=None if config.max_minutes is None else config.max_minutes * share)


def run_generative(base: GenerativeConfig, models: Iterable[str], samples: int, ddpm_samples: int, ddim_steps: int,
                   devices: Iterable[str], work: Path, log: Callable[[str], None] = print,
                   guidance_scales: Iterable[float] = (0.0, 1.0, 3.0), classifier_scale: float = 5.0) -> list[dict]:
    """``base`` carries the data source, size, budget and network settings shared by every model (``models``:
    names of VARIANTS). Sample counts are capped at the number of training images, the size of the reference
    set. A project's conditional models learn its boxed objects or tagged images (``base.class_source``), scored
    against those."""
    models, guidance_scales = list(models), list(guidance_scales)
    records = []
    for device in devices:
        sets: dict[str | None, tuple[TrainingImages, Scorer, Judge | None]] = {}

        def prepared(classes: str | None) -> tuple[TrainingImages, Scorer, Judge | None]:
            if classes not in sets:
                data = load_training_images(base.source, base.image_size, base.channels, base.random_crops,
                                            base.seed, classes)
                scorer = Scorer(data, max(samples, ddpm_samples), torch.device(device), base.seed)
                n, n_ddpm = min(samples, scorer.n), min(ddpm_samples, scorer.n)
                if n < samples or n_ddpm < ddpm_samples:
                    log(f"only {scorer.n} training images: sample counts capped at {scorer.n}")
                if scorer.others is None:
                    log(f"fewer than {2 * scorer.n} training images: no real-vs-real reference row")
                else:
                    records.extend({"bench": "generative", "measure": "reference", "model": "real",
                                    "sampler": "training images", "device": device, "data": data.name,
                                    **scorer.floor(count)} for count in sorted({n, n_ddpm}))
                judge = None
                if data.labels is not None and len(data.classes) > 1 and any(VARIANTS[m].get("conditional")
                                                                            for m in models):
                    judge = Judge(data.images, data.labels, len(data.classes), base.seed)
                    log(f"judge: {judge.heldout_accuracy * 100:.0f}% right on held-out training images")
                sets[classes] = data, scorer, judge
            return sets[classes]

        for name in models:
            variant = VARIANTS[name]
            conditional = bool(variant.get("conditional"))
            data, scorer, judge = prepared(base.class_source if conditional and not base.source.startswith("builtin:")
                                           else None)
            n, n_ddpm = min(samples, scorer.n), min(ddpm_samples, scorer.n)
            # Previews only at the first and last step: a DDPM preview is a full DDIM run and would eat the budget.
            config = replace(base, **variant, device=device, lr=None, preview_interval_s=float("inf"))
            folder = work / device.replace(":", "-") / name
            if name == "latent-ddpm":
                vae, record = _train(f"{name} (its VAE)", _budget(replace(config, model="vae"), LATENT_VAE_SHARE),
                                     data, log)
                vae.save(folder / "vae")
                records.append(record)
                config = replace(_budget(config, 1 - LATENT_VAE_SHARE), latent_vae=str(folder / "vae"))
            trainer, record = _train(name, config, data, log)
            trainer.save(folder)
            records.append(record)
            if conditional:
                if judge is None:
                    raise ValueError(f"{data.name} has no classes for {name}")
                records.extend(_by_class(name, trainer.model, scorer, judge, n, ddim_steps, guidance_scales,
                                         classifier_scale, base.seed, log))
            else:
                records.extend(_sample_and_score(name, trainer.model, scorer, n, n_ddpm, ddim_steps, base.seed, log))
    return records


def table(records: list[dict]) -> str:
    """The records as two readable tables, training speed and sample quality."""
    lines = ["model        device  steps  minutes  steps/s  images/s  final losses"]
    for r in records:
        if r["measure"] == "training":
            losses = " ".join(f"{k[6:]} {v:.4g}" for k, v in r.items() if k.startswith("final_") and k != "final_losses_over")
            lines.append(f"{r['model']:<11}  {r['device']:<6}  {r['steps']:>5}  {r['minutes']:>7}  {r['steps_per_s']:>7}  "
                         f"{r['images_per_s']:>8}  {losses}  (load {r['load_avg_start']} -> {r['load_avg_end']})")
    lines += ["", "model        sampler                        device  samples  seconds  ms/sample  KID (± std)          "
                  "FID      copies  class"]
    for r in records:
        if r["measure"] in ("sampling", "reference"):
            ratio = f"{r['memorization_ratio']:.2f}" if "memorization_ratio" in r else "-"
            seconds = f"{r['seconds']:>7}  {r['ms_per_sample']:>9}" if "seconds" in r else f"{'-':>7}  {'-':>9}"
            judged = f"{r['class_accuracy'] * 100:.0f}%" if "class_accuracy" in r else "-"
            lines.append(f"{r['model']:<11}  {r['sampler']:<29}  {r['device']:<6}  {r['samples']:>7}  {seconds}  "
                         f"{r['kid']:.4f} ± {r['kid_std']:.4f}  {r['fid']:>7}  {ratio:>6}  {judged}")
    features = {r["features"] for r in records if "features" in r}
    if features:
        lines += ["", "features: " + "; ".join(sorted(features))]
    return "\n".join(lines)
