"""The annotation store: marks round-trip, undo-style delete/restore, snapshots, migrations, kill -9 safety."""
import signal
import sqlite3
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from engine.annotations.schema import SCHEMA_VERSION
from engine.annotations.store import AnnotationStore, StoreError
from engine.annotations.types import Box, Stroke


@pytest.fixture
def store(tmp_path):
    s = AnnotationStore(tmp_path / "p.wsv", create=True)
    s.add_class("background")
    s.add_class("horse")
    s.add_image("a.png", 40, 30, "00")
    yield s
    s.close()


def ids(store):
    bg, horse = store.classes()
    return bg.id, horse.id, store.images()[0].id


def test_classes_order_rename_recolor(store):
    bg, horse = store.classes()
    assert (bg.index, horse.index) == (0, 1)
    sky = store.add_class("sky", (1, 2, 3))
    store.reorder_classes([bg.id, sky.id, horse.id])
    assert [c.name for c in store.classes()] == ["background", "sky", "horse"]
    store.rename_class(sky.id, "cloud")
    store.recolor_class(sky.id, (9, 8, 7))
    assert store.classes()[1] == type(sky)("cloud", (9, 8, 7), 1, sky.id)
    with pytest.raises(StoreError, match="already exists"):
        store.add_class("horse")
    with pytest.raises(StoreError, match="every class"):
        store.reorder_classes([bg.id])


def test_stroke_round_trip_delete_restore(store):
    bg, horse, img = ids(store)
    pts = np.array([[1.5, 2.25], [np.nan, np.nan], [30.0, 20.5]], np.float32)
    s1 = store.add_stroke(Stroke(img, horse, 2.5, pts))
    s2 = store.add_stroke(Stroke(img, None, 1.0, [[3, 3]]))
    got = store.strokes(img)
    assert [s.id for s in got] == [s1.id, s2.id]
    np.testing.assert_array_equal(got[0].points, pts)
    assert got[1].is_eraser and got[0].radius == 2.5
    removed = store.delete_stroke(s1.id)
    assert [s.id for s in store.strokes(img)] == [s2.id]
    store.restore_stroke(removed)
    assert [s.id for s in store.strokes(img)] == [s1.id, s2.id]  # painting order kept
    with pytest.raises(StoreError):
        store.delete_stroke(9999)
    with pytest.raises(StoreError, match="unknown image or class"):
        store.add_stroke(Stroke(img, 12345, 1.0, [[0, 0]]))


def test_seed_map_paints_in_order_with_class_indices(store):
    bg, horse, img = ids(store)
    store.add_stroke(Stroke(img, horse, 1.0, [[5.5, 5.5], [10.5, 5.5]]))
    store.add_stroke(Stroke(img, bg, 0.5, [[7.5, 5.5]]))
    seeds = store.seed_map(img)
    assert seeds.shape == (30, 40)
    assert seeds[5, 7] == 0 and seeds[5, 5] == 1 and seeds[4, 8] == 1 and seeds[0, 0] == 255
    half = store.seed_map(img, (15, 20))
    assert half[2, 4] == 1


def test_boxes_tags_and_counts(store):
    bg, horse, img = ids(store)
    b = store.add_box(Box(img, horse, 1, 2, 10, 20))
    assert store.boxes(img) == [b]
    assert store.delete_box(b.id) == b and store.boxes(img) == []
    store.restore_box(b)
    rev = store.marks_revisions()[img]
    assert store.move_box(b.id, (3, 4, 12, 22)) == b
    assert store.boxes(img)[0].xyxy == (3, 4, 12, 22) and store.boxes(img)[0].id == b.id
    assert store.marks_revisions()[img] > rev
    with pytest.raises(ValueError):
        store.move_box(b.id, (5, 5, 4, 9))
    with pytest.raises(StoreError, match="no box"):
        store.move_box(9999, (0, 0, 1, 1))
    store.move_box(b.id, b.xyxy)
    assert store.tags(img) is None
    assert store.set_tags(img, [horse]) is None
    assert store.tags(img).class_ids == {horse}
    prev = store.set_tags(img, [])
    assert prev.class_ids == {horse} and store.tags(img).class_ids == frozenset()
    store.set_tags(img, None)
    assert store.tags(img) is None
    counts = store.mark_counts()[img]
    assert (counts.strokes, counts.boxes, counts.tagged) == (0, 1, False)
    with pytest.raises(ValueError):
        Box(img, horse, 5, 5, 5, 9)


def test_delete_class_takes_its_marks_and_restores_them(store):
    bg, horse, img = ids(store)
    store.add_stroke(Stroke(img, horse, 1.0, [[1, 1]]))
    store.add_stroke(Stroke(img, bg, 1.0, [[2, 2]]))
    store.add_box(Box(img, horse, 0, 0, 5, 5))
    store.set_tags(img, [horse, bg])
    gone = store.delete_class(horse)
    assert [c.name for c in store.classes()] == ["background"]
    assert len(store.strokes(img)) == 1 and store.boxes(img) == [] and store.tags(img).class_ids == {bg}
    store.restore_class(gone)
    assert [c.name for c in store.classes()] == ["background", "horse"]
    assert len(store.strokes(img)) == 2 and len(store.boxes(img)) == 1 and store.tags(img).class_ids == {bg, horse}


def test_revisions_tell_which_image_changed(store):
    bg, horse, img = ids(store)
    other = store.add_image("b.png", 8, 8, "11").id
    before, rev = store.marks_revisions(), store.revision()
    store.add_stroke(Stroke(other, horse, 1.0, [[1, 1]]))
    after = store.marks_revisions()
    assert after[other] == before[other] + 1 and after[img] == before[img]
    assert store.revision() > rev


def test_ground_truth_is_lossless(store):
    *_, img = ids(store)
    mask = np.random.default_rng(0).integers(0, 3, (30, 40)).astype(np.uint8)
    mask[0, :5] = 255
    store.set_ground_truth(img, mask)
    np.testing.assert_array_equal(store.ground_truth(img), mask)
    with pytest.raises(StoreError, match="shape"):
        store.set_ground_truth(img, mask[:5])


def test_reader_sees_consistent_snapshot_while_writer_commits(store, tmp_path):
    bg, horse, img = ids(store)
    reader = AnnotationStore(tmp_path / "p.wsv")
    with reader.read():
        n0 = len(reader.strokes(img))
        store.add_stroke(Stroke(img, horse, 1.0, [[1, 1]]))  # committed by the writer meanwhile
        assert len(reader.strokes(img)) == n0
    assert len(reader.strokes(img)) == n0 + 1
    reader.close()


def test_schema_version_and_newer_database_refused(tmp_path):
    path = tmp_path / "p.wsv"
    AnnotationStore(path, create=True).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        AnnotationStore(path)


def test_missing_and_corrupt_database(tmp_path):
    with pytest.raises(StoreError, match="no project database"):
        AnnotationStore(tmp_path / "nothing.wsv")
    bad = tmp_path / "bad.wsv"
    bad.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(StoreError, match="cannot open"):
        AnnotationStore(bad)


WRITER = textwrap.dedent("""
    import sys, numpy as np
    from engine.annotations.store import AnnotationStore
    from engine.annotations.types import Stroke
    s = AnnotationStore(sys.argv[1])
    cls = s.classes()[1].id
    img = s.images()[0].id
    i = 0
    while True:
        pts = np.array([[i % 40, i % 30], [(i * 7) % 40, (i * 3) % 30]], np.float32)
        stroke = s.add_stroke(Stroke(img, cls, 1.0 + i % 5, pts))
        print(stroke.id, i, flush=True)
        i += 1
""")


def test_every_committed_stroke_survives_kill_9(store, tmp_path):
    path = tmp_path / "p.wsv"
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    reported = []
    try:
        while len(reported) < 150:
            line = proc.stdout.readline()
            assert line, "writer died"
            reported.append(tuple(int(v) for v in line.split()))
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    # Lines written after our last read are committed too; only what was reported is checked exactly.
    s = AnnotationStore(path)
    assert s._conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    by_id = {st.id: st for st in s.strokes(s.images()[0].id)}
    for sid, i in reported:
        st = by_id[sid]
        np.testing.assert_array_equal(st.points, [[i % 40, i % 30], [(i * 7) % 40, (i * 3) % 30]])
        assert st.radius == 1.0 + i % 5
    s.close()


def test_a_full_disk_is_reported_and_nothing_half_written(store):
    """SQLite rolls a failed COMMIT back itself; the store must say "disk is full", not fail on its own ROLLBACK."""
    _, class_id, image_id = ids(store)
    store.add_stroke(Stroke(image_id, class_id, 1.0, np.zeros((2, 2), np.float32)))
    pages = store._conn.execute("PRAGMA page_count").fetchone()[0]
    store._conn.execute(f"PRAGMA max_page_count = {pages}")
    big = np.zeros((200_000, 2), np.float32)
    with pytest.raises(StoreError, match="disk is full.*free some disk space"):
        store.add_strokes([Stroke(image_id, class_id, 1.0, big), Stroke(image_id, class_id, 1.0, big)])
    store._conn.execute("PRAGMA max_page_count = 1073741823")
    assert len(store.strokes(image_id)) == 1  # neither of the two strokes, and the store still works
    store.add_stroke(Stroke(image_id, class_id, 1.0, big))
    assert len(store.strokes(image_id)) == 2


def test_a_project_kept_busy_by_another_program(store, monkeypatch):
    _, class_id, image_id = ids(store)
    other = sqlite3.connect(store.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
    store._conn.execute("PRAGMA busy_timeout = 200")
    try:
        with pytest.raises(StoreError, match="another program kept the project busy"):
            store.add_stroke(Stroke(image_id, class_id, 1.0, np.zeros((2, 2), np.float32)))
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.add_stroke(Stroke(image_id, class_id, 1.0, np.zeros((2, 2), np.float32)))
    assert len(store.strokes(image_id)) == 1


def test_a_transaction_groups_changes(store):
    _, class_id, image_id = ids(store)
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.add_stroke(Stroke(image_id, class_id, 1.0, np.zeros((2, 2), np.float32)))
            store.add_box(Box(image_id, class_id, 0, 0, 5, 5))
            raise RuntimeError("stopped half-way")
    assert store.strokes(image_id) == [] and store.boxes(image_id) == []
    before = store.revision()
    with store.transaction():
        store.add_stroke(Stroke(image_id, class_id, 1.0, np.zeros((2, 2), np.float32)))
        store.add_box(Box(image_id, class_id, 0, 0, 5, 5))
    assert len(store.strokes(image_id)) == 1 and len(store.boxes(image_id)) == 1
    assert store.revision() == before + 1


def test_marked_classes(store):
    bg, horse, image_id = ids(store)
    assert store.marked_classes() == []
    store.add_stroke(Stroke(image_id, horse, 1.0, np.zeros((2, 2), np.float32)))
    store.add_stroke(Stroke(image_id, None, 1.0, np.zeros((2, 2), np.float32)))  # the eraser teaches nothing
    assert store.marked_classes() == ["horse"]
    store.add_box(Box(image_id, horse, 0, 0, 5, 5))  # outside the box is background
    assert store.marked_classes() == ["background", "horse"]


def test_a_failed_inner_transaction_undoes_only_its_own_changes(store):
    """An import commits many images at once; an image that fails half-way must leave nothing behind while the
    images before and after it in the same commit are kept."""
    bg, _, _ = ids(store)
    with store.transaction():
        b = store.add_image("b.png", 40, 30, "01")
        with pytest.raises(RuntimeError):
            with store.transaction():
                c = store.add_image("c.png", 40, 30, "02")
                store.add_strokes([Stroke(c.id, bg, 2.0, np.array([[1.0, 1.0], [5.0, 5.0]], np.float32))])
                raise RuntimeError("the image's marks were malformed")
        with store.transaction():
            d = store.add_image("d.png", 40, 30, "03")
    assert [r.path for r in store.images()] == ["a.png", "b.png", "d.png"]
    assert sum(counts.strokes for counts in store.mark_counts().values()) == 0  # c's stroke went with it
    assert store.marks(d.id).strokes == [] and store.marks(b.id).strokes == []
