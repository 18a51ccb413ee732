"""Pascal VOC and YOLO out and in: round trips through our readers, and the files as the formats' own tools
read them (VOC's XML by ElementTree, YOLO polygons filled as ultralytics' polygon2mask fills them)."""
import xml.etree.ElementTree as ET

import cv2
import numpy as np

from engine.datasets.importer import import_dataset
from engine.formats import export
from engine.formats.voc import VocSource
from engine.formats.yolo import YoloSource
from engine.io.palette import load_index_png
from tests.test_formats_coco import project  # noqa: F401  (the fixture: a project with masks, boxes, tags)


def test_voc_round_trip_and_layout(project, tmp_path):
    store = project.store
    export("voc", project, tmp_path / "voc")
    first = store.images()[0]
    mask = load_index_png(tmp_path / "voc" / "SegmentationClass" / "im0.png")
    np.testing.assert_array_equal(mask, store.ground_truth(first.id))  # 255 void kept
    obj = ET.parse(tmp_path / "voc" / "Annotations" / "im0.xml").getroot().find("object")
    assert obj.findtext("name") == "cat"
    assert [obj.find("bndbox").findtext(t) for t in ("xmin", "ymin", "xmax", "ymax")] == ["6", "6", "30.5", "20"]
    assert (tmp_path / "voc" / "ImageSets" / "Segmentation" / "val.txt").read_text() == "im3\n"
    source = VocSource.open(tmp_path / "voc")
    assert source.classes == ["background", "cat", "dog"] and source.ids("test") == ["im3"]
    again, report = import_dataset(source, tmp_path / "again")
    assert not report.errors
    for a, b in zip(store.images(), again.store.images()):
        np.testing.assert_array_equal(again.store.ground_truth(b.id), store.ground_truth(a.id))
        assert [(x.x0, x.y0, x.x1, x.y1) for x in again.store.boxes(b.id)] == \
            [(x.x0, x.y0, x.x1, x.y1) for x in store.boxes(a.id)]
        assert b.split == a.split
    again.close()


def polygon2mask(line, w, h):
    """ultralytics.data.utils.polygon2mask on one label line."""
    pts = (np.array(line.split()[1:], np.float64).reshape(-1, 2) * (w, h)).astype(np.int32)
    mask = np.zeros((h, w), np.uint8)
    cv2.fillPoly(mask, [pts], 1)
    return mask.astype(bool)


def test_yolo_polygons_fill_back_to_each_object_as_ultralytics_fills_them(project, tmp_path):
    store = project.store
    rng = np.random.default_rng(5)
    rec = store.images()[0]
    noisy = rng.integers(0, 3, (rec.height, rec.width)).astype(np.uint8)
    store.set_ground_truth(rec.id, noisy)
    export("yolo", project, tmp_path / "yolo")
    assert "names:\n  0: \"cat\"\n  1: \"dog\"\n" in (tmp_path / "yolo" / "data.yaml").read_text()
    lines = (tmp_path / "yolo" / "labels" / "im0.txt").read_text().splitlines()
    count, _ = cv2.connectedComponents((noisy == 1).astype(np.uint8), connectivity=4)
    assert sum(line.startswith("0 ") for line in lines) >= count - 1
    union = np.zeros_like(noisy, bool)
    for line in lines:
        if line.startswith("0 "):
            union |= polygon2mask(line, rec.width, rec.height)
    # every cat pixel is in a cat polygon; what a polygon adds are the holes it encloses
    assert union[noisy == 1].all()
    source = YoloSource.open(tmp_path / "yolo")
    assert source.classes == ["background", "cat", "dog"]
    again, report = import_dataset(source, tmp_path / "again")
    assert not report.errors
    second = store.images()[1]
    truth = store.ground_truth(second.id)  # solid regions: exact, void to background
    np.testing.assert_array_equal(again.store.ground_truth(again.store.images()[1].id), np.where(truth == 255, 0, truth))
    again.close()


def test_yolo_boxes_without_masks(tmp_path):
    from PIL import Image

    from engine.annotations.types import Box
    from engine.project import Project

    root = tmp_path / "photos"
    root.mkdir()
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(root / "a.png")
    project = Project.create(root, ["background", "car"])
    project.add_folder(root)
    rec = project.store.images()[0]
    project.store.add_box(Box(rec.id, project.store.classes()[1].id, 4.0, 6.0, 20.0, 24.0))
    export("yolo", project, tmp_path / "yolo")
    project.close()
    assert (tmp_path / "yolo" / "labels" / "a.txt").read_text() == "0 0.300000 0.500000 0.400000 0.600000\n"
    again, _ = import_dataset(YoloSource.open(tmp_path / "yolo"), tmp_path / "again")
    (box,) = again.store.boxes(again.store.images()[0].id)
    assert (box.x0, box.y0, box.x1, box.y1) == (4.0, 6.0, 20.0, 24.0)
    again.close()
