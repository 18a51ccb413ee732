"""WSV Studio's engine: everything but the window. Importing it first chooses how torch's CPU threads wait
(``engine.threads``) and how its allocator maps large buffers (``engine.memory``), which only works before torch
loads."""
from engine.memory import choose_huge_pages
from engine.threads import choose_wait_policy

choose_wait_policy()
choose_huge_pages()
