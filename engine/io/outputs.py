"""Output folders the commands and the GUI's exports write into: ours, or refused.

A command that writes a folder (a training run, masks, an export) must never overwrite or delete what the user
keeps there. So a folder is taken only when it does not exist yet, is empty, or was written by the same kind of
command before — recognised by the marker file each command leaves in it, or by a file only that command
writes (folders written before the marker existed). Anything else is refused with a message, before any work.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from engine.errors import UserError


class OutputFolderError(UserError):
    """A folder a command may not write into; the message says why and what to do."""


MARKER = ".wsv-output.json"
"""Left in every output folder: which command wrote it."""


def claim_output(folder: Path, kind: str, signatures: tuple[str, ...] = ()) -> Path:
    """Make ``folder`` the output of a ``kind`` command (``train``, ``predict`` ...), creating it where needed;
    refuse a file, a folder of something else, or one we cannot write. ``signatures`` are files only this kind
    of command writes."""
    if folder.exists() and not folder.is_dir():
        raise OutputFolderError(f"{folder} is a file, not a folder; choose another output folder")
    if folder.is_dir():
        marker = folder / MARKER
        try:
            owner = json.loads(marker.read_text(encoding="utf-8")).get("kind") if marker.is_file() else None
            empty = not any(folder.iterdir())
        except (OSError, ValueError, AttributeError) as exc:
            raise OutputFolderError(f"cannot use {folder} as the output folder: {exc}") from None
        if owner is None and not empty and not any((folder / name).is_file() for name in signatures):
            raise OutputFolderError(f"{folder} already holds other files, and no wsv {kind} wrote it; choose a new or empty "
                           f"output folder (nothing was changed)")
        if owner is not None and owner != kind:
            raise OutputFolderError(f"{folder} is the output of wsv {owner}; choose another folder for wsv {kind}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK):
            raise PermissionError(13, "Permission denied")
        (folder / MARKER).write_text(json.dumps({"kind": kind}) + "\n", encoding="utf-8")
    except OSError as exc:
        raise OutputFolderError(f"cannot write to {folder}: {exc.strerror or exc}") from None
    return folder
