"""What each image teaches under each supervision, checked on a hand-made project."""
import numpy as np
import torch
from PIL import Image

from engine.annotations.types import Box, Stroke, background_index
from engine.project import Project
from engine.training.targets import build_sample


def square_project(tmp_path, classes):
    """A project of one 60x40 image with a bright 20x20 square."""
    folder = tmp_path / "p"
    folder.mkdir()
    img = np.zeros((40, 60, 3), np.uint8)
    img[10:30, 20:40] = 200
    Image.fromarray(img).save(folder / "a.png")
    project = Project.create(folder, classes)
    project.add_folder(folder)
    return project, project.store.images()[0].id, img


def project_with_marks(tmp_path):
    project, image_id, img = square_project(tmp_path, ["background", "square", "other"])
    store = project.store
    bg, sq, other = store.classes()
    store.add_box(Box(image_id, sq.id, 18, 8, 42, 32))
    store.add_stroke(Stroke(image_id, sq.id, 0.5, [[30.5, 20.5]]))
    store.set_tags(image_id, [bg.id, sq.id])
    gt = np.zeros((40, 60), np.uint8)
    gt[10:30, 20:40] = 1
    store.set_ground_truth(image_id, gt)
    return project, image_id, img


def test_each_supervision_teaches_its_own_marks(tmp_path):
    project, image_id, img = project_with_marks(tmp_path)
    store = project.store
    full = build_sample(store, image_id, img, False, "full")
    assert (full.seeds == store.ground_truth(image_id)).all() and len(full.boxes) == 0 and full.present is None
    scrib = build_sample(store, image_id, img, False, "scribbles")
    assert (scrib.seeds != 255).sum() == 1 and scrib.seeds[20, 30] == 1 and len(scrib.boxes) == 0
    boxes = build_sample(store, image_id, img, False, "boxes")
    assert boxes.boxes.tolist() == [[1, 18, 8, 42, 32]]
    outside = np.ones((40, 60), bool)
    outside[8:32, 18:42] = False
    assert (boxes.seeds[outside] == 0).all()
    # inside the 24 px box: GrabCut's foreground (the square) seeds the class in the box's central half (rows
    # 14..25, cols 24..35), its background (the box's 2 px rim around the square) seeds background, and the rest
    # of the square stays unlabeled for the CRF and box losses
    centre = np.zeros((40, 60), bool)
    centre[14:26, 24:36] = True
    square = np.zeros((40, 60), bool)
    square[10:30, 20:40] = True
    assert (boxes.seeds[centre] == 1).all() and (boxes.seeds[square & ~centre] == 255).all()
    assert (boxes.seeds[~outside & ~square] == 0).all()
    tags = build_sample(store, image_id, img, False, "tags")
    assert tags.present.tolist() == [True, True, False] and (tags.seeds == 255).all()
    marks = build_sample(store, image_id, img, False, "marks")
    assert marks.kinds == {"seeds", "boxes", "tags"} and marks.seeds[20, 30] == 1 and marks.seeds[0, 0] == 0
    # which seeds the user drew: the stroke's one pixel, not what the box or the mask gave
    assert np.argwhere(marks.drawn).tolist() == [[20, 30]] and (scrib.drawn == (scrib.seeds != 255)).all()
    assert full.drawn is None and boxes.drawn is None
    grab = build_sample(store, image_id, img, False, "boxes-grabcut")
    assert len(grab.boxes) == 0 and grab.seeds[20, 30] == 1 and grab.seeds[0, 0] == 0
    assert (grab.seeds == 1).sum() > 200  # GrabCut found most of the bright square
    project.close()


def test_working_resolution_scales_boxes(tmp_path):
    project, image_id, img = project_with_marks(tmp_path)
    small = img[::2, ::2]
    s = build_sample(project.store, image_id, small, False, "boxes")
    assert s.boxes.tolist() == [[1, 9, 4, 21, 16]]
    project.close()


def test_a_project_without_a_background_class_seeds_nothing_outside_its_boxes(tmp_path):
    """Classes like MSRC's (no "background"): the box's centre seeds its class, nothing else is claimed."""
    project, image_id, img = square_project(tmp_path, ["building", "square"])
    store = project.store
    store.add_box(Box(image_id, store.classes()[1].id, 18, 8, 42, 32))
    boxes = build_sample(store, image_id, img, False, "boxes")
    assert set(np.unique(boxes.seeds)) == {1, 255} and (boxes.seeds[14:26, 24:36] == 1).all()
    grab = build_sample(store, image_id, img, False, "boxes-grabcut")
    assert grab.seeds[0, 0] == 255 and grab.seeds[20, 30] == 1 and not (grab.seeds == 0).any()
    project.close()


def test_the_background_is_the_class_named_so():
    assert background_index(["background", "horse"]) == 0
    assert background_index(["cat", " Background "]) == 1
    assert background_index(["building", "grass", "sky"]) is None


class _OneSample:
    """A SampleSource that always gives the same sample."""

    def __init__(self, sample):
        self.fixed = sample

    def sample(self, image_id, revision):
        return self.fixed


def _batch(sample, n):
    from engine.training.data import TrainingItems, collate

    items = TrainingItems(_OneSample(sample), 32)
    return collate([items[(sample.image_id, 0, seed)] for seed in range(n)]).batch


def test_batches_crop_the_drawn_flags_with_the_seeds(tmp_path):
    project, image_id, img = project_with_marks(tmp_path)
    sample = build_sample(project.store, image_id, img, False, "marks")
    batch = _batch(sample, 6)
    assert batch.drawn.dtype == torch.bool and batch.drawn.shape == batch.seeds.shape == (6, 32, 32)
    assert (batch.seeds[batch.drawn] == 1).all()  # drawn flags land on the stroke's class, never on box seeds
    assert batch.drawn.any() and (batch.seeds[~batch.drawn] != 255).any()
    strokes_only = build_sample(project.store, image_id, img, False, "scribbles")
    assert batch.boxed.all() and not _batch(strokes_only, 2).boxed.any()
    project.close()
