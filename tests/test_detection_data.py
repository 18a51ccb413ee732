"""The detection training set: which images teach, at what scale, the held-out split, and augmented batches."""
import hashlib

import numpy as np
import pytest
import torch
from PIL import Image

from engine.annotations.types import Box, ImageRecord
from engine.detection.data import DONE_KEY, DetectionSampler, DetectionSet, done_image_ids, held_out_ids, \
    is_held_out, set_images_done
from engine.project import Project


@pytest.fixture
def project(tmp_path):
    """Four 128 x 96 images. 0: a cat box; 1: a dog box and a (meaningless) background box; 2: no boxes, marked
    done; 3: no boxes, not done."""
    root = tmp_path / "p"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).save(root / f"im{i}.png")
    p = Project.create(root, ["background", "cat", "dog"])
    p.add_folder(root)
    bg, cat, dog = p.store.classes()
    ids = [r.id for r in p.store.images()]
    p.store.add_box(Box(ids[0], cat.id, 10, 20, 50, 60))
    p.store.add_box(Box(ids[1], dog.id, 0, 0, 128, 96))
    p.store.add_box(Box(ids[1], bg.id, 5, 5, 20, 20))
    set_images_done(p.store, [ids[2]])
    yield p, ids
    p.close()


def test_boxed_and_done_images_teach_at_working_scale(project):
    p, ids = project
    data = DetectionSet(p, working_size=64, holdout_fraction=0.0)
    assert data.refresh() == 3
    assert set(data.samples) == {ids[0], ids[1], ids[2]} and not data.heldout
    s = data.samples[ids[0]]
    assert s.image.shape == (48, 64, 3) and s.scale == 0.5
    np.testing.assert_allclose(s.boxes, [[5, 10, 25, 30]])  # halved with the image
    assert s.labels.tolist() == [1]
    assert data.samples[ids[1]].labels.tolist() == [2]  # the background box is left out...
    assert data.background_boxes == 1  # ...and counted, so the GUI can say so
    assert data.negative_count == 1 and data.box_count == 2
    assert data.refresh() == 0  # nothing changed, nothing re-read
    # A new box, and un-marking an image, are picked up by the next refresh.
    p.store.add_box(Box(ids[3], p.store.classes()[1].id, 1, 1, 30, 30))
    set_images_done(p.store, [ids[2]], done=False)
    assert data.refresh() == 1
    assert set(data.samples) == {ids[0], ids[1], ids[3]}
    assert data.negative_count == 0 and data.box_count == 3


def test_done_setting_survives_reopening_and_tolerates_garbage(project):
    p, ids = project
    assert done_image_ids(p.store) == {ids[2]}
    set_images_done(p.store, [ids[0], ids[2]])
    with Project.open(p.root) as again:
        assert done_image_ids(again.store) == {ids[0], ids[2]}
    p.store.set_setting(DONE_KEY, "not json")
    assert done_image_ids(p.store) == set()


def test_test_split_is_held_out_when_present(project):
    p, ids = project
    p.store.set_split(ids[0], "test")
    data = DetectionSet(p, working_size=64, holdout_fraction=0.5)
    data.refresh()
    assert set(data.heldout) == {ids[0]} and set(data.samples) == {ids[1], ids[2]}
    p.store.set_split(ids[0], None)  # without any test split, the fraction decides (here: 0.5 of the images)
    data.refresh()
    records = [r for r in p.store.images() if r.id in {ids[0], ids[1], ids[2]}]
    assert set(data.heldout) == held_out_ids(records, 0.5, 0) and len(data.heldout) == 2  # round(1.5) of 3


def test_random_split_is_deterministic_stable_and_near_the_fraction():
    records = [ImageRecord(f"{i}.png", 10, 10, hashlib.sha256(str(i).encode()).hexdigest(), None, i) for i in range(2000)]
    held = held_out_ids(records, 0.2, seed=0)
    assert 0.17 < len(held) / len(records) < 0.23
    assert held == held_out_ids(list(reversed(records)), 0.2, seed=0)  # order does not matter
    assert held_out_ids(records[:1000], 0.2, seed=0) == held & set(range(1000))  # adding images moves nobody
    assert held != held_out_ids(records, 0.2, seed=1)
    assert held_out_ids(records, 0.0, seed=0) == set()
    # Two copies of one picture fall on the same side.
    twin = ImageRecord("copy.png", 10, 10, records[0].sha256, None, 9999)
    assert is_held_out(twin, 0.2, 0) == is_held_out(records[0], 0.2, 0)


def test_a_small_set_is_split_as_asked():
    """Eight boxed images at 20 %: two held out (a random split could take four), and never all of them."""
    records = [ImageRecord(f"{i}.png", 10, 10, hashlib.sha256(str(i).encode()).hexdigest(), None, i) for i in range(8)]
    for seed in range(20):
        assert len(held_out_ids(records, 0.2, seed)) == 2
    assert held_out_ids(records, 0.2, 0) == held_out_ids(list(reversed(records)), 0.2, 0)
    assert len(held_out_ids(records[:1], 0.9, 0)) == 0 and len(held_out_ids(records[:3], 0.9, 0)) == 2


def test_sampler_flips_boxes_with_the_image_and_is_seeded(project):
    p, ids = project
    data = DetectionSet(p, working_size=64, holdout_fraction=0.0)
    data.refresh()
    samples = [data.samples[ids[0]]]
    torch.manual_seed(0)
    images, targets = DetectionSampler(seed=1, scale_range=(1.0, 1.0)).batch(samples, 8)
    seen = set()
    for img, t in zip(images, targets):
        assert img.shape == (3, 48, 64) and 0 <= float(img.min()) and float(img.max()) <= 1
        assert t["labels"].tolist() == [1] and t["boxes"].dtype == torch.float32
        box = tuple(t["boxes"][0].tolist())
        assert box in {(5.0, 10.0, 25.0, 30.0), (64 - 25.0, 10.0, 64 - 5.0, 30.0)}
        seen.add(box)
    assert len(seen) == 2  # both orientations occur in eight draws
    # Scale jitter keeps boxes on the canvas and drops those that leave it.
    torch.manual_seed(0)
    images, targets = DetectionSampler(seed=1, scale_range=(0.5, 2.0)).batch(list(data.samples.values()), 16)
    for img, t in zip(images, targets):
        b = t["boxes"]
        assert len(b) == len(t["labels"])
        assert bool((b[:, 0] >= 0).all() and (b[:, 2] <= img.shape[2]).all() and (b[:, 2] > b[:, 0]).all())
    torch.manual_seed(0)
    again = DetectionSampler(seed=1, scale_range=(0.5, 2.0)).batch(list(data.samples.values()), 16)
    assert all(torch.equal(a["boxes"], b["boxes"]) for a, b in zip(targets, again[1]))
