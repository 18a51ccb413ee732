"""The system libraries Qt needs on a Linux desktop, checked before Qt loads.

The PySide6 wheel brings Qt itself, but its X11 platform plugin links against libraries a bare desktop may lack
(libxcb-icccm4, libxcb-keysyms1 ...). Qt then says only that "no Qt platform plugin could be initialized" and
names one of them at best; here each missing library is found by loading it, and named with the Debian/Ubuntu
package that provides it, so the user can install them all at once.
"""
from __future__ import annotations

import ctypes
import os
import sys

QT_GUI = {
    "libEGL.so.1": "libegl1", "libGL.so.1": "libgl1", "libfontconfig.so.1": "libfontconfig1",
    "libfreetype.so.6": "libfreetype6", "libglib-2.0.so.0": "libglib2.0-0", "libdbus-1.so.3": "libdbus-1-3",
    "libxkbcommon.so.0": "libxkbcommon0", "libX11.so.6": "libx11-6",
}
"""What Qt's GUI module itself loads."""

XCB_PLUGIN = {
    "libxcb.so.1": "libxcb1", "libX11-xcb.so.1": "libx11-xcb1", "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-cursor.so.0": "libxcb-cursor0", "libxcb-icccm.so.4": "libxcb-icccm4", "libxcb-util.so.1": "libxcb-util1",
    "libxcb-image.so.0": "libxcb-image0", "libxcb-keysyms.so.1": "libxcb-keysyms1", "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0", "libxcb-render.so.0": "libxcb-render0",
    "libxcb-shm.so.0": "libxcb-shm0", "libxcb-sync.so.1": "libxcb-sync1", "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-shape.so.0": "libxcb-shape0", "libxcb-xkb.so.1": "libxcb-xkb1",
}
"""What Qt's X11 (xcb) platform plugin loads on top."""


def missing_libraries(platform: str | None = None) -> dict[str, str]:
    """soname -> Debian package, for the libraries the Qt platform in use needs and this system cannot load
    (empty off Linux, and for platforms that need no X11 libraries, such as offscreen)."""
    if not sys.platform.startswith("linux"):
        return {}
    platform = (platform if platform is not None else os.environ.get("QT_QPA_PLATFORM", "")).split(":")[0]
    needed = dict(QT_GUI)
    if platform in ("", "xcb"):
        needed.update(XCB_PLUGIN)
    missing = {}
    for soname, package in needed.items():
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing[soname] = package
    return missing


def install_hint(missing: dict[str, str]) -> str:
    return (f"WSV Studio cannot open a window: the system lacks {', '.join(sorted(missing))}, which Qt needs. "
            f"On Debian or Ubuntu install them with:\n  sudo apt install {' '.join(sorted(set(missing.values())))}")
