"""The Qt binding must not leak or drop references to Python's singletons: one that drops a reference to None
on each call (PySide6 6.12.0 on Python 3.11 did) kills a GUI session after some minutes of live plotting."""
import sys

from PySide6.QtWidgets import QLabel


def test_qt_calls_keep_none_true_and_false_alive(qtbot):
    label = QLabel()
    qtbot.addWidget(label)
    before = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
    for _ in range(200):
        label.setText("x")  # returns nothing
        label.isVisible()  # returns a bool
        label.isHidden()
    after = sys.getrefcount(None), sys.getrefcount(True), sys.getrefcount(False)
    assert [b - a for a, b in zip(before, after)] == [0, 0, 0]
