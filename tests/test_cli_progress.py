"""The command line's progress bar says how long is left, at the rate seen so far."""
from engine.cli.common import Progress


def test_time_left_from_the_rate_so_far():
    p = Progress("training")
    p._start = (100.0, 0)
    assert p._left(110.0, 10, 100) == " · about 2 min left"  # 90 s
    assert p._left(101.0, 50, 100) == " · about 1 s left"
    assert p._left(160.0, 10, 100) == " · about 9 min left"
    assert p._left(160.0, 100, 100) == "" and p._left(100.0, 0, 100) == ""
