"""labelme out and in: filling our shapes in order as labelme does (PIL's polygon fill, the oracle) gives the mask
back exactly; files as labelme writes them import."""
import base64
import json

import numpy as np
from PIL import Image, ImageDraw

from engine.datasets.importer import import_dataset
from engine.formats import export
from engine.formats.labelme import LabelmeSource
from tests.test_formats_coco import project  # noqa: F401  (the fixture: a project with masks, boxes, tags)


def labelme_fill(data, names):
    """labelme.utils.shape_to_mask / labelme2voc: each polygon filled with PIL in file order."""
    mask = Image.new("L", (data["imageWidth"], data["imageHeight"]), 0)
    draw = ImageDraw.Draw(mask)
    for s in data["shapes"]:
        if s["shape_type"] == "polygon":
            label = 0 if s["label"] in ("_background_", "background") else names.index(s["label"])
            draw.polygon([tuple(p) for p in s["points"]], outline=label, fill=label)
    return np.array(mask)


def test_shapes_filled_as_labelme_fills_them_give_the_mask_back(project, tmp_path):
    store = project.store
    rng = np.random.default_rng(3)
    rec = store.images()[0]
    noisy = rng.integers(0, 3, (rec.height, rec.width)).astype(np.uint8)  # holes, islands, diagonal touches
    store.set_ground_truth(rec.id, noisy)
    export("labelme", project, tmp_path / "lm")
    names = [c.name for c in store.classes()]
    for r in store.images():
        data = json.loads((tmp_path / "lm" / f"{r.path.split('/')[-1].rsplit('.', 1)[0]}.json").read_text())
        truth = store.ground_truth(r.id)
        np.testing.assert_array_equal(labelme_fill(data, names), np.where(truth == 255, 0, truth))
        assert data["imageData"] is None and (tmp_path / "lm" / data["imagePath"]).is_file()
        assert data["flags"] == {"background": True, "cat": True, "dog": True}
    assert (tmp_path / "lm" / "labels.txt").read_text().split() == ["__ignore__", "_background_", "cat", "dog"]


def test_round_trip_keeps_masks_boxes_and_tags(project, tmp_path):
    export("labelme", project, tmp_path / "lm")
    source = LabelmeSource.open(tmp_path / "lm")
    assert source.classes == ["background", "cat", "dog"] and not source.unreadable
    again, report = import_dataset(source, tmp_path / "again")
    assert not report.errors
    store = project.store
    for a, b in zip(store.images(), again.store.images()):
        truth = store.ground_truth(a.id)
        np.testing.assert_array_equal(again.store.ground_truth(b.id), np.where(truth == 255, 0, truth))
        assert [(x.x0, x.y0, x.x1, x.y1) for x in again.store.boxes(b.id)] == \
            [(x.x0, x.y0, x.x1, x.y1) for x in store.boxes(a.id)]
        assert len(again.store.tags(b.id).class_ids) == 3
    again.close()


def test_a_file_as_labelme_saves_it_imports(tmp_path):
    """labelme's own example layout: imagePath beside the JSON, embedded imageData, a polygon, a rectangle, a
    point (no region: left out) and flags."""
    folder = tmp_path / "annotated"
    folder.mkdir()
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(folder / "2011_000003.jpg")
    data = {"version": "5.2.1", "flags": {"person": True, "bottle": False},
            "shapes": [{"label": "person", "points": [[10.0, 5.0], [30.0, 5.0], [30.0, 25.0], [10.0, 25.0]],
                        "group_id": None, "description": "", "shape_type": "polygon", "flags": {}},
                       {"label": "bottle", "points": [[40.0, 10.0], [50.0, 30.0]], "group_id": None,
                        "shape_type": "rectangle", "flags": {}},
                       {"label": "person", "points": [[3.0, 3.0]], "shape_type": "point", "flags": {}}],
            "imagePath": "2011_000003.jpg",
            "imageData": base64.b64encode((folder / "2011_000003.jpg").read_bytes()).decode(),
            "imageHeight": 40, "imageWidth": 60}
    (folder / "2011_000003.json").write_text(json.dumps(data))
    (folder / "broken.json").write_text("{}")
    source = LabelmeSource.open(folder)
    assert source.classes == ["background", "person", "bottle"] and len(source.unreadable) == 1
    project, report = import_dataset(source, tmp_path / "p")
    rec = project.store.images()[0]
    truth = project.store.ground_truth(rec.id)
    np.testing.assert_array_equal(truth, labelme_fill(data, source.classes))
    (box,) = project.store.boxes(rec.id)
    assert (box.x0, box.y0, box.x1, box.y1) == (40, 10, 51, 31)  # pixels 40..50 and 10..30
    assert project.store.tags(rec.id).class_ids == {project.store.classes()[1].id}
    project.close()
