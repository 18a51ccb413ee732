"""A bare Linux desktop: wsv-gui names the missing system libraries and their packages instead of failing in Qt."""
import ctypes

from wsv_gui import launch, system_libraries
from wsv_gui.system_libraries import XCB_PLUGIN, missing_libraries


def test_missing_libraries_are_named_with_their_packages(monkeypatch, capsys):
    real = ctypes.CDLL

    def cdll(name, *args, **kwargs):
        if name in ("libxcb-icccm.so.4", "libxcb-keysyms.so.1"):
            raise OSError(f"{name}: cannot open shared object file")
        return real(name, *args, **kwargs)
    monkeypatch.setattr(system_libraries.sys, "platform", "linux")
    monkeypatch.setattr(system_libraries.ctypes, "CDLL", cdll)
    assert missing_libraries("xcb") == {"libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-keysyms.so.1": "libxcb-keysyms1"}
    assert missing_libraries("offscreen") == {}  # the offscreen platform needs no X11 libraries
    monkeypatch.setenv("QT_QPA_PLATFORM", "xcb")
    assert launch.main(["--project", "nowhere"]) == 1
    err = capsys.readouterr().err
    assert "sudo apt install libxcb-icccm4 libxcb-keysyms1" in err


def test_every_library_the_xcb_plugin_needs_is_listed():
    """The list must follow the Qt that PySide6 ships: every xcb and xkb library its plugin links is in it."""
    import subprocess
    from pathlib import Path

    import PySide6
    plugin = Path(PySide6.__file__).parent / "Qt" / "lib" / "libQt6XcbQpa.so.6"
    linked = subprocess.run(["ldd", str(plugin)], capture_output=True, text=True).stdout
    names = {line.split()[0] for line in linked.splitlines() if "xcb" in line or "xkb" in line}
    assert names <= set(XCB_PLUGIN) | set(system_libraries.QT_GUI)
