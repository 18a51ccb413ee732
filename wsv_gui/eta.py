"""How long a training run has left, in words a status line can show."""
from __future__ import annotations


def time_left(steps_left: int, steps_per_s: float) -> str:
    """'about 3 min left' from the steps still to go at the current speed; 'finishing' at the end."""
    if steps_left <= 0:
        return "finishing"
    if steps_per_s <= 0:
        return "estimating time left…"
    seconds = steps_left / steps_per_s
    if seconds < 60:
        return f"about {max(1, round(seconds))} s left"
    if seconds < 3600:
        return f"about {round(seconds / 60)} min left"
    return f"about {seconds / 3600:.1f} h left"
