"""Undoable edits of the annotation store, for Qt's undo stack.

Each command changes the store in one committed transaction when done and when redone, and puts it back when
undone (deleted marks are restored with their old ids, so painting order is kept). ``on_change`` tells the
window what to redraw.
"""
from __future__ import annotations

from typing import Callable

from PySide6.QtGui import QUndoCommand

from engine.annotations.store import AnnotationStore, DeletedClass, StoreError
from engine.annotations.types import Box, ClassDef, Stroke

Changed = Callable[[str, object], None]
"""on_change(kind, detail): 'added' (detail: the new strokes, first time only), 'strokes', 'boxes' or 'tags'
(detail: the image id whose marks of that kind changed), 'classes' (detail: None) or 'error' (detail: the
StoreError of a change that could not be saved)"""


class StoreCommand(QUndoCommand):
    """An edit of the store that Qt's undo stack runs through ``apply`` (do, redo) and ``revert`` (undo).

    A write the store refuses (disk full, the project kept busy by another program) must not leave an undo entry
    for a change that never happened: the command then marks itself obsolete, which makes the stack drop it, and
    reports the error through ``on_change("error", exc)`` so the window can say so and redraw what is stored."""

    on_change: Changed

    def apply(self) -> None:
        raise NotImplementedError

    def revert(self) -> None:
        raise NotImplementedError

    def redo(self) -> None:
        self._guarded(self.apply)

    def undo(self) -> None:
        self._guarded(self.revert)

    def _guarded(self, action: Callable[[], None]) -> None:
        try:
            action()
        except StoreError as exc:
            self.setObsolete(True)
            self.on_change("error", exc)


class AddStrokes(StoreCommand):
    """One brush/eraser stroke, or many at once (accepting a prediction as marks)."""

    def __init__(self, store: AnnotationStore, strokes: list[Stroke], on_change: Changed, text: str) -> None:
        super().__init__(text)
        self.store, self.on_change = store, on_change
        self.strokes = strokes
        self._stored = False

    def apply(self) -> None:
        if not self._stored:
            self.strokes = self.store.add_strokes(self.strokes)
            self._stored = True
            self.on_change("added", self.strokes)
            return
        for s in self.strokes:
            self.store.restore_stroke(s)
        for image_id in {s.image_id for s in self.strokes}:
            self.on_change("strokes", image_id)

    def revert(self) -> None:
        for s in reversed(self.strokes):
            self.store.delete_stroke(s.id)
        for image_id in {s.image_id for s in self.strokes}:
            self.on_change("strokes", image_id)


class AddBox(StoreCommand):
    def __init__(self, store: AnnotationStore, box: Box, class_name: str, on_change: Changed) -> None:
        super().__init__(f"box {class_name}")
        self.store, self.on_change, self.box = store, on_change, box

    def apply(self) -> None:
        self.box = self.store.restore_box(self.box) if self.box.id is not None else self.store.add_box(self.box)
        self.on_change("boxes", self.box.image_id)

    def revert(self) -> None:
        self.store.delete_box(self.box.id)
        self.on_change("boxes", self.box.image_id)


class DeleteBox(StoreCommand):
    def __init__(self, store: AnnotationStore, box_id: int, on_change: Changed) -> None:
        super().__init__("delete box")
        self.store, self.on_change, self.box_id = store, on_change, box_id
        self.box: Box | None = None

    def apply(self) -> None:
        self.box = self.store.delete_box(self.box_id)
        self.on_change("boxes", self.box.image_id)

    def revert(self) -> None:
        self.store.restore_box(self.box)
        self.on_change("boxes", self.box.image_id)


class MoveBox(StoreCommand):
    """Move or resize a box (its id and class stay)."""

    def __init__(self, store: AnnotationStore, box: Box, xyxy: tuple[float, float, float, float], on_change: Changed) -> None:
        super().__init__("move box")
        self.store, self.on_change, self.old, self.new = store, on_change, box, xyxy

    def apply(self) -> None:
        self.store.move_box(self.old.id, self.new)
        self.on_change("boxes", self.old.image_id)

    def revert(self) -> None:
        self.store.move_box(self.old.id, self.old.xyxy)
        self.on_change("boxes", self.old.image_id)


class SetTags(StoreCommand):
    """Set an image's tags (None: untagged again)."""

    def __init__(self, store: AnnotationStore, image_id: int, class_ids: set[int] | None, on_change: Changed) -> None:
        super().__init__("clear tags" if class_ids is None else "tag image")
        self.store, self.on_change, self.image_id, self.new = store, on_change, image_id, class_ids
        self.old: set[int] | None = None

    def apply(self) -> None:
        previous = self.store.set_tags(self.image_id, self.new)
        self.old = None if previous is None else set(previous.class_ids)
        self.on_change("tags", self.image_id)

    def revert(self) -> None:
        self.store.set_tags(self.image_id, self.old)
        self.on_change("tags", self.image_id)


class AddClass(StoreCommand):
    def __init__(self, store: AnnotationStore, name: str, on_change: Changed) -> None:
        super().__init__(f"add class {name}")
        self.store, self.on_change, self.name = store, on_change, name
        self.deleted: DeletedClass | None = None
        self.cls: ClassDef | None = None

    def apply(self) -> None:
        if self.deleted is None:
            self.cls = self.store.add_class(self.name)
        else:
            self.store.restore_class(self.deleted)
        self.on_change("classes", None)

    def revert(self) -> None:
        self.deleted = self.store.delete_class(self.cls.id)
        self.on_change("classes", None)


class DeleteClass(StoreCommand):
    """Deleting a class takes its marks with it; undo brings both back."""

    def __init__(self, store: AnnotationStore, class_id: int, on_change: Changed) -> None:
        super().__init__("delete class")
        self.store, self.on_change, self.class_id = store, on_change, class_id
        self.deleted: DeletedClass | None = None

    def apply(self) -> None:
        self.deleted = self.store.delete_class(self.class_id)
        self.setText(f"delete class {self.deleted.cls.name}")
        self.on_change("classes", None)

    def revert(self) -> None:
        self.store.restore_class(self.deleted)
        self.on_change("classes", None)


class EditClass(StoreCommand):
    """Rename or recolour a class."""

    def __init__(self, store: AnnotationStore, cls: ClassDef, on_change: Changed, *, name: str | None = None,
                 color: tuple[int, int, int] | None = None) -> None:
        super().__init__(f"rename class {cls.name}" if name is not None else f"recolour class {cls.name}")
        self.store, self.on_change, self.old = store, on_change, cls
        self.name, self.color = name, color

    def _apply(self, name: str, color: tuple[int, int, int]) -> None:
        if name != self.store_class().name:
            self.store.rename_class(self.old.id, name)
        self.store.recolor_class(self.old.id, color)
        self.on_change("classes", None)

    def store_class(self) -> ClassDef:
        return next(c for c in self.store.classes() if c.id == self.old.id)

    def apply(self) -> None:
        self._apply(self.name if self.name is not None else self.old.name, self.color or self.old.color)

    def revert(self) -> None:
        self._apply(self.old.name, self.old.color)


class ReorderClasses(StoreCommand):
    def __init__(self, store: AnnotationStore, new_order: list[int], on_change: Changed) -> None:
        super().__init__("reorder classes")
        self.store, self.on_change = store, on_change
        self.old_order = [c.id for c in store.classes()]
        self.new_order = new_order

    def apply(self) -> None:
        self.store.reorder_classes(self.new_order)
        self.on_change("classes", None)

    def revert(self) -> None:
        self.store.reorder_classes(self.old_order)
        self.on_change("classes", None)
