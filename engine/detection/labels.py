"""Which project classes a detector finds, and how its labels relate to their indices.

Detectors, their ground truth and everything shown or written answer in the project's class indices; only the
torchvision networks see shifted labels, since they reserve label 0 for "no object".
"""
from __future__ import annotations

from engine.annotations.types import background_index


def label_offset(class_names: list[str]) -> int:
    """How far a torchvision detector's labels sit from the project's class indices. torchvision reserves label 0
    for "no object": where the project's first class is its background, that is the same thing (offset 0);
    otherwise (MSRC: building, grass, ...; or the background elsewhere in the list) label 0 is added before the
    classes (offset 1), so that class 0 is an object like any other."""
    return 0 if background_index(class_names) == 0 else 1


def object_classes(class_names: list[str]) -> list[int]:
    """The class indices a detector finds: every class but the one named background, which is what no box
    covers (engine.annotations.types.background_index)."""
    background = background_index(class_names)
    return [k for k in range(len(class_names)) if k != background]
