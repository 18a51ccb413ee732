"""How torch's CPU allocator maps large buffers, chosen before torch loads.

The dense CRF's lattice at small spatial bandwidths passes hundreds of MB of fresh buffers through every
training step (the vertex values after each blur step, the operators' rows). Memory a process touches for the
first time costs a page fault per 4 kB page, and at that volume the faults take about as long as the arithmetic.
torch can ask the kernel for 2 MB pages on its large CPU buffers (``THP_MEM_ALLOC_ENABLE``), which cuts the faults
by a factor of 512; it reads the switch once, at its first allocation, so this runs from ``engine/__init__``
like the thread wait policy. The lattice's own index arrays come from numpy, which asks for huge pages by itself.
"""
from __future__ import annotations

import os
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
