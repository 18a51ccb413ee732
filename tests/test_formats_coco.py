"""COCO out and in: pycocotools reads what we write (each object's mask exactly), our files and others' import
back to the same masks, boxes and tags."""
import json

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from engine.annotations.types import Box
from engine.cli.main import main
from engine.datasets.folder import DatasetError
from engine.datasets.importer import import_dataset
from engine.formats import export
from engine.formats.coco import CocoSource
from engine.project import Project
from tests.test_dataset_io import make_dataset


@pytest.fixture
def project(tmp_path):
    make_dataset(tmp_path / "ds")
    project, report = import_dataset(tmp_path / "ds", tmp_path / "project")
    assert not report.errors
    yield project
    project.close()


def test_pycocotools_reads_every_object_exactly(project, tmp_path):
    export("coco", project, tmp_path / "coco")
    coco = COCO(str(tmp_path / "coco" / "annotations.json"))
    assert [c["name"] for c in coco.loadCats(coco.getCatIds())] == ["cat", "dog"]  # background left out
    store = project.store
    for rec, entry in zip(store.images(), coco.loadImgs(coco.getImgIds())):
        truth = store.ground_truth(rec.id)
        assert (entry["width"], entry["height"]) == (rec.width, rec.height)
        assert (tmp_path / "coco" / entry["file_name"]).is_file()
        assert entry["image_tags"] == ["background", "cat", "dog"]
        anns = coco.loadAnns(coco.getAnnIds(imgIds=entry["id"]))
        assert sorted(a["category_id"] for a in anns) == [1, 2]
        for a in anns:
            got = coco.annToMask(a).astype(bool)
            want = truth == a["category_id"]  # one connected region per class in these masks
            assert (got == want).all() and a["area"] == want.sum()
            ys, xs = np.nonzero(want)
            assert a["bbox"] == [xs.min(), ys.min(), xs.max() + 1 - xs.min(), ys.max() + 1 - ys.min()]


def test_export_import_round_trip_keeps_masks_boxes_and_tags(project, tmp_path):
    store = project.store
    export("coco", project, tmp_path / "coco")
    source = CocoSource.open(tmp_path / "coco")
    assert source.classes == ["background", "cat", "dog"] and not source.unreadable
    again, report = import_dataset(source, tmp_path / "again")
    assert not report.errors and report.images == len(store.images())
    for a, b in zip(store.images(), again.store.images()):
        truth = store.ground_truth(a.id)
        want = np.where(truth == 255, 0, truth)  # COCO has no ignore pixels but crowd regions
        np.testing.assert_array_equal(again.store.ground_truth(b.id), want)
        assert again.store.tags(b.id).class_ids == {c.id for c in again.store.classes()}
    again.close()


def test_boxes_without_masks_go_as_box_annotations_and_come_back(tmp_path):
    root = tmp_path / "photos"
    root.mkdir()
    Image.fromarray(np.zeros((30, 40, 3), np.uint8)).save(root / "a.png")
    project = Project.create(root, ["background", "car"])
    project.add_folder(root)
    rec = project.store.images()[0]
    car = project.store.classes()[1]
    project.store.add_box(Box(rec.id, car.id, 3.5, 4.0, 20.0, 25.25))
    export("coco", project, tmp_path / "coco")
    project.close()
    coco = COCO(str(tmp_path / "coco" / "annotations.json"))
    (ann,) = coco.loadAnns(coco.getAnnIds())
    assert ann["bbox"] == [3.5, 4.0, 16.5, 21.25] and "segmentation" not in ann
    again, _ = import_dataset(CocoSource.open(tmp_path / "coco"), tmp_path / "again")
    (box,) = again.store.boxes(again.store.images()[0].id)
    assert (box.x0, box.y0, box.x1, box.y1) == (3.5, 4.0, 20.0, 25.25)
    assert again.store.ground_truth(again.store.images()[0].id) is None
    again.close()


def test_a_coco_file_from_elsewhere_imports_polygons_rle_crowds_and_unknown_images(tmp_path):
    """As CVAT or Roboflow write them: polygons, uncompressed RLE on a crowd, images in another folder, one
    image missing (reported, the rest imported)."""
    images = tmp_path / "pictures"
    images.mkdir()
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(images / "one.jpg")
    crowd = np.zeros((20, 30), bool)
    crowd[15:20, 0:10] = True
    from engine.formats.rle import counts
    data = {"images": [{"id": 7, "file_name": "one.jpg", "width": 30, "height": 20},
                       {"id": 8, "file_name": "gone.jpg", "width": 30, "height": 20}],
            "categories": [{"id": 3, "name": "person"}, {"id": 1, "name": "dog"}],
            "annotations": [
                {"id": 1, "image_id": 7, "category_id": 3, "segmentation": [[2, 2, 12, 2, 12, 10, 2, 10]],
                 "bbox": [2, 2, 10, 8], "iscrowd": 0},
                {"id": 2, "image_id": 7, "category_id": 1, "iscrowd": 1, "bbox": [0, 15, 10, 5],
                 "segmentation": {"size": [20, 30], "counts": counts(crowd)}},
                {"id": 3, "image_id": 7, "category_id": 1, "bbox": [20, 1, 8, 8]}]}
    (tmp_path / "labels.json").write_text(json.dumps(data))
    code = main(["import", str(tmp_path / "labels.json"), "--format", "coco", "--images", str(images),
                 "--project", str(tmp_path / "p"), "--json"])
    assert code == 0
    with Project.open(tmp_path / "p") as p:
        assert [c.name for c in p.store.classes()] == ["background", "dog", "person"]
        (rec,) = p.store.images()
        truth = p.store.ground_truth(rec.id)
        assert (truth[2:10, 2:12] == 2).all() and truth.sum() == 2 * 80 + 255 * 50
        assert (truth[15:20, 0:10] == 255).all()
        (box,) = p.store.boxes(rec.id)
        assert (box.x0, box.y0, box.x1, box.y1) == (20, 1, 28, 9)


def test_masks_can_come_in_as_marks(project, tmp_path):
    export("coco", project, tmp_path / "coco")
    again, report = import_dataset(CocoSource.open(tmp_path / "coco"), tmp_path / "again", masks_as="marks")
    first = again.store.images()[0]
    assert again.store.ground_truth(first.id) is None and report.strokes > 0
    truth = project.store.ground_truth(project.store.images()[0].id)
    np.testing.assert_array_equal(again.store.seed_map(first.id), np.where(truth == 255, 0, truth))
    again.close()


def test_bad_coco_files_are_refused_in_words(tmp_path):
    (tmp_path / "a.json").write_text("{not json")
    with pytest.raises(DatasetError, match="is not a COCO JSON file"):
        CocoSource.open(tmp_path / "a.json")
    (tmp_path / "b.json").write_text(json.dumps({"images": [], "annotations": [{"id": 1, "image_id": 1,
                                                                             "category_id": 9}]}))
    with pytest.raises(DatasetError, match="unknown category"):
        CocoSource.open(tmp_path / "b.json")


def test_cli_exports_coco(project, tmp_path, capsys):
    root = project.root
    project.close()
    assert main(["export", str(root), str(tmp_path / "out"), "--format", "coco", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["masks"] == 4
    assert len(COCO(str(tmp_path / "out" / "annotations.json")).getAnnIds()) == 8
