"""How torch's CPU threads wait for work, chosen before torch loads.

torch's parallel loops run on an OpenMP team (libgomp in the PyPI builds) whose threads, by default, spin for a
while after every loop before they sleep. On an idle machine that saves a wake-up per loop; on a machine where
anything else runs — a user's machine always does — a spinning thread holds a core the other process needs, and
the team waits for its slowest thread, which shares a core with that process: training then slows far more than
in proportion to the cores it lost (``wsv bench load`` measures both, docs/benchmarks.md). So the engine asks
for passive waiting unless the user chose a policy.

libgomp reads the policy once, when torch loads it, so this runs from ``engine/__init__``: every entry point
(the ``wsv`` command, the GUI, the benchmarks' worker processes) imports the engine before torch.
"""
from __future__ import annotations

import os
from typing import MutableMapping

WAIT_POLICY = "PASSIVE"
"""Threads sleep as soon as a parallel loop ends (``OMP_WAIT_POLICY``)."""

USER_CHOICES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")
"""Variables by which a user has already chosen how threads wait; any of them set leaves the choice alone."""


def choose_wait_policy(env: MutableMapping[str, str] = os.environ) -> str | None:
    """Set ``OMP_WAIT_POLICY`` in ``env`` unless the user chose; returns the value set, or None."""
    if any(name in env for name in USER_CHOICES):
        return None
    env["OMP_WAIT_POLICY"] = WAIT_POLICY
    return WAIT_POLICY
