"""``wsv bench active``: do the suggestions (engine.suggest) save strokes?

A simulated annotator marks a pool of a data set's training images, one people-like stroke at a time, while the
network trains between rounds, in one of two ways:

* suggested: each round it goes to the images that need marks most (the needs-marks score of every pool image
  under the current network, as the window's list sorts them) and draws one stroke in each image's top region
  worth a stroke (the region's peak), of the class the ground truth has there;
* random: each stroke goes to a random pool image, at a random labelled pixel.

Both start from the same marks (people-like strokes on a few pool images: engine.datasets.people) and the same
network, and draw the same kind of stroke where they decide to: a straight stroke through the chosen pixel,
inside its region of the ground truth, as long as a person draws there (√area for an object's region, the
background preset's length for the background), along the region's long axis (objects) or at a random angle
(background), moved to the nearest pixel where it fits and slid along itself (by up to half its length, so that
it still passes there) to where it fits at full length. After each round the test images' mIoU is measured, so
each run is a curve of test mIoU against the number of strokes drawn.
"""
from __future__ import annotations

import dataclasses
import math
import shutil
import time
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from engine.annotations.types import Stroke, background_index
from engine.bench.scoring import Tally
from engine.datasets.folder import DatasetFolder
from engine.datasets.people import BACKGROUND_SHARE, BACKGROUND_STROKES, PEOPLE_RADIUS, _fitting_segment, \
    simulate_people_scribbles
from engine.io.images import load_image
from engine.project import Project
from engine.suggest import needs_marks, regions_to_mark
from engine.training.config import TrainConfig
from engine.training.targets import resize_labels
from engine.training.trainer import Trainer

POLICIES = ("suggested", "random")


@dataclasses.dataclass
class ActiveSetup:
    pool: int = 40
    """training images the annotator may mark"""
    test: int = 40
    """test images scored after every round"""
    start_images: int = 4
    """pool images with people-like strokes before the first round"""
    rounds: int = 6
    strokes_per_round: int = 4
    steps_per_round: int = 60


def stroke_at(mask: np.ndarray, x: int, y: int, background: int | None, rng: np.random.Generator,
              radius: float = PEOPLE_RADIUS, margin: float = 1.0) -> tuple[int, np.ndarray] | None:
    """(class, (n, 2) x, y points) of a people-like stroke through mask pixel (x, y) — or the nearest pixel of its
    region where one fits — inside that region; None where the pixel is unlabelled or its region too thin."""
    label = int(mask[y, x])
    if label == 255:
        return None
    _, comp = cv2.connectedComponents((mask == label).astype(np.uint8), connectivity=8)
    region = comp == comp[y, x]
    clearance = cv2.distanceTransform(np.pad(region, 1).astype(np.uint8), cv2.DIST_L2,
                                      cv2.DIST_MASK_PRECISE)[1:-1, 1:-1] - 0.5
    need = radius + margin + 0.75
    rows, cols = np.nonzero(clearance >= need)
    if not len(rows):
        return None
    nearest = int(np.argmin((rows - y) ** 2 + (cols - x) ** 2))
    centre = np.array([cols[nearest] + 0.5, rows[nearest] + 0.5])
    area = int(region.sum())
    if label == background:
        length = BACKGROUND_SHARE * int((mask == label).sum()) / (BACKGROUND_STROKES * 2 * radius)
        angle = rng.uniform(0, math.pi)
        direction = np.array([math.cos(angle), math.sin(angle)])
    else:
        length = math.sqrt(area)
        pr, pc = np.nonzero(region)
        _, vectors = np.linalg.eigh(np.cov(np.stack([pc, pr]).astype(np.float64)) + 1e-9 * np.eye(2))
        direction = vectors[:, -1]
    length = max(length, 2.0)
    best, best_len = centre[None].astype(np.float32), 0.0
    for shift in np.linspace(-length / 2, length / 2, 9):  # slid along itself, it still passes the chosen spot
        start = centre + shift * direction
        r, c = int(start[1]), int(start[0])
        if not (0 <= r < mask.shape[0] and 0 <= c < mask.shape[1]) or clearance[r, c] < need:
            continue
        seg = _fitting_segment(clearance, start, direction, length, need, region, radius)
        if seg is not None and float(np.hypot(*(seg[1] - seg[0]))) > best_len + 1e-6:
            best, best_len = seg, float(np.hypot(*(seg[1] - seg[0])))
    return label, best


class Annotator:
    """The simulated person: the data set's masks, and the strokes drawn into the project's store."""

    def __init__(self, project: Project, ds: DatasetFolder, names: dict[int, str], seed: int) -> None:
        self.project, self.ds, self.names = project, ds, names
        """names: project image id -> data set image id"""
        classes = project.store.classes()
        self.class_ids = [c.id for c in classes]
        self.background = background_index([c.name for c in classes])
        self.rng = np.random.default_rng(seed)
        self._masks: dict[int, np.ndarray] = {}
        self.strokes = 0

    def mask(self, image_id: int) -> np.ndarray:
        if image_id not in self._masks:
            rec = self.project.store.image(image_id)
            self._masks[image_id] = self.ds.mask(self.names[image_id], (rec.width, rec.height))
        return self._masks[image_id]

    def draw(self, image_id: int, label: int, points: np.ndarray, radius: float = PEOPLE_RADIUS) -> None:
        self.project.store.add_stroke(Stroke(image_id, self.class_ids[label], radius, points.tolist()))
        self.strokes += 1

    def start(self, image_ids: list[int], seed: int) -> None:
        """People-like strokes on these images: one per object region, three on the background."""
        for k, image_id in enumerate(image_ids):
            for s in simulate_people_scribbles(self.mask(image_id), background=self.background, seed=seed + k):
                self.draw(image_id, s.label, s.points, s.radius)

    def stroke_near(self, image_id: int, x: float, y: float) -> bool:
        """One stroke through image pixel (x, y), or as near as one fits; False where none does."""
        mask = self.mask(image_id)
        h, w = mask.shape
        found = stroke_at(mask, min(w - 1, max(0, int(x))), min(h - 1, max(0, int(y))), self.background, self.rng)
        if found is None:
            labelled = np.argwhere(mask != 255)
            if not len(labelled):
                return False
            r, c = labelled[np.argmin(((labelled - [y, x]) ** 2).sum(1))]
            found = stroke_at(mask, int(c), int(r), self.background, self.rng)
        if found is None:
            return False
        self.draw(image_id, *found)
        return True

    def random_stroke(self, pool: list[int]) -> None:
        for _ in range(50):  # a random pixel may sit in a sliver no stroke fits in: try another
            image_id = pool[int(self.rng.integers(len(pool)))]
            mask = self.mask(image_id)
            ys, xs = np.nonzero(mask != 255)
            i = int(self.rng.integers(len(ys)))
            found = stroke_at(mask, int(xs[i]), int(ys[i]), self.background, self.rng)
            if found is not None:
                self.draw(image_id, *found)
                return

    def suggested_strokes(self, trainer: Trainer, pool: list[int], count: int) -> None:
        """Follow the suggestions: the ``count`` pool images that need marks most, a stroke in each one's top
        region."""
        store = self.project.store
        scored = []
        for image_id in pool:
            image, _ = trainer.source.image(image_id)
            probs = trainer.predict_probs(image).float().cpu().numpy()
            marked = store.seed_map(image_id, probs.shape[1:]) != 255
            scored.append((needs_marks(probs, marked), image_id, probs, marked))
        scored.sort(key=lambda s: (-s[0], s[1]))
        drawn = 0
        for _, image_id, probs, marked in scored:
            if drawn == count:
                break
            regions = regions_to_mark(probs, 1, marked)
            if not regions:
                continue
            r = regions[0]
            factor = store.image(image_id).width / probs.shape[2]
            # the region's most uncertain pixel: where the suggestion points
            u = np.where(marked, 0.0, 1.0 - probs.max(0))[r.y0:r.y1, r.x0:r.x1]
            py, px = np.unravel_index(int(u.argmax()), u.shape)
            drawn += self.stroke_near(image_id, (r.x0 + px + 0.5) * factor, (r.y0 + py + 0.5) * factor)


def test_miou(trainer: Trainer, ds: DatasetFolder, test_ids: list[str], num_classes: int,
              background: int | None) -> float:
    tally = Tally(num_classes, background)
    for name in test_ids:
        image = load_image(ds.images[name], max_side=trainer.config.working_size)
        pred = trainer.predict_probs(image.pixels).argmax(0).cpu().numpy().astype(np.uint8)
        truth = resize_labels(ds.mask(name, image.original_size), pred.shape)
        tally.add(pred, truth)
    return tally.miou


def _steps(run: Iterator, count: int) -> None:
    for _ in range(count):
        next(run)


def run_one(ds: DatasetFolder, policy: str, seed: int, setup: ActiveSetup, base: TrainConfig, work: Path,
            log: Callable[[str], None]) -> list[dict]:
    """One annotator on one data set: the test mIoU after each round, as records."""
    rng = np.random.default_rng(seed)
    train_ids = ds.ids("train")
    pool_names = [train_ids[int(i)] for i in np.sort(rng.choice(len(train_ids), setup.pool, replace=False))]
    test_ids = ds.ids("test")[:setup.test]
    root = work / f"{ds.root.name}-seed{seed}-{policy}"
    shutil.rmtree(root, ignore_errors=True)
    project = Project.create(root, ds.classes)
    names = {project.add_image(ds.images[n]).id: n for n in pool_names}
    pool = list(names)
    person = Annotator(project, ds, names, seed)
    person.start([pool[int(i)] for i in rng.choice(len(pool), setup.start_images, replace=False)], seed)
    project.close()
    config = dataclasses.replace(base, steps=(setup.rounds + 1) * setup.steps_per_round, seed=seed,
                                 eval_interval_s=0, preview_interval_s=0, max_minutes=None)
    trainer = Trainer(root, config)
    person.project = trainer.project  # the trainer's own connection: it sees each stroke at its next step
    run = trainer.run()
    records = []
    t0 = time.monotonic()
    try:
        for round_ in range(setup.rounds + 1):
            if round_:
                if policy == "suggested":
                    person.suggested_strokes(trainer, pool, setup.strokes_per_round)
                else:
                    for _ in range(setup.strokes_per_round):
                        person.random_stroke(pool)
            _steps(run, setup.steps_per_round)
            miou = test_miou(trainer, ds, test_ids, len(ds.classes), person.background)
            log(f"{ds.root.name} seed {seed} {policy}: {person.strokes} strokes, test mIoU {miou:.3f}")
            records.append({"bench": "active", "dataset": ds.root.name, "policy": policy, "seed": seed,
                            "round": round_, "strokes": person.strokes, "test_miou": round(miou, 4),
                            "steps": trainer.step, "minutes": round((time.monotonic() - t0) / 60, 2)})
    finally:
        run.close()
        trainer.close()
    return records


def strokes_to_reach(curve: list[tuple[int, float]], target: float) -> float | None:
    """Strokes at which a (strokes, mIoU) curve first reaches ``target``, interpolated between rounds; None where
    it never does."""
    if curve and curve[0][1] >= target:
        return float(curve[0][0])
    for (s0, m0), (s1, m1) in zip(curve, curve[1:]):
        if m1 >= target:  # here m0 < target <= m1
            return s0 + (s1 - s0) * (target - m0) / (m1 - m0)
    return None


def summarise(records: list[dict]) -> list[dict]:
    """Per data set: each policy's mean curve over the seeds, and the strokes the suggestions need to reach the
    random annotator's final mean mIoU."""
    out = []
    for name in sorted({r["dataset"] for r in records}):
        curves = {}
        for policy in POLICIES:
            rows = [r for r in records if r["dataset"] == name and r["policy"] == policy]
            if not rows:
                continue
            rounds = sorted({r["round"] for r in rows})
            curves[policy] = [(float(np.mean([r["strokes"] for r in rows if r["round"] == k])),
                               float(np.mean([r["test_miou"] for r in rows if r["round"] == k]))) for k in rounds]
            finals = [r["test_miou"] for r in rows if r["round"] == rounds[-1]]
            out.append({"bench": "active", "dataset": name, "policy": policy, "summary": "final",
                        "seeds": len(finals), "strokes": curves[policy][-1][0],
                        "test_miou_mean": round(float(np.mean(finals)), 4),
                        "test_miou_min": round(min(finals), 4), "test_miou_max": round(max(finals), 4)})
        if len(curves) == 2:
            target = curves["random"][-1][1]
            need = strokes_to_reach(curves["suggested"], target)
            out.append({"bench": "active", "dataset": name, "summary": "strokes to reach random's final mIoU",
                        "random_final_miou": round(target, 4), "random_strokes": curves["random"][-1][0],
                        "suggested_strokes": None if need is None else round(need, 1)})
    return out


def run_active(data_root: Path, datasets: list[str], seeds: list[int], setup: ActiveSetup, base: TrainConfig,
               work: Path, log: Callable[[str], None] = print) -> list[dict]:
    records = []
    for name in datasets:
        ds = DatasetFolder.open(data_root / name)
        for seed in seeds:
            for policy in POLICIES:
                records += run_one(ds, policy, seed, setup, base, work, log)
    return records + summarise(records)
