"""Score threshold and class-wise NMS applied to raw detections, as the GUI re-applies them live."""
import numpy as np
import pytest

from engine.detection.evaluate import box_iou
from engine.detection.postprocess import Detections, postprocess


def raw():
    # Class 1: A [0,0,10,10] 0.9, B [1,0,11,10] 0.8 (IoU with A: 90 / 110 = 0.82), C [0,0,10,5] 0.7 (IoU with
    # A: 50 / 100 = 0.5). Class 2: D = A's box, 0.6. E [50,50,60,60] class 1, 0.05.
    return Detections([[0, 0, 10, 10], [1, 0, 11, 10], [0, 0, 10, 5], [0, 0, 10, 10], [50, 50, 60, 60]],
                      [0.9, 0.8, 0.7, 0.6, 0.05], [1, 1, 1, 2, 1])


def test_threshold_and_classwise_nms_by_hand():
    out = postprocess(raw(), 0.1, 0.6)
    # B overlaps A by 0.82 > 0.6: dropped. C overlaps A by 0.5: kept. D is another class: kept. E scores < 0.1.
    np.testing.assert_allclose(out.scores, [0.9, 0.7, 0.6])
    assert out.labels.tolist() == [1, 1, 2]
    out = postprocess(raw(), 0.1, 0.4)  # now C goes too (0.5 > 0.4)
    np.testing.assert_allclose(out.scores, [0.9, 0.6])
    out = postprocess(raw(), 0.0, 1.0)  # no NMS at all: everything, best first
    np.testing.assert_allclose(out.scores, [0.9, 0.8, 0.7, 0.6, 0.05])
    assert len(postprocess(raw(), 0.1, 0.6, max_detections=2)) == 2
    assert len(postprocess(raw(), 0.95, 0.5)) == 0
    assert len(postprocess(Detections.empty(), 0.0, 0.5)) == 0
    with pytest.raises(ValueError):
        postprocess(raw(), 0.1, 1.5)


def nms_ref(d: Detections, threshold: float, iou: float) -> list[int]:
    """Greedy NMS written out: visit by descending score, keep a box unless a kept box of its class overlaps it
    by more than ``iou``."""
    kept = []
    for i in sorted(range(len(d)), key=lambda k: -d.scores[k]):
        if d.scores[i] < threshold:
            continue
        if all(d.labels[j] != d.labels[i] or box_iou(d.boxes[i][None], d.boxes[j][None])[0, 0] <= iou for j in kept):
            kept.append(i)
    return kept


def test_agrees_with_greedy_nms_written_out():
    rng = np.random.default_rng(3)
    xy = rng.uniform(0, 50, (200, 2))
    d = Detections(np.concatenate([xy, xy + rng.uniform(5, 20, (200, 2))], 1), rng.random(200), rng.integers(1, 4, 200))
    for threshold, iou in [(0.0, 0.5), (0.3, 0.3), (0.5, 0.7), (0.2, 0.0)]:
        out = postprocess(d, threshold, iou)
        ref = d.take(np.array(nms_ref(d, threshold, iou)))
        np.testing.assert_array_equal(out.scores, ref.scores)
        np.testing.assert_array_equal(out.boxes, ref.boxes)


def test_sliders_can_be_moved_back_and_forth():
    # The raw detections are never altered, so any setting can be re-applied after any other.
    d = raw()
    before = d.boxes.copy()
    first = postprocess(d, 0.1, 0.6)
    postprocess(d, 0.8, 0.3)
    again = postprocess(d, 0.1, 0.6)
    np.testing.assert_array_equal(first.boxes, again.boxes)
    np.testing.assert_array_equal(d.boxes, before)


def test_detections_are_validated_and_scale():
    with pytest.raises(ValueError, match="differ in length"):
        Detections([[0, 0, 1, 1]], [0.5, 0.6], [1])
    d = raw().scaled(2.0)
    np.testing.assert_allclose(d.boxes[0], [0, 0, 20, 20])
    assert d.boxes.dtype == np.float32 and d.labels.dtype == np.int64
    assert len(Detections.concatenate([raw(), raw()])) == 10 and len(Detections.concatenate([])) == 0
