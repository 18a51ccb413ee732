"""The trainer: partial cross-entropy on marked pixels plus a CRF regularizer on all pixels, as a generator.

``Trainer.run()`` yields a ProgressRecord after every step, so whoever drives it decides about pausing (stop
calling ``next``), stopping (``close()`` the generator) and throttling. It opens its own store connection, so
it must be created in the thread that runs it. New marks are picked up every step from the store.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

from engine.annotations.types import UNLABELED, background_index
from engine.metrics import confusion_matrix, scores
from engine.models.registry import ModelConfig, ModelError, build_model, load_model, pretrained_part, save_model
from engine.project import Project
from engine.refine.masks import store_marks
from engine.refine.segment import refine_labels
from engine.suggest import needs_marks
from engine.training.common import TrainingError, current_classes, lr_factor, pick_device
from engine.training.config import TrainConfig
from engine.training.data import Batch, Loaded, SampleSource, TrainingIndex
from engine.training.distributed import agree, join, mean_over_ranks, rank_device
from engine.training.loader import batches, worker_count
from engine.training.pretrain import PRETRAIN_KEY, load_pretrained
from engine.training.records import Preview, ProgressRecord
from engine.training.targets import resize_labels
from engine.training.terms import TERMS, StepInputs, display_gradient, weighted_terms


class Trainer:
    def __init__(self, project_root: str | Path, config: TrainConfig) -> None:
        self.config = config
        self.project = Project.open(project_root)
        classes = self.project.store.classes()
        self.class_ids = [c.id for c in classes]
        self.classes = [c.name for c in classes]
        self.background = background_index(self.classes)
        if len(self.classes) < 2:
            raise TrainingError("a project needs at least two classes to train")
        device = pick_device(config.device)
        self.world = join(device)
        self.device = rank_device(device, self.world)
        if config.threads:
            torch.set_num_threads(config.threads)
        torch.manual_seed(config.seed)
        self.model, self.pretrained = build_model(config.model, len(self.classes), allow_download=config.allow_download)
        if config.init_from is not None:
            try:
                self._continue_from(Path(config.init_from))
            except TrainingError:
                self.project.close()
                raise
        if self.world.distributed and config.batch_size % self.world.size:
            self.project.close()
            raise TrainingError(f"the batch of {config.batch_size} images cannot be split evenly over "
                                f"{self.world.size} processes: choose a multiple of {self.world.size}")
        self.model.to(self.device)
        self.forward = self.model
        """what a training step runs: the network, or its DistributedDataParallel wrapper that averages the
        gradients over the ranks (preview, evaluation and saving use the network itself)"""
        if self.world.distributed:
            if self.device.type == "cuda":  # batch statistics over the global batch, as one process would see
                self.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
            self.forward = DistributedDataParallel(self.model, device_ids=[self.device.index]
                                                   if self.device.type == "cuda" else None)
        self.optimizer = torch.optim.AdamW(self._parameter_groups(), lr=config.lr, weight_decay=1e-4)
        self.amp = self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.index = TrainingIndex(self.project, config.supervision, shard=(self.world.rank, self.world.size))
        self.source = SampleSource(self.project.root, config.supervision, config.working_size,
                                   config.cache_mb << 20)
        self.loader = batches(self.index, self.source, config.crop_size, config.batch_size // self.world.size,
                              config.seed, self.world.rank, worker_count(config.workers, self.device))
        self._loading = None
        """the loader's iterator, started at the first step (a worker prefetches as soon as it starts)"""
        self.step = 0
        self.active_s = 0.0
        """seconds spent training inside the loop: pauses between records do not count against ``max_minutes``,
        nor does reading marks into targets (GrabCut seeds for boxes take minutes on hundreds of images)"""
        self.preview_image_id: int | None = None
        """set by the driver (the GUI shows this image); read between steps"""
        self._to_score: list[int] = []
        """image ids still to score in this round, the next last"""
        self._refined_cache: dict[int, tuple[int | None, float, np.ndarray | None]] = {}
        """image id -> (marks revision, when, refined mask) of the last refined preview"""

    def close(self) -> None:
        self._loading = None  # its worker processes shut down with it
        self.source.close()
        self.project.close()

    def next_loaded(self) -> Loaded:
        """The next step's crops from the loader."""
        if self._loading is None:
            self._loading = iter(self.loader)
        return next(self._loading)

    def _continue_from(self, folder: Path) -> None:
        """Start from a saved network's weights (the encoder keeps its pretrained learning-rate group): a training
        run's, to continue it, or a self-supervised pretraining run's (engine.training.pretrain), whose weights
        replace the initial ones everywhere but the class head."""
        try:
            saved, saved_config = load_model(folder)
        except ModelError as exc:
            raise TrainingError(f"cannot continue from {folder}: {exc}") from None
        pretrain = saved_config.extra.get(PRETRAIN_KEY)
        if pretrain is not None:
            if saved_config.model != self.config.model:
                raise TrainingError(f"{folder} pretrained a {saved_config.model}; this run trains a "
                                    f"{self.config.model} (pass --model {saved_config.model})")
            load_pretrained(self.model, saved.state_dict())
            self.pretrained = f"self-supervised {pretrain['task']} on {pretrain['images']} images ({folder})"
            return
        if saved_config.model != self.config.model or saved_config.classes != self.classes:
            raise TrainingError(f"cannot continue: the saved network is a {saved_config.model} for the classes "
                                f"{', '.join(saved_config.classes)}; this run trains a {self.config.model} for "
                                f"{', '.join(self.classes)} (restart instead)")
        self.model.load_state_dict(saved.state_dict())
        self.pretrained = f"continued from {folder}"

    def _parameter_groups(self) -> list[dict]:
        """The pretrained encoder at the base learning rate, the layers that start from random weights beside it
        at ``new_layer_lr_mult`` times that; a network with nothing pretrained in it is one group."""
        encoder = pretrained_part(self.model) if self.pretrained != "none" else None
        if encoder is None:
            return [{"params": list(self.model.parameters()), "lr_mult": 1.0}]
        ids = {id(p) for p in encoder.parameters()}
        return [{"params": list(encoder.parameters()), "lr_mult": 1.0},
                {"params": [p for p in self.model.parameters() if id(p) not in ids],
                 "lr_mult": self.config.new_layer_lr_mult}]

    # ---- the loop ---------------------------------------------------------------------------------------------
    def run(self) -> Iterator[ProgressRecord]:
        c = self.config
        notes = [f"model {c.model} (initial weights: {self.pretrained}) on {self.device}"]
        start = last_preview = last_eval = last_score = time.monotonic()
        window: list[float] = []
        self.model.train()
        while self.step < c.steps:
            entered = time.monotonic()
            if agree(c.max_minutes is not None and self.active_s > c.max_minutes * 60, self.device):
                notes.append(f"stopped after {c.max_minutes} minutes (--max-minutes)")
                break
            self._set_lr()
            self.classes = current_classes(self.project.store, self.class_ids, self.classes)
            self.background = background_index(self.classes)
            changed = self.index.refresh()
            labelled = len(self.index.keys)
            if agree(not labelled, self.device):
                if self.world.distributed:
                    raise TrainingError(f"one of the {self.world.size} training processes has no marked image in "
                                        "its share of the images: mark more images or train with fewer processes")
                raise TrainingError("no image has a ground-truth mask" if c.supervision == "full" else
                                    "no image has marks yet: draw a few strokes for at least two classes")
            if changed and self.step:
                notes.append(f"picked up new marks on {changed} image{'s' * (changed != 1)}")
            waited = time.monotonic()
            loaded = self.next_loaded()
            # building targets (GrabCut for boxes: about a second an image) is not training time
            preparing = min(time.monotonic() - waited, loaded.prepare_s)
            if preparing > 5:
                notes.append(f"prepared the marks of the images drawn in {preparing:.0f} s (not counted as "
                             "training time)")
            for image_id, revision, reason in loaded.rejected:
                if self.index.reject(image_id, revision, reason) and reason is not None:
                    notes.append(f"skipped an image: {reason}")
            if agree(loaded.batch is None, self.device):  # every image drawn was left out: draw again
                self.active_s += time.monotonic() - entered - preparing
                continue
            t0 = time.monotonic()
            try:
                losses = self._train_step(loaded.batch)
            except torch.OutOfMemoryError:
                raise TrainingError(f"out of memory on {self.device} at batch size {c.batch_size}, crop "
                                    f"{c.crop_size} px: lower the batch size, crop or working size, or use the CPU") from None
            window = (window + [time.monotonic() - t0])[-20:]
            self.step += 1
            now = time.monotonic()
            preview = None
            if self.preview_image_id is not None and (now - last_preview >= c.preview_interval_s or self.step == c.steps):
                preview = self.preview(self.preview_image_id)
                last_preview = time.monotonic()
            miou = None
            if c.eval_interval_s and (now - last_eval >= c.eval_interval_s or self.step == c.steps):
                miou = self.evaluate()
                last_eval = time.monotonic()
            scores = {}
            if c.score_interval_s and now - last_score >= c.score_interval_s:
                scores = self.score_images(c.score_images)
                last_score = time.monotonic()
            self.active_s += time.monotonic() - entered - preparing
            yield ProgressRecord(self.step, c.steps, losses, len(window) / max(sum(window), 1e-9), now - start,
                                 str(self.device), labelled, preview, miou, notes, scores)
            notes = []

    def progress(self) -> float:
        """How far through the run (0..1): by steps, or by time under ``max_minutes`` if that ends it sooner, so a
        time-limited run still anneals its learning rate instead of stopping at the peak."""
        c = self.config
        by_time = self.active_s / (c.max_minutes * 60) if c.max_minutes else 0.0
        return max(self.step / c.steps, by_time)

    def _set_lr(self) -> None:
        factor = lr_factor(self.step, self.progress())
        for group in self.optimizer.param_groups:
            group["lr"] = self.config.lr * factor * group["lr_mult"]

    def _losses(self, logits: torch.Tensor, batch: Batch) -> dict[str, torch.Tensor]:
        """Every training term (engine.training.terms) that applies to this batch, at its weight."""
        return weighted_terms(StepInputs(logits, torch.softmax(logits, 1), batch, self.config, self.background,
                                         self.step))

    def _train_step(self, batch: Batch) -> dict[str, float]:
        c = self.config
        batch = batch.to(self.device)
        with torch.autocast(self.device.type, enabled=self.amp):
            logits = self.forward(batch.inputs)
        terms = self._losses(logits.float(), batch)
        total = sum(terms.values())
        if agree(not torch.isfinite(total.detach()), self.device):
            raise TrainingError(f"the loss became {total.item()} at step {self.step + 1}; lower the learning rate "
                                f"(now {c.lr}) or the regularizer weight (now {c.effective_reg_weight})")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(total).backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        out = {name: t.detach().item() for name, t in terms.items()}
        out["total"] = total.detach().item()
        return mean_over_ranks(out, [*TERMS, "total"], self.device)

    # ---- inference --------------------------------------------------------------------------------------------
    @torch.no_grad()
    def predict_probs(self, image: np.ndarray) -> torch.Tensor:
        """(K, H, W) probabilities for a working-size (H, W, 3) uint8 image, in eval mode."""
        was_training = self.model.training
        self.model.eval()
        x = torch.from_numpy(image).permute(2, 0, 1)[None].float().to(self.device)
        with torch.autocast(self.device.type, enabled=self.amp):
            probs = torch.softmax(self.model(x).float(), 1)[0]
        self.model.train(was_training)
        return probs

    def preview(self, image_id: int) -> Preview | None:
        try:
            image, gray = self.source.image(image_id)
        except Exception:  # an unreadable image gets no preview; the GUI shows the load error itself
            return None
        probs = self.predict_probs(image)
        img = torch.from_numpy(image).permute(2, 0, 1)[None].float().to(self.device)
        g = display_gradient(img[:, :1] if gray else img, probs[None], self.config)
        grad = g[0].float().cpu().numpy() if g is not None else None
        probs_np = probs.float().cpu().numpy()
        return Preview(image_id, probs_np.argmax(0).astype(np.uint8), probs_np.astype(np.float16), grad,
                       self._refined(image_id, image[..., :1] if gray else image, probs_np))

    def _refined(self, image_id: int, image: np.ndarray, probs: np.ndarray) -> np.ndarray | None:
        """The image's mask refined with its own marks at working size, recomputed at most every
        ``refine_interval_s`` unless its marks changed (it takes a good part of a training step); None where
        the image has no marks."""
        store = self.project.store
        revision = store.marks_revisions().get(image_id)
        cached = self._refined_cache.get(image_id)
        now = time.monotonic()
        if cached is not None and cached[0] == revision and now - cached[1] < self.config.refine_interval_s:
            return cached[2]
        h, w = image.shape[:2]
        marks = store_marks(store, store.image(image_id), (w, h))
        labels = refine_labels(image, probs, seeds=marks.seeds, boxes=marks.boxes, present=marks.present,
                               background=self.background) if marks.any else None
        self._refined_cache[image_id] = (revision, now, labels)
        return labels

    def score_images(self, count: int) -> dict[int, float]:
        """Needs-marks scores (engine.suggest) of the next ``count`` images, taking the project's images in turn
        so that every one is scored again each round; an image that cannot be read is passed over (fewer scores)."""
        store = self.project.store
        if not self._to_score:
            self._to_score = [r.id for r in reversed(store.images())]
        out = {}
        for image_id in [self._to_score.pop() for _ in range(min(count, len(self._to_score)))]:
            try:
                image, _ = self.source.image(image_id)
            except Exception:  # unreadable or deleted: the list shows why
                continue
            probs = self.predict_probs(image).float().cpu().numpy()
            marked = store.seed_map(image_id, probs.shape[1:]) != UNLABELED
            out[image_id] = needs_marks(probs, marked)
        return out

    def evaluate(self, limit: int = 20) -> float | None:
        """mIoU on up to ``limit`` images with ground truth (the project's test split first)."""
        store = self.project.store
        gt_ids = store.ground_truth_ids()
        if not gt_ids:
            return None
        recs = [r for r in store.images() if r.id in gt_ids]
        recs.sort(key=lambda r: (r.split != "test", r.id))
        conf = np.zeros((len(self.classes),) * 2, np.int64)
        for rec in recs[:limit]:
            try:
                image, _ = self.source.image(rec.id)
            except Exception:
                continue
            pred = self.predict_probs(image).argmax(0).cpu().numpy().astype(np.uint8)
            gt = resize_labels(store.ground_truth(rec.id), pred.shape)
            conf += confusion_matrix(pred, gt, len(self.classes))
        return scores(conf).miou if conf.sum() else None

    def save(self, folder: str | Path) -> None:
        c = self.config
        save_model(self.model, ModelConfig(c.model, self.classes, c.working_size, self.pretrained,
                                           extra={"train": c.as_dict(), "steps_done": self.step}), folder)
