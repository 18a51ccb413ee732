"""The classic detector from the lecture: HOG features, one linear SVM per class (one-vs-rest), hard-negative
mining, and sliding windows over an image pyramid followed by NMS.

Per class, the window's aspect ratio is the median of the training boxes' and its shorter side 64 pixels; the
object fills the window but for ``context`` pixels on each side, since the gradients at an object's outline are
what HOG describes. Positives are the boxes resampled to the window (and their mirror images); negatives are
random windows away from the class's boxes (other classes' objects included) and, after each round, the
highest-scoring false detections on the training images. The pyramid only visits the scales at which training
objects would fill the window (with a margin), stepping by ``scale_step``. Scores are SVM decision values.
Saved as JSON + one .npy array per class: nothing is unpickled on loading.
"""
from __future__ import annotations

import math
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
import torch
from torchvision.ops import batched_nms, nms

from engine.detection.data import DetectionSample, DetectionSet
from engine.detection.evaluate import DetectionScores, evaluate_samples, box_iou
from engine.detection.hog import CELL, blocks_in, block_grid, crop_window, descriptor, resize, score_map, window_shape
from engine.detection.labels import object_classes
from engine.detection.linear_svm import train_linear_svm
from engine.detection.models import FORMAT_VERSION, DetectorError, read_detector_json, write_detector_json
from engine.detection.postprocess import RAW_NMS_IOU, Detections
from engine.detection.records import HogSvmRecord
from engine.io.atomic import write_atomic
from engine.project import Project
from engine.settings import SettingError, check, setting
from engine.training.common import TrainingError

METHOD = "hog-svm"
SCORE_FLOOR = -1.0
"""raw detections keep every window inside the SVM's margin (decision value > -1)"""
DEFAULT_SCORE_THRESHOLD = 0.0
"""the SVM's decision boundary"""
RAW_MAX_DETECTIONS = 500
PRE_NMS_PER_CLASS = 2000
"""windows per class kept for NMS, best first: every window within the margin of a many-class detector can be
tens of thousands per image, and greedy NMS is quadratic in them (torchvision's detectors cap theirs the same way)"""
NEGATIVE_IOU = 0.3
"""a window overlapping an object of the class by less than this is a negative for it"""


@dataclass
class HogSvmConfig:
    window_short_side: int = setting(64, low=16, flag="window",
                                     help="HOG + SVM: shorter side of the detection window, in pixels (multiple "
                                          "of 8)")
    context: int = setting(8, low=0, help="HOG + SVM: pixels of the window, on each side, around the object")
    negatives_per_image: int = setting(20, low=0, help="HOG + SVM: random negative windows per image")
    mining_rounds: int = setting(1, low=0, help="HOG + SVM: rounds of hard-negative mining")
    hard_negatives_per_image: int = setting(10, low=0, help="HOG + SVM: hard negatives kept per image and round")
    svm_c: float = setting(0.01, positive=True, help="HOG + SVM: the SVM's regularization constant C")
    scale_step: float = setting(1.2, low=1.01, help="HOG + SVM: scale between pyramid levels")
    max_side: int = setting(2048, low=64, help="HOG + SVM: pyramid levels whose longer side would exceed this many "
                                               "pixels are skipped (memory and time)")
    working_size: int = setting(512, low=32, help="longer image side given to the detector, in pixels")
    holdout_fraction: float = setting(0.2, low=0, high=0.95, flag="holdout",
                                      help="fraction of images held out for evaluation where none has the test "
                                           "split")
    holdout_seed: int = 0
    seed: int = setting(0, help="seed of the negative windows' sampling")

    def __post_init__(self) -> None:
        check(self)
        if self.window_short_side % 8:
            raise SettingError(f"window_short_side must be a multiple of 8, at least 16, got {self.window_short_side}")
        if not self.context < self.window_short_side // 4:
            raise SettingError(f"context must lie in [0, window_short_side / 4), got {self.context}")


@dataclass(eq=False)
class ClassModel:
    label: int
    window: tuple[int, int]
    """(width, height) in pixels, multiples of 8"""
    context: int
    weights: np.ndarray
    """(blocks down, blocks across, 36) float32"""
    bias: float
    levels: list[int]
    """pyramid levels searched: the image is scaled by scale_step ** level"""


class HogSvmDetector:
    """Detects with one linear SVM per class; ``detect`` gives raw detections for ``postprocess``."""

    method = METHOD
    score_floor = SCORE_FLOOR
    default_score_threshold = DEFAULT_SCORE_THRESHOLD

    def __init__(self, classes: list[str], working_size: int, scale_step: float, max_side: int,
                 models: list[ClassModel]) -> None:
        self.classes = classes
        self.working_size = working_size
        self.scale_step = scale_step
        self.max_side = max_side
        self.models = models

    def detect(self, pixels: np.ndarray) -> Detections:
        """Raw detections in the pixel coordinates of ``pixels`` (H, W, 3) uint8."""
        found = Detections.concatenate(self.detect_per_class(pixels))
        if not len(found):
            return found
        keep = batched_nms(torch.from_numpy(found.boxes), torch.from_numpy(found.scores),
                           torch.from_numpy(found.labels), RAW_NMS_IOU).numpy()[:RAW_MAX_DETECTIONS]
        return found.take(keep)

    def detect_per_class(self, pixels: np.ndarray, floor: float = SCORE_FLOOR) -> list[Detections]:
        """The best PRE_NMS_PER_CLASS windows scoring above ``floor``, one Detections per class model (in
        ``models`` order), before NMS. Each pyramid level's HOG blocks are computed once and scored by every model that searches that
        level: computing the blocks is what costs, scoring them is a cheap correlation."""
        grids: dict[int, tuple[np.ndarray, float, float]] = {}
        out = []
        for model in self.models:
            parts = []
            for level in model.levels:
                if level not in grids:
                    grids[level] = self._level(pixels, level)
                grid, sx, sy = grids[level]
                parts.append(_windows(model, grid, sx, sy, self.border, floor))
            found = Detections.concatenate(parts)
            if len(found) > PRE_NMS_PER_CLASS:
                found = found.take(np.argpartition(-found.scores, PRE_NMS_PER_CLASS)[:PRE_NMS_PER_CLASS])
            out.append(found)
        return out

    @property
    def border(self) -> int:
        """Pixels (whole cells) added around each pyramid level by replicating its edges, so that windows whose
        context reaches past the image find objects touching its border, as training crops do."""
        return max((-(-m.context // CELL) * CELL for m in self.models), default=0)

    def _level(self, pixels: np.ndarray, level: int) -> tuple[np.ndarray, float, float]:
        h, w = pixels.shape[:2]
        scale = self.scale_step ** level
        if max(h, w) * scale > self.max_side:
            return np.zeros((0, 0, 36), np.float32), scale, scale
        scaled = resize(pixels, scale)
        b = self.border
        padded = cv2.copyMakeBorder(scaled, b, b, b, b, cv2.BORDER_REPLICATE) if b else scaled
        return block_grid(padded), scaled.shape[1] / w, scaled.shape[0] / h

    def save(self, folder: str | Path, extra: dict | None = None) -> None:
        """Weights go to files named for this save, and the description naming them replaces the old one in one
        rename, so a crash leaves the previous detector or this one whole; the old weights go after."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        stamp = uuid.uuid4().hex[:8]
        models = []
        for m in self.models:
            name = f"hog_svm_class{m.label}-{stamp}.npy"
            write_atomic(folder / name, lambda p, w=m.weights: _save_array(p, w))
            models.append({"label": m.label, "window": list(m.window), "context": m.context, "bias": m.bias,
                           "levels": m.levels, "weights": name})
        write_detector_json(folder, {"method": METHOD, "classes": self.classes, "working_size": self.working_size,
                                     "scale_step": self.scale_step, "max_side": self.max_side, "models": models,
                                     "extra": extra or {}, "format_version": FORMAT_VERSION})
        keep = {m["weights"] for m in models}
        for old in folder.glob("hog_svm_class*.npy"):
            if old.name not in keep:
                old.unlink(missing_ok=True)

    @classmethod
    def load(cls, folder: str | Path) -> "HogSvmDetector":
        folder = Path(folder)
        raw = read_detector_json(folder)
        try:
            models = []
            for m in raw["models"]:
                weights = np.load(folder / Path(m["weights"]).name, allow_pickle=False)
                window = (int(m["window"][0]), int(m["window"][1]))
                if weights.shape != (*blocks_in(window), 36):
                    raise ValueError(f"weights of shape {weights.shape} do not fit a {window} window")
                models.append(ClassModel(int(m["label"]), window, int(m["context"]), weights.astype(np.float32),
                                         float(m["bias"]), [int(v) for v in m["levels"]]))
            return cls(list(raw["classes"]), int(raw["working_size"]), float(raw["scale_step"]),
                       int(raw["max_side"]), models)
        except (KeyError, TypeError, ValueError, OSError) as exc:
            raise DetectorError(f"{folder} holds no valid HOG + SVM detector: {exc}") from None


def _save_array(path: Path, weights: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save would append .npy to the temporary name
        np.save(f, weights.astype(np.float32), allow_pickle=False)


def _windows(model: ClassModel, grid: np.ndarray, sx: float, sy: float, border: int, floor: float) -> Detections:
    """Every window of one pyramid level (padded by ``border``) scoring above ``floor``, as the object boxes they
    stand for, in the pixels of the unscaled image."""
    scores = score_map(grid, model.weights, model.bias)
    ys, xs = np.nonzero(scores > floor)
    if not len(xs):
        return Detections.empty()
    (ww, wh), ctx = model.window, model.context
    x0, y0 = xs * float(CELL) + ctx - border, ys * float(CELL) + ctx - border
    boxes = np.stack([x0 / sx, y0 / sy, (x0 + ww - 2 * ctx) / sx, (y0 + wh - 2 * ctx) / sy], 1)
    return Detections(boxes, scores[ys, xs], np.full(len(xs), model.label))


class HogSvmTrainer:
    """Trains the HOG + SVM detector on a project's boxes; ``run()`` yields a HogSvmRecord per stage. Opens its
    own store connection, so create it in the thread that runs it."""

    def __init__(self, project_root: str | Path, config: HogSvmConfig) -> None:
        self.config = config
        self.project = Project.open(project_root)
        self.classes = [c.name for c in self.project.store.classes()]
        if not object_classes(self.classes):
            raise TrainingError("a detector needs at least one object class besides the background")
        self.data = DetectionSet(self.project, config.working_size, config.holdout_fraction, config.holdout_seed)
        self.rng = np.random.default_rng(config.seed)
        self.detector: HogSvmDetector | None = None

    def close(self) -> None:
        self.project.close()

    def run(self) -> Iterator[HogSvmRecord]:
        """Stages: each class's initial windows, each class's SVM, then per mining round one pass over the
        training images (a stage per image, mining for every class at once, so each image's pyramid is computed
        once per round rather than once per class) and each class's SVM again."""
        c = self.config
        start = time.monotonic()
        self.data.refresh()
        samples = list(self.data.samples.values())
        labels = sorted({int(k) for s in samples for k in s.labels})
        if not labels:
            raise TrainingError("no training image has boxes yet: draw boxes around a few objects")
        total = 2 * len(labels) + c.mining_rounds * (len(samples) + len(labels))
        stage = 0
        models, pos, neg = [], {}, {}
        for label in labels:
            model, pos[label], neg[label] = self._initial(samples, label)
            models.append(model)
            stage += 1
            yield HogSvmRecord(stage, total, f"{self.classes[label]}: features of {len(pos[label])} positive and "
                                             f"{len(neg[label])} negative windows", time.monotonic() - start,
                               len(pos[label]), len(neg[label]),
                               [f"{self.classes[label]}: {model.window[0]} x {model.window[1]} window, "
                                f"{len(model.levels)} pyramid levels"])
        for round_ in range(c.mining_rounds + 1):
            for model in models:
                self._fit(model, pos[model.label], neg[model.label])
                stage += 1
                yield HogSvmRecord(stage, total, f"{self.classes[model.label]}: SVM trained (round {round_ + 1})",
                                   time.monotonic() - start, len(pos[model.label]), len(neg[model.label]))
            # usable from here on: a stop during mining keeps these SVMs
            self.detector = HogSvmDetector(self.classes, c.working_size, c.scale_step, c.max_side, models)
            if round_ == c.mining_rounds:
                break
            hard: dict[int, list[np.ndarray]] = {m.label: [] for m in models}
            for i, sample in enumerate(samples):
                for model, found in zip(models, self.detector.detect_per_class(sample.image)):
                    hard[model.label] += self._hard_negatives(model, sample, found)
                stage += 1
                yield HogSvmRecord(stage, total, f"hard-negative mining (round {round_ + 1}): image {i + 1} of "
                                                 f"{len(samples)}", time.monotonic() - start,
                                   sum(len(v) for v in pos.values()), sum(len(v) for v in neg.values()))
            for label, found in hard.items():
                if found:
                    neg[label] = np.concatenate([neg[label], np.stack(found)])

    # ---- per class --------------------------------------------------------------------------------------------
    def _initial(self, samples: list[DetectionSample], label: int) -> tuple[ClassModel, np.ndarray, np.ndarray]:
        c = self.config
        boxes = np.concatenate([s.boxes[s.labels == label] for s in samples])
        wh = boxes[:, 2:] - boxes[:, :2]
        window = window_shape(float(np.median(wh[:, 0] / wh[:, 1])), c.window_short_side)
        inner = min(window) - 2 * c.context
        short = wh.min(axis=1)
        lo = math.floor(math.log(inner / (short.max() * 1.25), c.scale_step))
        hi = math.ceil(math.log(inner / (short.min() / 1.25), c.scale_step))
        by, bx = blocks_in(window)
        model = ClassModel(label, window, c.context, np.zeros((by, bx, 36), np.float32), 0.0, list(range(lo, hi + 1)))
        pos, neg = [], []
        for s in samples:
            mine = s.boxes[s.labels == label]
            for box in mine:
                patch = crop_window(s.image, box, window, c.context)
                pos += [descriptor(patch), descriptor(np.ascontiguousarray(patch[:, ::-1]))]
            for box in s.boxes[s.labels != label]:  # other classes' objects teach what this class is not
                if not len(mine) or box_iou(box[None], mine).max() < NEGATIVE_IOU:
                    neg.append(descriptor(crop_window(s.image, box, window, c.context)))
            neg += [descriptor(crop_window(s.image, box, window, c.context))
                    for box in self._random_windows(s, model, mine)]
        return model, np.stack(pos), np.stack(neg) if neg else np.zeros((0, len(pos[0])), np.float32)

    def _random_windows(self, sample: DetectionSample, model: ClassModel, objects: np.ndarray) -> list[np.ndarray]:
        """Object-sized boxes at random places and pyramid scales that overlap no object of the class."""
        h, w = sample.image.shape[:2]
        (ww, wh), ctx = model.window, model.context
        out = []
        for _ in range(self.config.negatives_per_image * 5):
            if len(out) == self.config.negatives_per_image:
                break
            scale = self.config.scale_step ** int(self.rng.choice(model.levels))
            bw, bh = (ww - 2 * ctx) / scale, (wh - 2 * ctx) / scale
            x0 = self.rng.uniform(-ctx / scale, max(w - bw + ctx / scale, 0.0))
            y0 = self.rng.uniform(-ctx / scale, max(h - bh + ctx / scale, 0.0))
            box = np.array([x0, y0, x0 + bw, y0 + bh], np.float32)
            if not len(objects) or box_iou(box[None], objects).max() < NEGATIVE_IOU:
                out.append(box)
        return out

    def _fit(self, model: ClassModel, pos: np.ndarray, neg: np.ndarray) -> None:
        if not len(neg):
            raise TrainingError("found no background to learn from: the boxes cover the whole of every image")
        x = np.concatenate([pos, neg])
        y = np.concatenate([np.ones(len(pos)), -np.ones(len(neg))])
        w, b = train_linear_svm(x, y, self.config.svm_c)
        model.weights = w.reshape(model.weights.shape)
        model.bias = b

    def _hard_negatives(self, model: ClassModel, sample: DetectionSample, found: Detections) -> list[np.ndarray]:
        """Descriptors of the highest-scoring windows of one class on a training image that overlap no object of
        the class."""
        mine = sample.boxes[sample.labels == model.label]
        if len(mine) and len(found):
            found = found.take(np.flatnonzero(box_iou(found.boxes, mine).max(1) < NEGATIVE_IOU))
        if not len(found):
            return []
        keep = nms(torch.from_numpy(found.boxes), torch.from_numpy(found.scores), 0.5).numpy()
        return [descriptor(crop_window(sample.image, box, model.window, model.context))
                for box in found.boxes[keep[:self.config.hard_negatives_per_image]]]

    # ---- results ----------------------------------------------------------------------------------------------
    def evaluate(self) -> DetectionScores | None:
        """Scores on the held-out images (None without any), at working resolution."""
        if self.detector is None or not self.data.heldout:
            return None
        return evaluate_samples(self.detector.detect, list(self.data.heldout.values()), len(self.classes))

    def save(self, folder: str | Path) -> None:
        if self.detector is None:
            raise TrainingError("nothing to save: the HOG + SVM detector has not been trained")
        self.detector.save(folder, extra={"train": asdict(self.config)})
