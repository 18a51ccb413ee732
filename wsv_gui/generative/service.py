"""Everything the tab asks of a trained model, answered in the service's own thread.

Requests arrive as queued signals and are handled one at a time: load the training images for a data setting,
load a saved model (reloaded whenever its weights file changes, e.g. a new training snapshot), draw samples,
interpolate a VAE's latent space between two training images, run a DDPM's reverse process frame by frame, fill
a hole or add 2× detail with a DDPM, and compute KID/FID and the memorisation check. Long requests check ``cancel()`` between sampler steps. Answers are
the plain-data messages of ``messages.py``; tensors and models never leave this thread.
"""
from __future__ import annotations

import threading
import traceback
from pathlib import Path

import numpy as np
import torch
from PySide6.QtCore import QObject, Signal, Slot

from engine.annotations.store import StoreError
from engine.generative.data import TrainingImages, load_training_images
from engine.generative.diffusion import ddim_timesteps
from engine.generative.evaluate import FeatureExtractor, class_accuracy, quality
from engine.generative.grids import image_grid, to_uint8
from engine.errors import UserError
from engine.generative.models import GenerativeModel, GenerativeModelError, load_generative
from engine.generative.restore import bicubic, inpaint, low_frequencies, super_resolve, with_hole
from engine.generative.vae import interpolate
from engine.training.common import TrainingError, pick_device
from wsv_gui.generative.messages import Interpolation, ModelInfo, RestoreRequest, ReverseFrame, SampleGrid, \
    TrainingSet
from wsv_gui.generative.model_files import MODEL_FILES_LOCK, stamp

MAX_FRAMES = 200
"""reverse-process frames kept for the player (evenly spaced, first and last included): a 1000-step DDPM run
needs no more to be seen, and 1000 pairs of grids would hold hundreds of MB"""


class Cancelled(Exception):
    """The user cancelled a long request."""


def frame_indices(total: int, limit: int = MAX_FRAMES) -> set[int]:
    """Up to ``limit`` evenly spaced indices of 0 ... ``total``, both ends included."""
    return {round(v) for v in np.linspace(0, total, min(limit, total + 1))}


def data_key(config: dict) -> dict:
    """A model's training data as the cache key the settings form also makes (GenerativeSettings.data_key)."""
    key = {k: config[k] for k in ("source", "image_size", "channels", "random_crops", "seed")}
    project_classes = bool(config.get("conditional")) and not key["source"].startswith("builtin:")
    return {**key, "classes": config.get("class_source", "boxes") if project_classes else None}


class GenerativeService(QObject):
    load_data = Signal(dict)  # data key
    load_model = Signal(str)  # folder
    draw = Signal(str, int, int, int, float, float)  # folder, n, seed, DDPM sampler steps (0: full DDPM), guidance
    # scales: classifier-free and classifier (conditional DDPM: n per class)
    interpolate = Signal(str, int, int, int)  # folder, index a, index b, steps
    reverse = Signal(str, int, int, int, float)  # folder, n, seed, DDIM steps (0: full DDPM), η
    evaluate = Signal(str, int, int, float, float)  # folder, n samples, DDPM sampler steps (0: full DDPM), guidance
    # scales
    restore = Signal(str, object)  # folder, RestoreRequest

    data_ready = Signal(object)  # TrainingSet
    model_ready = Signal(object)  # ModelInfo
    samples_ready = Signal(object)  # SampleGrid
    interpolation_ready = Signal(object)  # Interpolation
    reverse_frame = Signal(object)  # ReverseFrame
    reverse_finished = Signal(str)  # "" when it ran to the end, else why it stopped
    evaluation_ready = Signal(object)  # dict: QualityReport.as_dict() plus 'data', 'sampler', 'kind'
    restore_progress = Signal(int, int)  # steps done, of
    restore_ready = Signal(object)  # SampleGrid
    failed = Signal(str, str)  # request ('data', 'model', 'draw', 'interpolate', 'reverse', 'evaluate',
    # 'restore'), message

    def __init__(self) -> None:
        super().__init__()
        self.device = pick_device("auto")
        self._model_stamp: tuple | None = None
        self._model: GenerativeModel | None = None
        self._data_cache: dict[str, TrainingImages] = {}
        self._extractor: FeatureExtractor | None = None
        self._cancel = threading.Event()
        for signal, slot in ((self.load_data, self._load_data), (self.load_model, self._load_model),
                             (self.draw, self._draw), (self.interpolate, self._interpolate),
                             (self.reverse, self._reverse), (self.evaluate, self._evaluate),
                             (self.restore, self._restore)):
            signal.connect(slot)

    def cancel(self) -> None:
        """Ends a running reverse process, sampling or evaluation at its next step (safe from any thread)."""
        self._cancel.set()

    # ---- cached model and data --------------------------------------------------------------------------------
    def model(self, folder: str) -> GenerativeModel:
        with MODEL_FILES_LOCK:
            try:
                now = stamp(Path(folder))
            except OSError:
                raise GenerativeModelError(f"{folder} holds no generative model") from None
            if now != self._model_stamp:
                self._model, self._model_stamp = None, None
                self._model = load_generative(folder, self.device)
                self._model_stamp = now
        return self._model

    def data(self, key: dict) -> TrainingImages:
        name = repr(sorted(key.items()))
        if name not in self._data_cache:
            try:
                loaded = load_training_images(key["source"], key["image_size"], key["channels"],
                                              key["random_crops"], key["seed"], key.get("classes"))
            except (ValueError, OSError, StoreError) as exc:
                raise TrainingError(f"cannot load the training images ({key['source']}): {exc}") from None
            self._data_cache = {name: loaded}  # one set at a time: a project's images can be large
        return self._data_cache[name]

    def _sample(self, model: GenerativeModel, n: int, seed: int, ddpm_steps: int, labels: torch.Tensor | None = None,
                guidance: float | None = None, classifier_scale: float = 0.0) -> torch.Tensor:
        """n samples from fixed-seed noise (a conditional DDPM: of the classes ``labels``); a DDPM walks its sampler
        here so that cancel() takes effect."""
        g = torch.Generator().manual_seed(seed)
        if model.kind != "ddpm":
            return model.sample(n, g, labels=labels)
        x = None
        steps = model.reverse_process(model.noise(n, g), g, self._ddim(model, ddpm_steps), labels=labels,
                                      guidance=guidance, classifier_scale=classifier_scale)
        for step in steps:
            if self._cancel.is_set():
                raise Cancelled
            x = step.x
        return x

    @staticmethod
    def _ddim(model: GenerativeModel, steps: int) -> int | None:
        return None if steps <= 0 else min(steps, model.config.timesteps)

    @staticmethod
    def _sampler(model: GenerativeModel, steps: int) -> str:
        if model.kind != "ddpm":
            return "N(0, I) latents through the decoder" if model.kind == "vae" else "N(0, I) noise through the generator"
        ddim = GenerativeService._ddim(model, steps)
        return f"full DDPM ({model.config.timesteps} steps)" if ddim is None else f"DDIM, {ddim} steps, EMA weights"

    # ---- requests ---------------------------------------------------------------------------------------------
    def _run(self, request: str, job) -> str:
        """Run one request, turning every failure into a message (the thread must survive bad input); returns
        the message, "" on success."""
        self._cancel.clear()
        try:
            job()
            return ""
        except Cancelled:
            message = "cancelled"
        except UserError as exc:
            message = str(exc)
        except Exception as exc:
            message = f"{exc}\n\n{traceback.format_exc(limit=5)}"
        self.failed.emit(request, message)
        return message

    @Slot(dict)
    def _load_data(self, key: dict) -> None:
        def job() -> None:
            d = self.data(key)
            self.data_ready.emit(TrainingSet(dict(key), d.images.numpy().copy(), d.name, d.warning))
        self._run("data", job)

    @Slot(str)
    def _load_model(self, folder: str) -> None:
        def job() -> None:
            m = self.model(folder)
            self.model_ready.emit(ModelInfo(folder, m.kind, m.config.as_dict(), m.steps_done, m.data_name))
        self._run("model", job)

    @Slot(str, int, int, int, float, float)
    def _draw(self, folder: str, n: int, seed: int, ddpm_steps: int, guidance: float, classifier_scale: float) -> None:
        def job() -> None:
            m = self.model(folder)
            if not m.classes:
                grid = image_grid(self._sample(m, n, seed, ddpm_steps))
                self.samples_ready.emit(SampleGrid(grid, f"{n} samples, seed {seed}: {self._sampler(m, ddpm_steps)}"))
                return
            labels = torch.arange(len(m.classes)).repeat_interleave(n)
            scale = f"{classifier_scale:g}" if m.classifier is not None else "no classifier"
            grid = image_grid(self._sample(m, len(labels), seed, ddpm_steps, labels, guidance, classifier_scale), nrow=n)
            steering = (f"; classifier-free guidance {guidance:g}, classifier guidance {scale}" if m.kind == "ddpm"
                        else "")
            self.samples_ready.emit(SampleGrid(grid, f"{n} per class, one row each ({', '.join(m.classes)}), seed "
                                                     f"{seed}: {self._sampler(m, ddpm_steps)}{steering}"))
        self._run("draw", job)

    @Slot(str, int, int, int)
    def _interpolate(self, folder: str, a: int, b: int, steps: int) -> None:
        def job() -> None:
            m = self.model(folder)
            if m.kind != "vae":
                raise ValueError(f"latent interpolation needs a VAE; this model is a {m.kind}")
            images = self.data(data_key(m.config.as_dict())).images
            for i in (a, b):
                if not 0 <= i < len(images):
                    raise ValueError(f"image {i} does not exist: the training set has {len(images)} images (0–{len(images) - 1})")
            ends = images[[a, b]].to(self.device)
            frames = interpolate(m.net, ends[0], ends[1], steps)
            row = torch.cat([ends[:1], frames, ends[1:]])
            self.interpolation_ready.emit(Interpolation(to_uint8(frames), image_grid(row, nrow=len(row)), a, b))
        self._run("interpolate", job)

    @Slot(str, int, int, int, float)
    def _reverse(self, folder: str, n: int, seed: int, ddim_steps: int, eta: float) -> None:
        def job() -> None:
            m = self.model(folder)
            if m.kind != "ddpm":
                raise ValueError(f"the reverse process belongs to a DDPM; this model is a {m.kind}")
            g = torch.Generator().manual_seed(seed)
            ddim = self._ddim(m, ddim_steps)
            T = m.config.timesteps
            total = T if ddim is None else len(ddim_timesteps(T, ddim))
            keep = frame_indices(total)
            x = m.noise(n, g)
            for k, step in enumerate(m.reverse_process(x, g, ddim, eta)):
                if self._cancel.is_set():
                    raise Cancelled
                if k in keep:  # x_t (the state the step started from) beside x̂_0 predicted from it
                    self.reverse_frame.emit(ReverseFrame(k, total, step.t, image_grid(x), image_grid(step.x0_pred)))
                x = step.x
            final = image_grid(x)
            self.reverse_frame.emit(ReverseFrame(total, total, 0, final, final))
        self.reverse_finished.emit(self._run("reverse", job))

    @Slot(str, int, int, float, float)
    def _evaluate(self, folder: str, n: int, ddpm_steps: int, guidance: float, classifier_scale: float) -> None:
        def job() -> None:
            m = self.model(folder)
            data = self.data(data_key(m.config.as_dict()))
            labels = torch.arange(n) % len(m.classes) if m.classes else None  # every class as often
            samples = self._sample(m, n, 0, ddpm_steps, labels, guidance, classifier_scale)
            if self._extractor is None:
                self._extractor = FeatureExtractor(self.device)
            report = quality(samples, data.images, self._extractor).as_dict()
            if labels is not None:
                report["class_check"] = class_accuracy(samples, labels, data.images, data.labels,
                                                       len(m.classes)).as_dict()
            self.evaluation_ready.emit({**report, "data": data.name, "kind": m.kind, "sampler": self._sampler(m, ddpm_steps)})
        self._run("evaluate", job)

    @Slot(str, object)
    def _restore(self, folder: str, request: RestoreRequest) -> None:
        def on_step(done: int, total: int) -> None:
            if self._cancel.is_set():
                raise Cancelled
            if done % max(1, total // 100) == 0 or done == total:
                self.restore_progress.emit(done, total)

        def job() -> None:
            m = self.model(folder)
            g = torch.Generator().manual_seed(request.seed)
            image = torch.from_numpy(request.image)[None].float()
            T = m.config.timesteps
            if request.task == "inpaint":
                keep = ~torch.from_numpy(request.hole)[None, None]
                filled = inpaint(m, image, keep, g, request.resample, on_step).cpu()
                grid = image_grid(torch.cat([image, with_hole(image, keep), filled]), nrow=3)
                text = (f"the image; its hole ({int(request.hole.sum())} px) in grey; filled by the DDPM (RePaint, "
                        f"{T} steps × {request.resample}, seed {request.seed}; the kept pixels are the image's own)")
            else:
                low = torch.nn.functional.avg_pool2d(image, 2)
                sharp = super_resolve(m, low, g, on_step).cpu()
                grid = image_grid(torch.cat([image, low_frequencies(image), bicubic(low), sharp]), nrow=4)
                text = (f"the image; shrunk to {low.shape[-1]} px (2 × 2 means, shown enlarged); bicubic 2×; the "
                        f"DDPM's 2× (ILVR, {T} steps, seed {request.seed}; its 2 × 2 means are the shrunk image's)")
            self.restore_ready.emit(SampleGrid(grid, text))
        self._run("restore", job)
