"""How the process maps and keeps its large buffers, chosen when the engine loads.

The dense CRF's lattice passes many fresh buffers through every training step (the vertex values after each blur
step, the operators' rows, the keys it sorts): tens of MB at the default bandwidth, hundreds at small ones.
Memory a process touches for the first time costs a page fault per 4 kB page, and at that volume the faults take
about as long as the arithmetic. Two things keep them down:

* Huge pages: torch can ask the kernel for 2 MB pages on its large CPU buffers (``THP_MEM_ALLOC_ENABLE``), which
  cuts the faults by a factor of 512; it reads the switch once, at its first allocation, so this runs from
  ``engine/__init__`` like the thread wait policy. numpy asks for huge pages by itself.
* Keeping freed memory: glibc hands blocks above its mmap threshold back to the kernel when they are freed, so
  the next step's buffers of the same sizes fault in afresh. ``keep_freed_memory`` raises the threshold to its
  maximum and stops the heap from being trimmed, so blocks up to 32 MB are reused from one step to the next; the
  process then holds its peak of such blocks, as a training process does anyway. Larger blocks still go back
  to the kernel.
"""
from __future__ import annotations

import ctypes
import os
import platform
from typing import MutableMapping

HUGE_PAGES = "THP_MEM_ALLOC_ENABLE"
"""torch's switch for huge pages on large CPU buffers (used where the kernel's transparent huge pages are set to
``madvise`` or ``always``; ignored elsewhere)."""


def choose_huge_pages(env: MutableMapping[str, str] = os.environ) -> bool:
    """Turn torch's huge pages on in ``env`` unless the user set the switch; True if this set it."""
    if HUGE_PAGES in env:
        return False
    env[HUGE_PAGES] = "1"
    return True


MALLOC_CHOICES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_", "GLIBC_TUNABLES")
"""Variables by which a user has already tuned glibc's allocator; any of them set leaves it alone."""

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # mallopt's parameter numbers (malloc.h)
_MMAP_THRESHOLD_MAX = 32 << 20  # glibc's largest allowed threshold on 64-bit systems
_NEVER = (1 << 31) - 1  # mallopt takes a C int: the largest trim threshold it can be given


def keep_freed_memory(env: MutableMapping[str, str] = os.environ) -> bool:
    """Have glibc keep freed blocks up to 32 MB for reuse instead of returning them to the kernel, unless the
    user tuned the allocator or this is not glibc; True if set."""
    if any(name in env for name in MALLOC_CHOICES) or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) and libc.mallopt(_M_TRIM_THRESHOLD, _NEVER))
    except (OSError, AttributeError):
        return False
