"""A project: a folder holding the annotation store, with images referenced relative to that folder.

Images stay where they are (a folder of 10 000 photos is not copied); their paths are stored relative to the
project folder so that moving both together keeps the project intact, and a content hash lets a missing image
be recognised. The project file name is fixed so that "open a folder" finds an existing project there.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from engine.annotations.store import AnnotationStore, StoreError
from engine.annotations.types import ImageRecord
from engine.io.images import IMAGE_EXTENSIONS, ImageLoadError, LoadedImage, list_images, load_image, read_image_size, \
    sha256_file

PROJECT_FILE = "project.wsv"
DEFAULT_CLASSES = ("background", "object")


@dataclass
class AddImagesReport:
    added: list[ImageRecord] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Paths already in the project."""
    errors: list[ImageLoadError] = field(default_factory=list)


@dataclass
class LocateReport:
    found: list[ImageRecord] = field(default_factory=list)
    """the images found again, with their new paths"""
    missing: list[ImageRecord] = field(default_factory=list)
    """the images still missing"""


class Project:
    """The project folder and its store. ``Project.open`` in each thread that needs the store."""

    def __init__(self, root: Path, store: AnnotationStore) -> None:
        self.root = root
        self.store = store

    @classmethod
    def create(cls, root: str | Path, classes: tuple[str, ...] | list[str] = DEFAULT_CLASSES) -> "Project":
        root = Path(root).resolve()
        if (root / PROJECT_FILE).exists():
            raise StoreError(f"{root} already holds a project ({PROJECT_FILE}); open it instead")
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the project folder {root}: {exc.strerror}") from None
        if not os.access(root, os.W_OK):
            raise StoreError(f"the folder {root} is read-only; choose another place for the project")
        # Built under another name and renamed when complete, so a crash never leaves a project without classes.
        partial = root / (PROJECT_FILE + ".partial")
        for leftover in (partial, *(partial.with_name(partial.name + s) for s in ("-wal", "-shm"))):
            leftover.unlink(missing_ok=True)
        store = AnnotationStore(partial, create=True)
        try:
            with store.transaction():
                for name in classes:
                    store.add_class(name)
        finally:
            store.close()  # the last connection's close folds the WAL into the file
        os.replace(partial, root / PROJECT_FILE)
        return cls(root, AnnotationStore(root / PROJECT_FILE))

    @classmethod
    def open(cls, root: str | Path) -> "Project":
        root = Path(root).resolve()
        if root.is_file() and root.name == PROJECT_FILE:
            root = root.parent
        if not (root / PROJECT_FILE).is_file():
            raise StoreError(f"{root} is not a WSV Studio project (no {PROJECT_FILE} in it)")
        return cls(root, AnnotationStore(root / PROJECT_FILE))

    @staticmethod
    def exists(root: str | Path) -> bool:
        return (Path(root) / PROJECT_FILE).is_file()

    def close(self) -> None:
        self.store.close()

    def __enter__(self) -> "Project":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db_path(self) -> Path:
        return self.root / PROJECT_FILE

    # ---- images ---------------------------------------------------------------------------------------------
    def image_path(self, rec: ImageRecord) -> Path:
        return (self.root / rec.path).resolve()

    def relative(self, path: str | Path) -> str:
        """How a file is referenced in the store: relative to the project folder where possible."""
        path = Path(path).resolve()
        try:
            return Path(os.path.relpath(path, self.root)).as_posix()
        except ValueError:  # another drive on Windows
            return path.as_posix()

    def add_image(self, path: str | Path, split: str | None = None) -> ImageRecord:
        """Register one image (size read from its header, content hashed); raises ImageLoadError if unreadable."""
        width, height = read_image_size(path)
        return self.store.add_image(self.relative(path), width, height, sha256_file(path), split)

    def add_images(self, paths: list[Path], on_progress: Callable[[int, int], None] | None = None) -> AddImagesReport:
        """Register many images; an unreadable file is reported and the rest still added."""
        report = AddImagesReport()
        known = {rec.path for rec in self.store.images()}
        for i, path in enumerate(paths):
            rel = self.relative(path)
            if rel in known:
                report.skipped.append(rel)
            else:
                try:
                    report.added.append(self.add_image(path))
                    known.add(rel)
                except ImageLoadError as exc:
                    report.errors.append(exc)
            if on_progress:
                on_progress(i + 1, len(paths))
        return report

    def add_folder(self, folder: str | Path, on_progress: Callable[[int, int], None] | None = None) -> AddImagesReport:
        """Register the folder's images; links to nothing are reported with the unreadable files."""
        problems: list[ImageLoadError] = []
        try:
            paths = list_images(folder, problems)
        except OSError as exc:
            raise StoreError(f"cannot list {folder}: {exc.strerror or exc}") from None
        report = self.add_images(paths, on_progress)
        report.errors[:0] = problems
        return report

    def missing_images(self, records: list[ImageRecord] | None = None) -> list[ImageRecord]:
        """Images (of ``records``, default all) whose file is not where the project refers to it (moved,
        renamed, or the project copied without them)."""
        listed: dict[str, set[str]] = {}  # each folder read once: a stat per image takes seconds for 100 000
        missing = []
        for rec in self.store.images() if records is None else records:
            folder, name = os.path.split(os.path.join(self.root, rec.path))
            if folder not in listed:
                try:
                    with os.scandir(folder) as entries:
                        listed[folder] = {e.name for e in entries if e.is_file()}
                except OSError:
                    listed[folder] = set()
            if name not in listed[folder]:
                missing.append(rec)
        return missing

    def locate_images(self, folder: str | Path, on_progress: Callable[[int, int], None] | None = None) -> LocateReport:
        """Point missing images at files under ``folder`` (and its subfolders) whose content is what it was when
        they were added (same SHA-256), so every mark drawn on them still fits. Files named like a missing image
        are read first; only while some are still missing is every other image file read, so renamed files are
        found too at the cost of one pass over the folder."""
        waiting: dict[str, list[ImageRecord]] = {}
        for rec in self.missing_images():
            waiting.setdefault(rec.sha256, []).append(rec)
        names = {Path(rec.path).name for recs in waiting.values() for rec in recs}
        files = sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()
                       and not p.name.startswith("."))
        files = [p for p in files if p.name in names] + [p for p in files if p.name not in names]
        known = {rec.path for rec in self.store.images()}
        report = LocateReport()
        for i, path in enumerate(files):
            if not waiting:
                break
            if on_progress:
                on_progress(i + 1, len(files))
            if self.relative(path) in known:
                continue  # another image of the project, where it should be
            try:
                digest = sha256_file(path)
            except (ImageLoadError, OSError):
                continue  # unreadable: not the image we are looking for
            if digest in waiting:
                rec = waiting[digest].pop(0)  # a picture added twice under two names is found once per copy
                if not waiting[digest]:
                    del waiting[digest]
                self.store.set_image_path(rec.id, self.relative(path))
                known.add(self.relative(path))
                report.found.append(self.store.image(rec.id))
        report.missing = sorted((rec for recs in waiting.values() for rec in recs), key=lambda r: r.id)
        return report

    def load_image(self, rec: ImageRecord, max_side: int | None = 4096) -> LoadedImage:
        return load_image(self.image_path(rec), max_side=max_side)
