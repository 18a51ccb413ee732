"""WSV Studio's engine: everything but the window. Importing it first chooses how torch's CPU threads wait
(``engine.threads``), which only works before torch loads."""
from engine.threads import choose_wait_policy

choose_wait_policy()
