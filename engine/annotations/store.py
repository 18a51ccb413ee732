"""The annotation store: one SQLite file per project, the single source of truth for everything the user marks.

Every public method that changes data is one committed transaction (WAL journal, ``synchronous=FULL``), so a
mark that a method returned is on disk and survives ``kill -9`` or a power cut. Readers on other connections
(the trainer runs in another thread or process) see consistent snapshots while the GUI writes. Deleting returns
the deleted object and ``restore_*`` puts it back with the same id, which is all an undo stack needs.

Each image carries ``marks_rev``, bumped on every change to its marks, and the project a global ``revision``;
the trainer polls these to pick up new marks without re-reading everything.
"""
from __future__ import annotations

import io
import sqlite3
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
from PIL import Image

from engine.errors import UserError
from engine.annotations.raster import rasterize
from engine.annotations.schema import SchemaError, migrate
from engine.annotations.types import Box, ClassDef, ImageRecord, Stroke, Tags, background_index
from engine.io.palette import class_color, hex_color, parse_color


LOCK_TIMEOUT_S = 10.0
"""How long a write waits for another program's write to finish before giving up with a message."""


class StoreError(UserError):
    """A request the store refuses (unknown id, duplicate name, ...), with a message fit for the user."""


@dataclass(frozen=True)
class ImageMarks:
    """All marks of one image, read in one transaction."""

    strokes: list[Stroke]
    boxes: list[Box]
    tags: Tags | None


@dataclass(frozen=True)
class DeletedClass:
    """A deleted class with every mark that referred to it, so that undo can restore all of it."""

    cls: ClassDef
    strokes: list[Stroke]
    boxes: list[Box]
    tagged_image_ids: list[int]


@dataclass(frozen=True)
class MarkCounts:
    strokes: int
    boxes: int
    tagged: bool


class AnnotationStore:
    """A connection to a project's SQLite file. Use one instance per thread (SQLite connections are not shared
    across threads); any number of instances may be open on the same file."""

    def __init__(self, path: str | Path, *, create: bool = False) -> None:
        self.path = Path(path)
        if not create:
            if not self.path.is_file():
                raise StoreError(f"no project database at {self.path}")
            if self.path.stat().st_size == 0:
                raise StoreError(f"the project database {self.path} is empty (0 bytes): it was damaged; restore it "
                                 f"from a backup, or move it away to start a new project there")
        self._depth = 0
        try:
            self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=LOCK_TIMEOUT_S)
            if not create and self._conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                self._conn.close()
                raise StoreError(f"{self.path} is not a WSV Studio project database")
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            migrate(self._conn)
        except SchemaError as exc:
            self._conn.close()
            raise StoreError(f"cannot open {self.path}: {exc}") from None
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open project database {self.path}: {_reason(exc)}") from exc
        self._thread = threading.get_ident()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "AnnotationStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- transactions -------------------------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """Group several changes into one transaction: all of them are on disk, or none (an image and all its
        marks on import). Writes inside join it instead of committing on their own; a transaction inside another
        is a savepoint, undone alone if it fails (an import commits many images at once, each whole or absent)."""
        if self._depth:
            name = f"nested{self._depth}"
            self._conn.execute(f"SAVEPOINT {name}")
            self._depth += 1
            try:
                yield self._conn
                self._conn.execute(f"RELEASE {name}")
            except BaseException:
                self._conn.execute(f"ROLLBACK TO {name}")
                self._conn.execute(f"RELEASE {name}")
                raise
            finally:
                self._depth -= 1
            return
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"cannot write to {self.path}: {_reason(exc)}") from None
        self._depth = 1
        try:
            yield self._conn
            self._conn.execute("UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'revision'")
            self._conn.execute("COMMIT")
        except BaseException as exc:
            if self._conn.in_transaction:  # a failed COMMIT (disk full) has already rolled back
                self._conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.OperationalError):
                raise StoreError(f"cannot write to {self.path}: {_reason(exc)}; the change was not saved") from None
            raise
        finally:
            self._depth = 0

    _write = transaction
    """One write transaction that also bumps the project revision (each public change is one)."""

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read transaction: every query inside sees the same committed state."""
        if self._conn.in_transaction:
            yield self._conn
            return
        self._conn.execute("BEGIN")
        try:
            yield self._conn
        finally:
            self._conn.execute("COMMIT")

    def _bump(self, image_id: int) -> None:
        cur = self._conn.execute("UPDATE images SET marks_rev = marks_rev + 1 WHERE id = ?", (image_id,))
        if cur.rowcount == 0:
            raise StoreError(f"no image with id {image_id}")

    def revision(self) -> int:
        return int(self._conn.execute("SELECT value FROM meta WHERE key = 'revision'").fetchone()[0])

    # ---- project settings -----------------------------------------------------------------------------------
    def get_setting(self, key: str, default: str | None = None) -> str | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", ("setting." + key,)).fetchone()
        return default if row is None else row[0]

    def set_setting(self, key: str, value: str) -> None:
        with self._write() as c:
            c.execute("INSERT INTO meta(key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                      ("setting." + key, value))

    # ---- classes --------------------------------------------------------------------------------------------
    def classes(self) -> list[ClassDef]:
        rows = self._conn.execute("SELECT id, name, color, sort_order FROM classes ORDER BY sort_order, id").fetchall()
        return [ClassDef(name=n, color=parse_color(c), index=i, id=cid) for i, (cid, n, c, _) in enumerate(rows)]

    def add_class(self, name: str, color: tuple[int, int, int] | None = None) -> ClassDef:
        name = _check_name(name)
        with self._write() as c:
            n = c.execute("SELECT COUNT(*) FROM classes").fetchone()[0]
            rgb = class_color(n) if color is None else tuple(int(v) for v in color)
            try:
                cur = c.execute("INSERT INTO classes(name, color, sort_order) VALUES (?, ?, "
                                "(SELECT COALESCE(MAX(sort_order), -1) + 1 FROM classes))", (name, hex_color(rgb)))
            except sqlite3.IntegrityError:
                raise StoreError(f"a class named {name!r} already exists") from None
            cid = cur.lastrowid
        return self._class(cid)

    def _class(self, class_id: int) -> ClassDef:
        for cls in self.classes():
            if cls.id == class_id:
                return cls
        raise StoreError(f"no class with id {class_id}")

    def rename_class(self, class_id: int, name: str) -> None:
        name = _check_name(name)
        with self._write() as c:
            try:
                cur = c.execute("UPDATE classes SET name = ? WHERE id = ?", (name, class_id))
            except sqlite3.IntegrityError:
                raise StoreError(f"a class named {name!r} already exists") from None
            if cur.rowcount == 0:
                raise StoreError(f"no class with id {class_id}")

    def recolor_class(self, class_id: int, color: tuple[int, int, int]) -> None:
        with self._write() as c:
            if c.execute("UPDATE classes SET color = ? WHERE id = ?", (hex_color(color), class_id)).rowcount == 0:
                raise StoreError(f"no class with id {class_id}")

    def reorder_classes(self, class_ids: Sequence[int]) -> None:
        """Set the class order (and so the class indices in masks) to ``class_ids``, which must name every
        class exactly once."""
        with self._write() as c:
            existing = {r[0] for r in c.execute("SELECT id FROM classes")}
            if sorted(class_ids) != sorted(existing):
                raise StoreError("reorder must list every class exactly once")
            c.executemany("UPDATE classes SET sort_order = ? WHERE id = ?", [(i, cid) for i, cid in enumerate(class_ids)])
            c.execute("UPDATE images SET marks_rev = marks_rev + 1")

    def delete_class(self, class_id: int) -> DeletedClass:
        """Delete a class and every mark of it; the returned record restores all of it."""
        with self._write() as c:
            cls = self._class(class_id)
            strokes = [_stroke(r) for r in c.execute(_STROKE_SQL + " WHERE class_id = ? ORDER BY id", (class_id,))]
            boxes = [_box(r) for r in c.execute(_BOX_SQL + " WHERE class_id = ? ORDER BY id", (class_id,))]
            tagged = [r[0] for r in c.execute("SELECT image_id FROM tags WHERE class_id = ?", (class_id,))]
            touched = {s.image_id for s in strokes} | {b.image_id for b in boxes} | set(tagged)
            c.execute("DELETE FROM classes WHERE id = ?", (class_id,))
            c.executemany("UPDATE classes SET sort_order = ? WHERE id = ?",
                          [(i, r[0]) for i, r in enumerate(c.execute("SELECT id FROM classes ORDER BY sort_order").fetchall())])
            for image_id in touched:
                self._bump(image_id)
        return DeletedClass(cls, strokes, boxes, tagged)

    def restore_class(self, deleted: DeletedClass) -> None:
        cls = deleted.cls
        with self._write() as c:
            c.execute("UPDATE classes SET sort_order = sort_order + 1 WHERE sort_order >= ?", (cls.index,))
            c.execute("INSERT INTO classes(id, name, color, sort_order) VALUES (?, ?, ?, ?)",
                      (cls.id, cls.name, hex_color(cls.color), cls.index))
            for s in deleted.strokes:
                self._insert_stroke(s)
            for b in deleted.boxes:
                self._insert_box(b)
            c.executemany("INSERT INTO tags(image_id, class_id) VALUES (?, ?)",
                          [(i, cls.id) for i in deleted.tagged_image_ids])
            for image_id in {s.image_id for s in deleted.strokes} | {b.image_id for b in deleted.boxes} | set(deleted.tagged_image_ids):
                self._bump(image_id)

    # ---- images ---------------------------------------------------------------------------------------------
    def add_image(self, path: str, width: int, height: int, sha256: str, split: str | None = None) -> ImageRecord:
        with self._write() as c:
            try:
                cur = c.execute("INSERT INTO images(path, width, height, sha256, split) VALUES (?, ?, ?, ?, ?)",
                                (path, width, height, sha256, split))
            except sqlite3.IntegrityError as exc:
                raise StoreError(f"cannot add image {path!r}: {exc}") from None
        return ImageRecord(path, width, height, sha256, split, cur.lastrowid)

    def images(self) -> list[ImageRecord]:
        rows = self._conn.execute("SELECT path, width, height, sha256, split, id FROM images ORDER BY id").fetchall()
        return [ImageRecord(*r) for r in rows]

    def image(self, image_id: int) -> ImageRecord:
        row = self._conn.execute("SELECT path, width, height, sha256, split, id FROM images WHERE id = ?",
                                 (image_id,)).fetchone()
        if row is None:
            raise StoreError(f"no image with id {image_id}")
        return ImageRecord(*row)

    def set_image_path(self, image_id: int, path: str) -> None:
        """Point an image at the file it now lives in (found again by its content hash; see Project.locate_images)."""
        with self._write() as c:
            try:
                updated = c.execute("UPDATE images SET path = ? WHERE id = ?", (path, image_id)).rowcount
            except sqlite3.IntegrityError:
                raise StoreError(f"another image of the project already refers to {path!r}") from None
            if updated == 0:
                raise StoreError(f"no image with id {image_id}")

    def set_split(self, image_id: int, split: str | None) -> None:
        if split not in (None, "train", "test"):
            raise StoreError(f"split must be 'train', 'test' or none, got {split!r}")
        with self._write() as c:
            if c.execute("UPDATE images SET split = ? WHERE id = ?", (split, image_id)).rowcount == 0:
                raise StoreError(f"no image with id {image_id}")

    def marks_revisions(self) -> dict[int, int]:
        """image id -> revision of its marks; compare two calls to find the images whose marks changed."""
        return dict(self._conn.execute("SELECT id, marks_rev FROM images").fetchall())

    def teaching_revisions(self, kinds: Sequence[str]) -> dict[int, int]:
        """image id -> marks revision, in id order, of the images holding marks of any of ``kinds`` ("strokes",
        "boxes", "tagged"): what a training run can learn from, found through the marks' own tables so that a
        project of many unmarked images costs no more than its marked ones."""
        tables = {"strokes": "strokes", "boxes": "boxes", "tagged": "tagged_images"}
        marked = " UNION ".join(f"SELECT image_id FROM {tables[k]}" for k in kinds)
        return dict(self._conn.execute(f"SELECT id, marks_rev FROM images WHERE id IN ({marked}) ORDER BY id"))

    def mark_counts(self) -> dict[int, MarkCounts]:
        with self.read() as c:
            strokes = dict(c.execute("SELECT image_id, COUNT(*) FROM strokes GROUP BY image_id").fetchall())
            boxes = dict(c.execute("SELECT image_id, COUNT(*) FROM boxes GROUP BY image_id").fetchall())
            tagged = {r[0] for r in c.execute("SELECT image_id FROM tagged_images")}
            ids = [r[0] for r in c.execute("SELECT id FROM images")]
        counts = dict.fromkeys(ids, MarkCounts(0, 0, False))  # one shared record for the many unmarked images
        for i in strokes.keys() | boxes.keys() | tagged:
            counts[i] = MarkCounts(strokes.get(i, 0), boxes.get(i, 0), i in tagged)
        return counts

    def marked_classes(self) -> list[str]:
        """Names of the classes the marks teach, in class order: those painted by strokes, tagged present, or
        boxed — and the class named background wherever there are boxes, since outside every box is background."""
        with self.read() as c:
            ids = {r[0] for r in c.execute("SELECT DISTINCT class_id FROM strokes WHERE class_id IS NOT NULL")}
            boxed = {r[0] for r in c.execute("SELECT DISTINCT class_id FROM boxes")}
            ids |= boxed | {r[0] for r in c.execute("SELECT DISTINCT class_id FROM tags")}
            classes = self.classes()
        background = background_index([k.name for k in classes])
        if boxed and background is not None:
            ids.add(classes[background].id)
        return [k.name for k in classes if k.id in ids]

    # ---- strokes --------------------------------------------------------------------------------------------
    def add_stroke(self, stroke: Stroke) -> Stroke:
        with self._write():
            sid = self._insert_stroke(stroke)
            self._bump(stroke.image_id)
        return Stroke(stroke.image_id, stroke.class_id, stroke.radius, stroke.points, sid)

    def add_strokes(self, strokes: Iterable[Stroke]) -> list[Stroke]:
        """Add many strokes in one transaction (imports, accepting a prediction as marks)."""
        out = []
        with self._write():
            for s in strokes:
                out.append(Stroke(s.image_id, s.class_id, s.radius, s.points, self._insert_stroke(s)))
            for image_id in {s.image_id for s in out}:
                self._bump(image_id)
        return out

    def _insert_stroke(self, s: Stroke) -> int:
        try:
            cur = self._conn.execute(
                "INSERT INTO strokes(id, image_id, class_id, radius, points) VALUES (?, ?, ?, ?, ?)",
                (s.id, s.image_id, s.class_id, float(s.radius), s.points.astype("<f4").tobytes()))
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"cannot store stroke: {exc} (unknown image or class?)") from None
        return cur.lastrowid

    def delete_stroke(self, stroke_id: int) -> Stroke:
        with self._write() as c:
            row = c.execute(_STROKE_SQL + " WHERE id = ?", (stroke_id,)).fetchone()
            if row is None:
                raise StoreError(f"no stroke with id {stroke_id}")
            c.execute("DELETE FROM strokes WHERE id = ?", (stroke_id,))
            stroke = _stroke(row)
            self._bump(stroke.image_id)
        return stroke

    def restore_stroke(self, stroke: Stroke) -> Stroke:
        """Put a deleted stroke back with its old id (so its place in the painting order is kept)."""
        if stroke.id is None:
            raise StoreError("only a stroke that was stored can be restored")
        with self._write():
            self._insert_stroke(stroke)
            self._bump(stroke.image_id)
        return stroke

    def strokes(self, image_id: int) -> list[Stroke]:
        return [_stroke(r) for r in self._conn.execute(_STROKE_SQL + " WHERE image_id = ? ORDER BY id", (image_id,))]

    # ---- boxes ----------------------------------------------------------------------------------------------
    def add_box(self, box: Box) -> Box:
        with self._write():
            bid = self._insert_box(box)
            self._bump(box.image_id)
        return Box(box.image_id, box.class_id, box.x0, box.y0, box.x1, box.y1, bid)

    def _insert_box(self, b: Box) -> int:
        try:
            cur = self._conn.execute("INSERT INTO boxes(id, image_id, class_id, x0, y0, x1, y1) VALUES (?, ?, ?, ?, ?, ?, ?)",
                                     (b.id, b.image_id, b.class_id, b.x0, b.y0, b.x1, b.y1))
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"cannot store box: {exc} (unknown image or class?)") from None
        return cur.lastrowid

    def delete_box(self, box_id: int) -> Box:
        with self._write() as c:
            row = c.execute(_BOX_SQL + " WHERE id = ?", (box_id,)).fetchone()
            if row is None:
                raise StoreError(f"no box with id {box_id}")
            c.execute("DELETE FROM boxes WHERE id = ?", (box_id,))
            box = _box(row)
            self._bump(box.image_id)
        return box

    def restore_box(self, box: Box) -> Box:
        if box.id is None:
            raise StoreError("only a box that was stored can be restored")
        with self._write():
            self._insert_box(box)
            self._bump(box.image_id)
        return box

    def move_box(self, box_id: int, xyxy: Sequence[float]) -> Box:
        """Move or resize a box in place (its id and class stay); returns the box as it was, for undo."""
        x0, y0, x1, y1 = (float(v) for v in xyxy)
        with self._write() as c:
            row = c.execute(_BOX_SQL + " WHERE id = ?", (box_id,)).fetchone()
            if row is None:
                raise StoreError(f"no box with id {box_id}")
            old = _box(row)
            Box(old.image_id, old.class_id, x0, y0, x1, y1)  # validates the new corners
            c.execute("UPDATE boxes SET x0 = ?, y0 = ?, x1 = ?, y1 = ? WHERE id = ?", (x0, y0, x1, y1, box_id))
            self._bump(old.image_id)
        return old

    def boxes(self, image_id: int) -> list[Box]:
        return [_box(r) for r in self._conn.execute(_BOX_SQL + " WHERE image_id = ? ORDER BY id", (image_id,))]

    # ---- tags -----------------------------------------------------------------------------------------------
    def tags(self, image_id: int) -> Tags | None:
        with self.read() as c:
            if c.execute("SELECT 1 FROM tagged_images WHERE image_id = ?", (image_id,)).fetchone() is None:
                return None
            ids = frozenset(r[0] for r in c.execute("SELECT class_id FROM tags WHERE image_id = ?", (image_id,)))
        return Tags(image_id, ids)

    def set_tags(self, image_id: int, class_ids: Iterable[int] | None) -> Tags | None:
        """Set an image's tags (None makes it untagged again); returns the previous tags for undo."""
        previous = self.tags(image_id)
        with self._write() as c:
            c.execute("DELETE FROM tagged_images WHERE image_id = ?", (image_id,))
            if class_ids is not None:
                c.execute("INSERT INTO tagged_images(image_id) VALUES (?)", (image_id,))
                try:
                    c.executemany("INSERT INTO tags(image_id, class_id) VALUES (?, ?)",
                                  [(image_id, k) for k in set(class_ids)])
                except sqlite3.IntegrityError:
                    raise StoreError(f"cannot tag image {image_id}: unknown class id in {sorted(set(class_ids))}") from None
            self._bump(image_id)
        return previous

    # ---- whole-image reads for the trainer and exporters ----------------------------------------------------
    def marks(self, image_id: int) -> ImageMarks:
        with self.read():
            return ImageMarks(self.strokes(image_id), self.boxes(image_id), self.tags(image_id))

    def seed_map(self, image_id: int, shape: tuple[int, int] | None = None) -> np.ndarray:
        """The image's strokes rasterized into class indices (255 = unlabeled) at ``shape`` (rows, cols);
        by default at the image's full size. The scale is taken from the widths, so give a shape of the
        same aspect ratio."""
        with self.read():
            rec = self.image(image_id)
            index = {c.id: c.index for c in self.classes()}
            strokes = self.strokes(image_id)
        shape = (rec.height, rec.width) if shape is None else shape
        scale = shape[1] / rec.width
        return rasterize(shape, ((None if s.class_id is None else index[s.class_id], s.radius, s.points)
                                 for s in strokes), scale)

    # ---- ground truth ---------------------------------------------------------------------------------------
    def set_ground_truth(self, image_id: int, mask: np.ndarray | None) -> None:
        """Keep (or with None, drop) a full ground-truth mask for evaluation, losslessly as PNG."""
        with self._write() as c:
            rec = self.image(image_id)
            c.execute("DELETE FROM ground_truth WHERE image_id = ?", (image_id,))
            if mask is not None:
                if mask.dtype != np.uint8 or mask.shape != (rec.height, rec.width):
                    raise StoreError(f"ground truth for {rec.path} must be uint8 of shape {(rec.height, rec.width)}, "
                                     f"got {mask.dtype} {mask.shape}")
                buf = io.BytesIO()
                Image.fromarray(mask).save(buf, format="PNG")
                c.execute("INSERT INTO ground_truth(image_id, png) VALUES (?, ?)", (image_id, buf.getvalue()))

    def ground_truth(self, image_id: int) -> np.ndarray | None:
        row = self._conn.execute("SELECT png FROM ground_truth WHERE image_id = ?", (image_id,)).fetchone()
        if row is None:
            return None
        with Image.open(io.BytesIO(row[0])) as img:
            return np.array(img, dtype=np.uint8)

    def ground_truth_ids(self) -> set[int]:
        return {r[0] for r in self._conn.execute("SELECT image_id FROM ground_truth")}


_STROKE_SQL = "SELECT id, image_id, class_id, radius, points FROM strokes"
_BOX_SQL = "SELECT id, image_id, class_id, x0, y0, x1, y1 FROM boxes"


def _reason(exc: sqlite3.Error) -> str:
    """SQLite's error in words a user can act on."""
    text = str(exc)
    if "disk is full" in text or "disk I/O" in text:
        return f"{text} (free some disk space and try again)"
    if "locked" in text or "busy" in text:
        return (f"{text}: another program kept the project busy for over {LOCK_TIMEOUT_S:.0f} s (close it, or try "
                f"again)")
    if "readonly" in text:
        return f"{text} (the file or its folder is read-only)"
    return text


def _stroke(row: tuple) -> Stroke:
    sid, image_id, class_id, radius, blob = row
    return Stroke(image_id, class_id, radius, np.frombuffer(blob, dtype="<f4").reshape(-1, 2).copy(), sid)


def _box(row: tuple) -> Box:
    bid, image_id, class_id, x0, y0, x1, y1 = row
    return Box(image_id, class_id, x0, y0, x1, y1, bid)


def _check_name(name: str) -> str:
    name = name.strip()
    if not name:
        raise StoreError("a class name cannot be empty")
    if "\n" in name or "\r" in name:
        raise StoreError("a class name cannot contain line breaks")
    return name
