"""The trainer's streamed data: the index of teaching images, the bounded cache, GrabCut maps kept on disk, and
batches that are the same whichever process builds them."""
import numpy as np
import pytest
import torch

from engine.annotations.types import Box, Stroke
from engine.training.data import CACHE_FOLDER, BatchKeys, SampleSource, TrainingIndex, TrainingItems, collate
from engine.training.loader import batches
from engine.training.targets import build_sample
from engine.training.trainer import Trainer
from tests.test_targets import project_with_marks
from tests.test_trainer import config, two_tone_project


def _open(root):
    from engine.project import Project
    return Project.open(root)


def test_the_index_follows_the_marks_and_leaves_out_rejected_images(tmp_path):
    project = _open(two_tone_project(tmp_path / "p", n_images=4))
    store = project.store
    index = TrainingIndex(project, "scribbles")
    assert index.refresh() == 1 and [i for i, _ in index.keys] == [store.images()[0].id]
    assert index.refresh() == 0
    second = store.images()[1].id
    left = store.classes()[0]
    store.add_stroke(Stroke(second, left.id, 2.0, [[5, 5], [9, 9]]))
    assert index.refresh() == 1 and [i for i, _ in index.keys] == [store.images()[0].id, second]
    index.reject(second, dict(index.keys)[second], "cannot read it")
    assert [i for i, _ in index.keys] == [store.images()[0].id] and index.errors == ["cannot read it"]
    store.add_stroke(Stroke(second, left.id, 2.0, [[5, 9]]))  # new marks: tried again
    assert index.refresh() == 1 and second in dict(index.keys)
    boxes = TrainingIndex(project, "boxes")
    boxes.refresh()
    assert boxes.keys == []  # strokes teach nothing to a box-supervised run
    full = TrainingIndex(project, "full")
    full.refresh()
    assert len(full.keys) == 4
    project.close()


def test_the_cache_stays_within_its_budget(tmp_path):
    root = two_tone_project(tmp_path / "p", n_images=6)
    project = _open(root)
    ids = [r.id for r in project.store.images()]
    project.close()
    one_image = 48 * 48 * 3
    source = SampleSource(root, "full", 48, cache_bytes=2 * one_image)
    for _ in range(2):
        for i in ids:
            pixels, _ = source.image(i)
            assert pixels.shape == (48, 48, 3)
            assert source._held <= source.cache_bytes and len(source._cache) <= 2
    assert [k[1] for k in source._cache] == ids[-2:]  # the most recently used
    source.close()


def test_grabcut_maps_are_kept_per_box_and_recomputed_when_a_box_changes(tmp_path, monkeypatch):
    import engine.training.targets as targets

    project, image_id, img = project_with_marks(tmp_path)
    calls = []
    original = targets.grabcut_box_seeds

    def counted(*args, **kw):
        calls.append(1)
        return original(*args, **kw)

    monkeypatch.setattr(targets, "grabcut_box_seeds", counted)
    folder = tmp_path / "cache"
    first = build_sample(project.store, image_id, img, False, "boxes", grabcut_cache=folder)
    again = build_sample(project.store, image_id, img, False, "boxes", grabcut_cache=folder)
    assert len(calls) == 1 and np.array_equal(first.seeds, again.seeds)
    assert np.array_equal(first.seeds, build_sample(project.store, image_id, img, False, "boxes").seeds)
    square = project.store.classes()[1]
    project.store.add_box(Box(image_id, square.id, 2, 2, 12, 12))
    build_sample(project.store, image_id, img, False, "boxes", grabcut_cache=folder)
    assert len(calls) == 3  # the uncached call, then the new box list
    assert len(list(folder.glob(f"seeds-{image_id}-*.png"))) == 1  # the older map is gone
    project.close()


@pytest.mark.timeout(300)
def test_worker_processes_make_the_same_batches_as_the_trainer_itself(tmp_path):
    root = two_tone_project(tmp_path / "p", n_images=4)
    project = _open(root)
    index = TrainingIndex(project, "full")
    index.refresh()
    source = SampleSource(root, "full", 48, cache_bytes=1 << 20)
    expected = [collate([TrainingItems(source, 32)[k] for k in keys])
                for keys, _ in zip(BatchKeys(index, 3, seed=5), range(3))]
    loading = iter(batches(index, source, 32, 3, seed=5, stream=0, workers=2))
    for want in expected:
        got = next(loading)
        assert got.rejected == [] and got.batch.inputs.shape == (3, 3, 32, 32)
        for name in ("inputs", "images", "seeds", "drawn", "present", "tagged", "boxed"):
            assert torch.equal(getattr(got.batch, name), getattr(want.batch, name)), name
    del loading
    source.close()
    project.close()


@pytest.mark.timeout(300)
def test_training_reads_through_worker_processes_and_skips_unreadable_images(tmp_path):
    root = two_tone_project(tmp_path / "p", n_images=3)
    project = _open(root)
    store = project.store
    left, right = store.classes()
    broken = store.images()[1]
    store.add_stroke(Stroke(broken.id, left.id, 2.0, [[6, 10], [8, 38]]))
    project.close()
    (root / broken.path).write_bytes(b"not an image")
    trainer = Trainer(root, config(steps=6, workers=1, supervision="scribbles"))
    records = list(trainer.run())
    trainer.close()
    assert [r.step for r in records] == list(range(1, 7))
    assert records[-1].labelled_images == 1
    assert len(trainer.index.errors) == 1 and broken.path in trainer.index.errors[0]
    assert sum("skipped an image" in n for r in records for n in r.notes) == 1
    assert not (root / CACHE_FOLDER).exists()  # strokes need no GrabCut
