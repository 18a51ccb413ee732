"""Files written whole or not at all: a reader (or a rerun after a crash, a full disk, kill -9) sees the old
file or the new one, never half of one."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Have ``write`` fill a temporary file beside ``path``, then put it in place in one rename."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        write(partial)
        with open(partial, "rb") as f:
            os.fsync(f.fileno())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
