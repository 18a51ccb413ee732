"""Detection metrics against hand-worked cases and an independent brute-force reference."""
import numpy as np
import pytest

from engine.detection.evaluate import GroundTruth, ap_coco, ap_voc, box_iou, evaluate_detections, match, \
    precision_recall
from engine.detection.postprocess import Detections


def test_box_iou_by_hand():
    # [0,0,10,10] vs [5,0,15,10]: intersection 5 x 10 = 50, union 100 + 100 - 50 = 150.
    # [0,0,10,10] vs [20,20,30,30]: disjoint. Degenerate boxes have no area and IoU 0.
    iou = box_iou([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10], [3, 3, 3, 8]])
    np.testing.assert_allclose(iou, [[50 / 150, 0.0, 1.0, 0.0]])
    assert box_iou(np.zeros((0, 4)), [[0, 0, 1, 1]]).shape == (0, 1)


def test_matching_is_greedy_by_score_and_each_truth_matches_once():
    gt = [[0, 0, 10, 10], [20, 0, 30, 10]]
    # In score order: d0 overlaps gt0 by 1.0 -> TP; d1 overlaps gt0 by 0.81 but gt0 is taken and gt1 by 0 -> FP;
    # d2 overlaps gt1 by 50/150 -> FP at 0.5; d3 overlaps gt1 by 1.0 -> TP.
    dets = [[0, 0, 10, 10], [0, 0, 9, 9], [25, 0, 35, 10], [20, 0, 30, 10]]
    assert match(dets, gt, 0.5).tolist() == [True, False, False, True]
    # At threshold 1/3 d2 takes gt1 first, and d3 comes too late.
    assert match(dets, gt, 0.3).tolist() == [True, False, True, False]
    # A detection takes the free truth it overlaps most: [4,0,14,10] overlaps gt0 = [0,0,10,10] by 60 / 140 = 0.43
    # and gt1 = [5,0,15,10] by 90 / 110 = 0.82, so it takes gt1 and leaves gt0 to [0,0,10,10] (whose IoU with
    # gt1 is only 50 / 150). Taking the first truth above 0.4 instead would leave the second detection unmatched.
    assert match([[4, 0, 14, 10], [0, 0, 10, 10]], [[0, 0, 10, 10], [5, 0, 15, 10]], 0.4).tolist() == [True, True]
    assert match(np.zeros((0, 4)), gt, 0.5).tolist() == []
    assert match(dets, np.zeros((0, 4)), 0.5).tolist() == [False] * 4


def test_ap_by_hand():
    # Two truths; detections by score: TP, FP, TP.
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
    precision, recall = precision_recall(np.array([0.9, 0.8, 0.7]), np.array([True, False, True]), 2)
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3])
    np.testing.assert_allclose(recall, [1 / 2, 1 / 2, 1])
    # VOC all-point: envelope 1 up to recall 1/2, then 2/3 up to 1: 1/2 * 1 + 1/2 * 2/3 = 5/6.
    assert ap_voc(precision, recall) == pytest.approx(5 / 6)
    # COCO: recall points 0, 0.01, ..., 0.50 (51 of them) read precision 1; 0.51 ... 1.00 (50) read 2/3.
    assert ap_coco(precision, recall) == pytest.approx((51 + 50 * 2 / 3) / 101)
    # Recall never reaching 1: TP, FP with 2 truths -> precision 1, 1/2 at recall 1/2, 1/2.
    precision, recall = precision_recall(np.array([0.9, 0.8]), np.array([True, False]), 2)
    assert ap_voc(precision, recall) == pytest.approx(0.5)
    assert ap_coco(precision, recall) == pytest.approx(51 / 101)
    assert ap_voc(np.zeros(0), np.zeros(0)) == 0.0 and ap_coco(np.zeros(0), np.zeros(0)) == 0.0


def test_ranking_uses_scores_not_input_order():
    # The same detections as in test_ap_by_hand, listed in another order.
    precision, recall = precision_recall(np.array([0.7, 0.9, 0.8]), np.array([True, True, False]), 2)
    np.testing.assert_allclose(precision, [1, 1 / 2, 2 / 3])


def det(boxes, scores, labels):
    return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), scores, labels)


def test_map_over_iou_thresholds_by_hand():
    # One truth [0,0,10,10] and one detection [0,0,10,8.2]: IoU 0.82, a TP at 0.50, 0.55, ..., 0.80 (7 of the
    # 10 thresholds), a FP at 0.85, 0.90, 0.95: AP 1 at seven thresholds and 0 at three -> mAP@[.5:.95] 0.7.
    s = evaluate_detections([det([[0, 0, 10, 8.2]], [0.9], [1])], [GroundTruth([[0, 0, 10, 10]], [1])], 2)
    assert s.ap50[1] == pytest.approx(1.0) and s.ap50_voc[1] == pytest.approx(1.0)
    assert s.ap[1] == pytest.approx(0.7) and s.map == pytest.approx(0.7)
    assert s.ap50[0] is None  # the background is never scored


def test_class_zero_is_an_object_where_no_class_is_background():
    # MSRC-like classes: 'building' is class 0 and is scored like any other; a found building and a missed sky.
    preds = [det([[0, 0, 10, 10]], [0.9], [0])]
    truth = [GroundTruth([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 1])]
    s = evaluate_detections(preds, truth, 2)
    assert s.ap50 == [pytest.approx(1.0), 0.0] and s.map50 == pytest.approx(0.5)
    assert s.as_dict(["building", "sky"])["gt_boxes"] == {"building": 1, "sky": 1}


def test_classes_without_truth_are_left_out_and_missed_classes_score_zero():
    preds = [det([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], [1, 3])]
    truth = [GroundTruth([[0, 0, 10, 10], [30, 30, 40, 40]], [1, 2])]
    s = evaluate_detections(preds, truth, 4)
    assert s.ap50 == [None, pytest.approx(1.0), 0.0, None]  # class 3 has detections but no truth: no AP
    assert s.map50 == pytest.approx(0.5) and s.gt_boxes == [0, 1, 1, 0]
    assert set(s.curves) == {1, 2}
    d = s.as_dict(["background", "a", "b", "c"])
    assert d["ap50"] == {"a": pytest.approx(1.0), "b": 0.0, "c": None} and "background" not in d["ap50"]
    empty = evaluate_detections([Detections.empty()], [GroundTruth(np.zeros((0, 4)), [])], 2)
    assert np.isnan(empty.map50) and empty.ap50 == [None, None]


def test_only_the_top_max_detections_per_image_count():
    # The only TP has the lowest of three scores; with max_detections=2 it is cut off.
    preds = [det([[50, 50, 60, 60], [70, 70, 80, 80], [0, 0, 10, 10]], [0.9, 0.8, 0.1], [1, 1, 1])]
    truth = [GroundTruth([[0, 0, 10, 10]], [1])]
    assert evaluate_detections(preds, truth, 2, max_detections=2).ap50[1] == 0.0
    # Uncut: TP third -> precision 1/3 at recall 1 everywhere; VOC 1/3, COCO 101 * (1/3) / 101.
    full = evaluate_detections(preds, truth, 2, max_detections=None)
    assert full.ap50_voc[1] == pytest.approx(1 / 3) and full.ap50[1] == pytest.approx(1 / 3)


# ---- an independent brute-force reference -----------------------------------------------------------------------
def iou_ref(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def ap_ref(preds, truths, c, t):
    """Per image: detections of class c by score, each takes the best free truth with IoU >= t. Then over all
    images by score: VOC AP = sum over true positives of (1 / n_gt) * (best precision at this rank or later);
    COCO AP = mean over r = 0, 0.01, ..., 1 of the best precision at any rank whose recall is >= r."""
    ranked = []
    n_gt = 0
    for p, g in zip(preds, truths):
        gts = [list(map(float, b)) for b, k in zip(g.boxes, g.labels) if k == c]
        n_gt += len(gts)
        free = [True] * len(gts)
        mine = sorted([(float(s), list(map(float, b))) for b, s, k in zip(p.boxes, p.scores, p.labels) if k == c],
                      key=lambda item: -item[0])
        for score, box in mine:
            best, best_iou = None, -1.0
            for j, g_box in enumerate(gts):
                v = iou_ref(box, g_box)
                if free[j] and v > best_iou:
                    best, best_iou = j, v
            hit = best is not None and best_iou >= t
            if hit:
                free[best] = False
            ranked.append((score, hit))
    if n_gt == 0:
        return None, None
    ranked.sort(key=lambda item: -item[0])
    precisions, recalls, hits = [], [], 0
    for rank, (_, hit) in enumerate(ranked, 1):
        hits += hit
        precisions.append(hits / rank)
        recalls.append(hits / n_gt)
    voc = sum(max(precisions[k:]) / n_gt for k in range(len(ranked)) if ranked[k][1])
    coco = []
    for i in range(101):
        r = i / 100
        reach = [p for p, rec in zip(precisions, recalls) if rec >= r - 1e-12]
        coco.append(max(reach) if reach else 0.0)
    return sum(coco) / 101, voc


def test_agrees_with_brute_force_on_random_scenes():
    rng = np.random.default_rng(7)
    preds, truths = [], []
    for _ in range(12):
        n_gt = int(rng.integers(0, 5))
        xy = rng.uniform(0, 80, (n_gt, 2))
        gt = np.concatenate([xy, xy + rng.uniform(8, 30, (n_gt, 2))], 1)
        gt_labels = rng.integers(1, 4, n_gt)
        # Detections: jittered truths (some good, some poor) plus random clutter, with distinct scores.
        jitter = gt + rng.normal(0, 3, gt.shape)
        n_fp = int(rng.integers(0, 5))
        fxy = rng.uniform(0, 80, (n_fp, 2))
        clutter = np.concatenate([fxy, fxy + rng.uniform(8, 30, (n_fp, 2))], 1)
        boxes = np.concatenate([jitter, clutter])
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        labels = np.concatenate([np.where(rng.random(n_gt) < 0.85, gt_labels, rng.integers(1, 4, n_gt)),
                                 rng.integers(1, 4, n_fp)])
        preds.append(det(boxes, rng.random(len(boxes)), labels))
        truths.append(GroundTruth(gt, gt_labels))
    s = evaluate_detections(preds, truths, 4, max_detections=None)
    for c in range(1, 4):
        coco50, voc50 = ap_ref(preds, truths, c, 0.5)
        assert s.ap50[c] == pytest.approx(coco50) and s.ap50_voc[c] == pytest.approx(voc50)
        coco_all = [ap_ref(preds, truths, c, t)[0] for t in np.linspace(0.5, 0.95, 10)]
        assert s.ap[c] == pytest.approx(np.mean(coco_all))
    assert s.map50 == pytest.approx(np.mean([ap_ref(preds, truths, c, 0.5)[0] for c in range(1, 4)]))
    assert 0.2 < s.map50 < 1.0  # the scene is neither trivial nor hopeless
