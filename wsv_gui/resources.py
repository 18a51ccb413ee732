"""Where the bundled resources are, and the user's own copy of the demo project.

The demo is shipped as a dataset folder (read-only inside an installation); the first launch imports it into a
project in the user's data folder, so the marks a user adds to the demo are kept between sessions.
"""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QStandardPaths

from engine.datasets.importer import import_dataset
from engine.project import Project


def resources_dir() -> Path:
    """``resources/`` beside the packages in a source checkout, ``wsv_resources`` in an installed wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "resources", here.parent / "wsv_resources"):
        if (candidate / "demo").is_dir():
            return candidate
    raise FileNotFoundError(f"WSV Studio resources not found next to {here}")


def user_data_dir() -> Path:
    path = Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation))
    path.mkdir(parents=True, exist_ok=True)
    return path


def demo_project() -> Project:
    """Open the user's demo project, importing the bundled demo data set on first use."""
    root = user_data_dir() / "demo-project"
    if Project.exists(root):
        return Project.open(root)
    project, report = import_dataset(resources_dir() / "demo", root, copy_images=True)
    if report.errors:
        raise RuntimeError("the bundled demo could not be imported: " + "; ".join(report.errors))
    return project
