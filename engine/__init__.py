"""WSV Studio's engine: everything but the window. Importing it first chooses how torch's CPU threads wait
(``engine.threads``) and how its allocator maps large buffers (``engine.memory``), which only works before torch
loads, and has the C allocator keep freed buffers for reuse."""
from engine.memory import choose_huge_pages, keep_freed_memory
from engine.threads import choose_wait_policy

choose_wait_policy()
choose_huge_pages()
keep_freed_memory()
