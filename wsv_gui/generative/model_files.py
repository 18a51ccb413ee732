"""Where the Generative tab keeps its model, and the lock that stops one thread from reading model files while
another writes them (the training worker saves snapshots that the sampling service loads)."""
from __future__ import annotations

import shutil
import threading
from pathlib import Path

from engine.generative.models import DESCRIPTION_FILE, WEIGHTS_FILE

MODEL_FILES_LOCK = threading.Lock()
MODEL_FILES = (DESCRIPTION_FILE, WEIGHTS_FILE)


def project_model_dir(project_root: Path) -> Path:
    """The project's own generative model: trained here, loaded again when the project is reopened."""
    return project_root / "models" / "generative"


def has_model(folder: Path) -> bool:
    return all((folder / name).is_file() for name in MODEL_FILES)


def stamp(folder: Path) -> tuple[str, int]:
    """Changes whenever the weights are rewritten, so a reader knows to reload."""
    return str(folder), (folder / WEIGHTS_FILE).stat().st_mtime_ns


def copy_model(source: Path, target: Path) -> None:
    """Copy a saved model (weights + description) to another folder, never mid-write."""
    target.mkdir(parents=True, exist_ok=True)
    with MODEL_FILES_LOCK:
        for name in MODEL_FILES:
            shutil.copyfile(source / name, target / name)
