"""COCO RLE as pycocotools writes and reads it (pycocotools is the oracle)."""
import numpy as np
import pytest
from pycocotools import mask as coco_mask

from engine.formats import rle


def random_masks():
    rng = np.random.default_rng(0)
    yield np.zeros((5, 7), bool)
    yield np.ones((5, 7), bool)
    for _ in range(30):
        h, w = rng.integers(1, 60, 2)
        yield rng.random((h, w)) < rng.random()
    big = np.zeros((300, 500), bool)
    big[40:260, 100:120] = True  # long runs: counts needing several five-bit groups, and negative differences
    big[10:11, :] = True
    yield big


@pytest.mark.parametrize("mask", list(random_masks()))
def test_encode_matches_pycocotools_and_decodes_back(mask):
    ours = rle.encode(mask)
    theirs = coco_mask.encode(np.asfortranarray(mask.astype(np.uint8)))
    assert ours["counts"] == theirs["counts"].decode("ascii") and ours["size"] == list(theirs["size"])
    np.testing.assert_array_equal(rle.decode(ours), mask)
    np.testing.assert_array_equal(coco_mask.decode({"size": ours["size"], "counts": ours["counts"].encode()}), mask)
    uncompressed = {"size": list(mask.shape), "counts": rle.counts(mask)}
    np.testing.assert_array_equal(rle.decode(uncompressed), mask)


def test_a_worked_example_and_bad_counts():
    mask = np.array([[0, 1], [1, 1], [0, 0]], bool)  # columns: 0 1 0 | 1 1 0
    assert rle.counts(mask) == [1, 1, 1, 2, 1]
    with pytest.raises(ValueError, match="add up to 5, not the 3×2 = 6"):
        rle.decode({"size": [3, 2], "counts": [1, 1, 1, 2]})


@pytest.mark.parametrize("poly", [
    [[2.0, 3.0, 12.0, 3.0, 12.0, 9.0, 2.0, 9.0]],  # a rectangle on pixel edges: exactly its 10 × 6 pixels
    [[1.3, 2.2, 17.8, 4.1, 9.4, 14.6]],  # a triangle
    [[3, 3, 15, 3, 15, 13, 3, 13], [16, 1, 19, 1, 19, 5]],  # two parts
])
def test_polygons_rasterize_as_pycocotools_does(poly):
    theirs = coco_mask.decode(coco_mask.merge(coco_mask.frPyObjects(poly, 16, 20))).astype(bool)
    ours = rle.polygons_mask(poly, 16, 20)
    if poly[0][:2] == [2.0, 3.0]:
        np.testing.assert_array_equal(ours, theirs)
    assert (ours != theirs).sum() <= 0.05 * theirs.sum() + 2  # pycocotools walks edges on a 5× grid
