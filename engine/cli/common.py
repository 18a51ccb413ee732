"""What every ``wsv`` command shares: errors that end the command cleanly, JSON output, a terminal progress bar,
and restarting a command under torchrun."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from typing import Any

from engine.errors import UserError


class CliError(UserError):
    """Ends a command with this message on stderr and exit status 1."""


def emit(result: Any, as_json: bool, human: str) -> None:
    """Print the command's result: JSON on stdout with --json (nothing else on stdout), else ``human``."""
    if as_json:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(human)


class Progress:
    """A one-line progress bar on stderr, drawn only on a terminal and at most ten times a second, so logs
    and pipes stay clean."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.enabled = sys.stderr.isatty()
        self._last = 0.0
        self._start: tuple[float, int] | None = None

    def __call__(self, done: int, total: int, extra: str = "") -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if done < total and now - self._last < 0.1:
            return
        self._last = now
        if self._start is None:
            self._start = (now, done)
        width = 30
        filled = int(width * done / max(total, 1))
        sys.stderr.write(f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total} {extra}"
                         f"{self._left(now, done, total)}\x1b[K")
        if done >= total:
            sys.stderr.write("\n")
        sys.stderr.flush()

    def _left(self, now: float, done: int, total: int) -> str:
        """' · about 3 min left' at the rate since the first update (nothing until there is one)."""
        t0, d0 = self._start
        if done >= total or done <= d0 or now <= t0:
            return ""
        seconds = (total - done) * (now - t0) / (done - d0)
        return f" · about {seconds:.0f} s left" if seconds < 90 else f" · about {seconds / 60:.0f} min left"

    def note(self, text: str) -> None:
        """A message on its own line of stderr (what the user must see, such as a skipped image), the bar
        redrawn under it at its next update."""
        sys.stderr.write(("\r\x1b[K" if self.enabled else "") + text + "\n")
        sys.stderr.flush()


def relaunch_distributed(argv: list[str], devices: int) -> int:
    """``--devices N``: the same command (``argv``, without its --devices) again under torchrun, N processes on
    this machine."""
    kept, skip = [], False
    for a in argv:
        if skip or a == "--devices" or a.startswith("--devices="):
            skip = a == "--devices" and not skip
            continue
        kept.append(a)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={devices}",
           "-m", "engine.cli.main", *kept]
    return subprocess.run(cmd).returncode
