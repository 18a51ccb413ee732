"""Training a torchvision detector on the project's boxes, as a generator of plain-data records.

``DetectionTrainer.run()`` yields a DetectionRecord after every step, so whoever drives it decides about pausing
(stop calling ``next``), stopping (``close()`` the generator) and throttling. It opens its own store connection,
so it must be created in the thread that runs it. New boxes and images marked done are picked up every step.

Under torchrun it trains on several processes with DistributedDataParallel, as segmentation does
(engine.training.distributed): a torchvision detector in training mode returns its losses from one forward call.
Each rank learns from every size-th training image (in id order) with its own augmentation stream and its share
of the global batch; the held-out images are the same on every rank.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
from torch.nn.parallel import DistributedDataParallel

from engine.detection.config import DetectionConfig
from engine.detection.data import DetectionSampler, DetectionSet
from engine.detection.evaluate import DetectionScores, evaluate_samples
from engine.detection.labels import label_offset, object_classes
from engine.detection.models import DetectorConfig, DetectorError, build_detector, pretrained_note, run_detector, \
    save_detector
from engine.detection.postprocess import Detections
from engine.detection.records import DetectionPreview, DetectionRecord
from engine.project import Project
from engine.training.common import TrainingError, current_classes, lr_factor, pick_device
from engine.training.distributed import agree, join, mean_over_ranks, rank_device

MAX_GRAD_NORM = 10.0
"""Gradient-norm clip: a randomly initialised detector sees huge box-regression gradients in its first steps"""


class DetectionTrainer:
    def __init__(self, project_root: str | Path, config: DetectionConfig) -> None:
        self.config = config
        self.project = Project.open(project_root)
        classes = self.project.store.classes()
        self.class_ids = [c.id for c in classes]
        self.classes = [c.name for c in classes]
        if not object_classes(self.classes):
            raise TrainingError("a detector needs at least one object class besides the background")
        self.label_offset = label_offset(self.classes)
        device = pick_device(config.device)
        self.world = join(device)
        self.device = rank_device(device, self.world)
        if config.batch_size % self.world.size:
            self.project.close()
            raise TrainingError(f"the batch of {config.batch_size} images cannot be split evenly over "
                                f"{self.world.size} processes: choose a multiple of {self.world.size}")
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        try:
            self.model, self.pretrained = build_detector(config.model, len(classes) + self.label_offset,
                                                         allow_download=config.allow_download,
                                                         min_size=config.min_size, max_size=config.max_size)
        except DetectorError as exc:
            raise TrainingError(str(exc)) from None
        self.model.to(self.device).train()
        self.forward = self.model
        """what a training step runs: the detector, or its DistributedDataParallel wrapper"""
        if self.world.distributed:
            self.forward = DistributedDataParallel(self.model, device_ids=[self.device.index]
                                                   if self.device.type == "cuda" else None)
        params = [p for p in self.model.parameters() if p.requires_grad]
        if config.optimizer == "sgd":
            self.optimizer = torch.optim.SGD(params, lr=config.effective_lr, momentum=0.9, weight_decay=config.weight_decay)
        else:
            self.optimizer = torch.optim.AdamW(params, lr=config.effective_lr, weight_decay=config.weight_decay)
        self.amp = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.data = DetectionSet(self.project, config.working_size, config.holdout_fraction, config.holdout_seed)
        rank = self.world.rank
        stream = config.seed if rank == 0 else config.seed + 1_000_003 * rank
        self.sampler = DetectionSampler(stream, config.scale_jitter)
        self._rng = torch.Generator().manual_seed(stream)
        self.step = 0
        self.active_s = 0.0
        """seconds spent inside the loop; pauses between records do not count against ``max_minutes``"""
        self.preview_image_id: int | None = None
        """set by the driver (the GUI shows this image); read between steps"""

    def close(self) -> None:
        self.project.close()

    @contextmanager
    def _own_rng(self):
        """Augmentation and the detectors' anchor sampling draw from torch's global RNG; running every step on
        the trainer's own RNG state keeps a seeded run reproducible whatever else uses that RNG in between."""
        state = torch.random.get_rng_state()
        torch.random.set_rng_state(self._rng.get_state())
        try:
            yield
            self._rng.set_state(torch.random.get_rng_state())
        finally:
            torch.random.set_rng_state(state)

    # ---- the loop ---------------------------------------------------------------------------------------------
    def run(self) -> Iterator[DetectionRecord]:
        c = self.config
        notes = [f"detector {c.model} (backbone weights: {self.pretrained}) on {self.device}"]
        if self.pretrained == "none":
            notes.append(pretrained_note(c.model))
        start = last_preview = last_eval = time.monotonic()
        window: list[float] = []
        while self.step < c.steps:
            entered = time.monotonic()
            if agree(c.max_minutes is not None and self.active_s > c.max_minutes * 60, self.device):
                notes.append(f"stopped after {c.max_minutes} minutes (max_minutes)")
                break
            lr = self._set_lr()
            classes = current_classes(self.project.store, self.class_ids, self.classes)
            if object_classes(classes) != object_classes(self.classes):
                raise TrainingError("a class was renamed to or from 'background' while training: start training "
                                    "again, since what the detector finds changed")
            self.classes = classes
            changed = self.data.refresh()
            samples = [self.data.samples[i] for i in sorted(self.data.samples)][self.world.rank::self.world.size]
            if agree(not any(len(s.labels) for s in samples), self.device) and self.world.distributed:
                raise TrainingError(f"one of the {self.world.size} training processes has no boxed image in its share "
                                    "of the images: box more images or train with fewer processes")
            if not self.data.box_count:
                raise TrainingError("no training image has boxes yet: draw boxes around a few objects"
                                    + (" (all boxed images are held out for evaluation; lower the held-out fraction)"
                                       if self.data.heldout else ""))
            if changed and self.step:
                notes.append(f"picked up new boxes on {changed} image{'s' * (changed != 1)}")
            t0 = time.monotonic()
            try:
                losses = self._train_step(samples)
            except torch.OutOfMemoryError:
                raise TrainingError(f"out of memory on {self.device} at batch size {c.batch_size} and working size "
                                    f"{c.working_size} px: lower the batch size or working size, or use the CPU") from None
            window = (window + [time.monotonic() - t0])[-20:]
            self.step += 1
            now = time.monotonic()
            preview = None
            if self.preview_image_id is not None and (now - last_preview >= c.preview_interval_s or self.step == c.steps):
                preview = self.preview(self.preview_image_id)
                last_preview = time.monotonic()
            map50 = None
            if c.eval_interval_s and self.data.heldout and (now - last_eval >= c.eval_interval_s or self.step == c.steps):
                map50 = self.evaluate().map50
                last_eval = time.monotonic()
            self.active_s += time.monotonic() - entered
            yield DetectionRecord(self.step, c.steps, losses, lr, len(window) / max(sum(window), 1e-9), now - start,
                                  str(self.device), len(samples), self.data.negative_count, self.data.box_count,
                                  len(self.data.heldout), preview, map50, notes)
            notes = []

    def progress(self) -> float:
        """How far through the run (0..1): by steps, or by time under ``max_minutes`` if that ends it sooner."""
        c = self.config
        by_time = self.active_s / (c.max_minutes * 60) if c.max_minutes else 0.0
        return max(self.step / c.steps, by_time)

    def _set_lr(self) -> float:
        c = self.config
        lr = c.effective_lr * lr_factor(self.step, self.progress(), warmup=max(1, min(c.warmup_steps, c.steps // 5)))
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        return lr

    def _train_step(self, samples) -> dict[str, float]:
        c = self.config
        with self._own_rng():
            images, targets = self.sampler.batch(samples, c.batch_size // self.world.size)
            images = [im.to(self.device) for im in images]
            targets = [{"boxes": t["boxes"].to(self.device), "labels": (t["labels"] + self.label_offset).to(self.device)}
                       for t in targets]
            self.model.train()
            with torch.autocast(self.device.type, enabled=self.amp):
                terms = self.forward(images, targets)
        terms = {name: t.float() for name, t in terms.items()}
        total = sum(terms.values())
        if agree(not torch.isfinite(total.detach()), self.device):
            bad = ", ".join(f"{n} = {t.item():.4g}" for n, t in terms.items())
            raise TrainingError(f"the loss became {total.item()} at step {self.step + 1} ({bad}); lower the learning "
                                f"rate (now {c.effective_lr}) or use the AdamW optimizer")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.unscale_(self.optimizer)
        torch.nn.utils.clip_grad_norm_([p for g in self.optimizer.param_groups for p in g["params"]], MAX_GRAD_NORM)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        out = {name: t.detach().item() for name, t in terms.items()}
        out["total"] = total.detach().item()
        return mean_over_ranks(out, list(out), self.device)

    # ---- inference --------------------------------------------------------------------------------------------
    def detect(self, image_id: int) -> Detections:
        """Raw detections for a project image, in its original pixels; raises ImageLoadError."""
        image, scale = self.data.load_image(image_id)
        return run_detector(self.model, image, self.device, self.amp, self.label_offset).scaled(1.0 / scale)

    def preview(self, image_id: int) -> DetectionPreview | None:
        try:
            return DetectionPreview(image_id, self.detect(image_id))
        except Exception:  # an unreadable or removed image gets no preview; the GUI shows the load error itself
            return None

    def evaluate(self, limit: int = 50) -> DetectionScores:
        """Scores on up to ``limit`` held-out images, at working resolution."""
        samples = list(self.data.heldout.values())[:limit]
        return evaluate_samples(lambda image: run_detector(self.model, image, self.device, self.amp, self.label_offset),
                                samples, len(self.classes))

    def save(self, folder: str | Path) -> None:
        c = self.config
        save_detector(self.model, DetectorConfig(c.model, self.classes, c.working_size, c.min_size, c.max_size,
                                                 self.pretrained, extra={"train": c.as_dict(), "steps_done": self.step},
                                                 label_offset=self.label_offset),
                      folder)
