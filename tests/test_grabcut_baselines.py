"""GrabCut from boxes: the naive full proposals and the eroded cores used as object seeds."""
import numpy as np

from engine.annotations.types import UNLABELED
from engine.baselines.grabcut import grabcut_box_cores, grabcut_from_boxes


def scene() -> tuple[np.ndarray, np.ndarray]:
    """A bright 40x40 square object on a textured dark background, boxed with a 10 px margin."""
    rng = np.random.default_rng(0)
    img = rng.integers(0, 60, (100, 120, 3)).astype(np.uint8)
    img[30:70, 40:80] = rng.integers(190, 250, (40, 40, 3))
    truth = np.zeros((100, 120), np.uint8)
    truth[30:70, 40:80] = 1
    return img, truth


def test_proposals_fill_the_object_and_nothing_outside_the_box():
    img, truth = scene()
    labels = grabcut_from_boxes(img, np.array([[1, 30, 20, 90, 80]], np.float32), 2)
    assert (labels == truth).mean() > 0.98
    assert (labels[:20] == 0).all() and (labels[:, :30] == 0).all()


def test_cores_are_the_object_shrunk_by_the_erosion_and_unlabeled_elsewhere():
    img, truth = scene()
    seeds = grabcut_box_cores(img, np.array([[1, 30, 20, 90, 80]], np.float32), erode_fraction=0.1)
    core = seeds == 1
    # the box's shorter side is 60 px, so the core is the 40 px square eroded by a 6 px disc: rows/cols 36..63
    assert set(np.unique(seeds)) == {1, UNLABELED}
    assert core[36:64, 36 + 10:64 + 10].all() and core.sum() <= 28 * 28 + 4 * 28
    assert not core[:34].any() and not core[66:].any() and not core[:, :44].any() and not core[:, 76:].any()
    assert (seeds[~truth.astype(bool)] == UNLABELED).all()  # no object seed off the object


def test_cores_of_two_classes_never_claim_the_same_pixel():
    img = np.zeros((60, 60, 3), np.uint8)
    img[10:50, 10:50] = 220
    boxes = np.array([[1, 5, 5, 55, 55], [2, 5, 5, 55, 55]], np.float32)  # two classes, one object
    seeds = grabcut_box_cores(img, boxes, erode_fraction=0.05)
    assert (seeds == UNLABELED).all()
    one = grabcut_box_cores(img, boxes[:1], erode_fraction=0.05)
    assert (one == 1).sum() > 30 * 30
