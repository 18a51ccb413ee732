"""Self-supervised pretraining of the segmentation network on the project's own images, marked or not.

Where labels are short, the images themselves can teach the encoder (lecture 000): the network learns to undo a
corruption it is shown, which needs no label, and ``wsv train --init RUN`` starts from what it learnt instead of
ImageNet (or random) weights. Tasks:

* inpainting: random rectangles covering about a quarter of each crop are filled with mid-grey; the network
  redraws them (loss mostly on the hidden pixels), which asks for the shapes and textures around them;
* denoising: Gaussian noise of a random strength (σ from 5 to 50 grey levels) is added; the network returns the
  clean crop;
* colorization: the network sees the crop in grey and returns its colours (colour projects only).

The network is the segmentation model itself with three output channels (the image, 0..1); training later loads
every weight whose name and shape match, so the encoder and decoder carry over and only the class head starts
afresh.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torchvision.transforms import v2

from engine.io.images import ImageLoadError
from engine.models.registry import MODEL_NAMES, ModelConfig, build_model, default_model_name, save_model
from engine.project import Project
from engine.settings import check, setting
from engine.training.common import TrainingError, devices, lr_factor, pick_device
from engine.training.data import SampleSource

TASKS = ("inpainting", "denoising", "colorization")
KEPT_WEIGHT = 0.1
"""inpainting: loss weight of the pixels left visible, beside 1 for the hidden ones, so that the network answers
with the whole image (a readable preview) while the hole is what it learns from"""
PRETRAIN_KEY = "pretrain"
"""key of a pretraining run's description in its saved model's ``extra``"""


@dataclass
class PretrainConfig:
    task: str = setting("inpainting", choices=TASKS,
                        help="what the network learns to undo: hidden rectangles, noise, or missing colour")
    model: str = setting(default_factory=default_model_name, choices=MODEL_NAMES,
                         help="the segmentation network to pretrain (train with the same --model)")
    steps: int = setting(1000, low=1, help="training steps")
    max_minutes: float | None = setting(None, positive=True, help="stop after this many minutes of training")
    batch_size: int = setting(8, low=1, help="crops per step")
    crop_size: int = setting(128, low=16, help="side of the random crops, in working-size pixels")
    working_size: int = setting(320, low=32, high=4096, help="longer image side the images are read at")
    lr: float = setting(1e-3, positive=True, help="learning rate (AdamW)")
    device: str = setting("auto", suggestions=devices, help="auto, cpu or cuda:N")
    threads: int | None = setting(None, low=1, help="CPU threads for torch (default: torch's)")
    seed: int = setting(0, help="seed of the crops, the corruptions and the initial head")
    allow_download: bool = setting(False, help="let torchvision download ImageNet backbone weights")
    preview_interval_s: float = 2.0
    cache_mb: int = 512
    """memory for decoded images (engine.training.data.SampleSource)"""
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        check(self)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PretrainRecord:
    step: int
    total_steps: int
    loss: float
    steps_per_s: float
    elapsed_s: float
    images: int
    preview: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
    """(input, output, target) of one crop, (h, w, 3) uint8 each"""
    notes: list[str] = field(default_factory=list)


def corrupt(task: str, crops: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(network input in 0..255, loss weight per pixel (B, 1, h, w)) for clean ``crops`` (B, 3, h, w) 0..255."""
    b, _, h, w = crops.shape
    if task == "denoising":
        sigma = 5 + 45 * torch.rand(b, 1, 1, 1, generator=generator)
        noisy = crops + sigma * torch.randn(crops.shape, generator=generator)
        return noisy.clamp(0, 255), torch.ones(b, 1, h, w)
    if task == "colorization":
        gray = (0.299 * crops[:, :1] + 0.587 * crops[:, 1:2] + 0.114 * crops[:, 2:]).expand(-1, 3, -1, -1)
        return gray.contiguous(), torch.ones(b, 1, h, w)
    hidden = torch.zeros(b, 1, h, w)
    for i in range(b):  # two to four rectangles of a quarter to a half of each side
        for _ in range(int(torch.randint(2, 5, (1,), generator=generator))):
            rh, rw = (int(s * (0.25 + 0.25 * float(torch.rand(1, generator=generator)))) for s in (h, w))
            r0 = int(torch.randint(0, h - rh + 1, (1,), generator=generator))
            c0 = int(torch.randint(0, w - rw + 1, (1,), generator=generator))
            hidden[i, :, r0:r0 + rh, c0:c0 + rw] = 1
    return torch.where(hidden.bool(), torch.full_like(crops, 127.5), crops), hidden + KEPT_WEIGHT * (1 - hidden)


class Pretrainer:
    """Self-supervised training as a generator of PretrainRecords (as the Trainer: the driver pauses and stops)."""

    def __init__(self, project_root: str | Path, config: PretrainConfig) -> None:
        self.config = c = config
        project = Project.open(project_root)
        try:
            self.image_ids = [r.id for r in project.store.images()]
        finally:
            project.close()
        if not self.image_ids:
            raise TrainingError("the project has no images to pretrain on")
        self.device = pick_device(c.device)
        if c.threads:
            torch.set_num_threads(c.threads)
        torch.manual_seed(c.seed)
        self.model, self.initial = build_model(c.model, 3, allow_download=c.allow_download)
        self.model.to(self.device).train()
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=c.lr, weight_decay=1e-4)
        self.source = SampleSource(Path(project_root), "full", c.working_size, c.cache_mb << 20)
        self.generator = torch.Generator().manual_seed(c.seed)
        self.crop = v2.Compose([v2.RandomResizedCrop(c.crop_size, scale=(0.35, 1.0), antialias=True),
                                v2.RandomHorizontalFlip()])
        self.step = 0
        self.errors: list[str] = []
        self._gray: dict[int, bool] = {}

    def close(self) -> None:
        self.source.close()

    def _batch(self) -> torch.Tensor:
        """(B, 3, crop, crop) float 0..255 clean crops of random images (unreadable ones skipped, named once)."""
        crops = []
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(0, 2 ** 62, (1,), generator=self.generator)))
            while len(crops) < self.config.batch_size:
                if len(self.errors) == len(self.image_ids):
                    raise TrainingError("none of the project's images can be read: " + self.errors[0])
                image_id = self.image_ids[int(torch.randint(0, len(self.image_ids), (1,), generator=self.generator))]
                try:
                    pixels, gray = self.source.image(image_id)
                except ImageLoadError as exc:
                    if str(exc) not in self.errors:
                        self.errors.append(str(exc))
                    continue
                self._gray[image_id] = gray
                crops.append(self.crop(torch.from_numpy(pixels).permute(2, 0, 1)).float())
        return torch.stack(crops)

    def run(self) -> Iterator[PretrainRecord]:
        c = self.config
        notes = [f"{c.task} on the project's {len(self.image_ids)} images, {c.model} "
                 f"(initial weights: {self.initial}) on {self.device}"]
        start = last_preview = time.monotonic()
        window: list[float] = []
        reported = 0
        while self.step < c.steps:
            t0 = time.monotonic()
            if c.max_minutes is not None and t0 - start > c.max_minutes * 60:
                notes.append(f"stopped after {c.max_minutes} minutes (--max-minutes)")
                break
            factor = lr_factor(self.step, self.step / c.steps)
            for group in self.optimizer.param_groups:
                group["lr"] = c.lr * factor
            clean = self._batch()
            if c.task == "colorization" and self._gray and all(self._gray.values()) and self.step == 0:
                raise TrainingError("colorization needs colour images; this project's are grayscale: choose "
                                    "inpainting or denoising")
            inputs, weight = corrupt(c.task, clean, self.generator)
            out = self.model(inputs.to(self.device))
            target = (clean / 255).to(self.device)
            weight = weight.to(self.device)
            loss = ((out - target).abs() * weight).sum() / (weight.sum() * 3).clamp_min(1)
            if not torch.isfinite(loss):
                raise TrainingError(f"the loss became {loss.item()} at step {self.step + 1}; lower the learning "
                                    f"rate (now {c.lr})")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            window = (window + [time.monotonic() - t0])[-20:]
            now = time.monotonic()
            preview = None
            if now - last_preview >= c.preview_interval_s or self.step == c.steps:
                preview = tuple(np.clip(a[0].detach().float().cpu().permute(1, 2, 0).numpy() * s, 0, 255)
                                .astype(np.uint8) for a, s in ((inputs, 1), (out, 255), (target, 255)))
                last_preview = time.monotonic()
            notes += [f"skipped an image: {e}" for e in self.errors[reported:]]
            reported = len(self.errors)
            yield PretrainRecord(self.step, c.steps, loss.item(), len(window) / max(sum(window), 1e-9),
                                 now - start, len(self.image_ids), preview, notes)
            notes = []

    def save(self, folder: str | Path) -> None:
        c = self.config
        save_model(self.model, ModelConfig(c.model, ["red", "green", "blue"], c.working_size, self.initial,
                                           extra={PRETRAIN_KEY: {"task": c.task, "steps_done": self.step,
                                                                 "images": len(self.image_ids),
                                                                 "config": c.as_dict()}}), folder)


def load_pretrained(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> int:
    """Copy into ``model`` every tensor of a pretraining run's ``state`` whose name and shape it shares (all but
    the class head); returns how many it copied."""
    own = model.state_dict()
    shared = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(shared, strict=False)
    return len(shared)
