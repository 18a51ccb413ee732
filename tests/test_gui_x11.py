"""The app in a real X server, as a user meets it: Qt's xcb platform (the system libraries it loads, a real
window), a stroke drawn and keys pressed as X input events (xdotool), a few training steps, the overlay
changing, and quitting with the keyboard. Offscreen tests never load the xcb plugin; this one does."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not os.environ.get("CI") and (shutil.which("Xvfb") is None or
                                                              shutil.which("xdotool") is None),
                                reason="needs Xvfb and xdotool (.ci/run installs them; under CI it never skips)")

DRIVER = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    import numpy as np
    from PIL import Image
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication
    from engine.project import Project
    from wsv_gui.main_window import MainWindow

    folder, status = Path(sys.argv[1]), Path(sys.argv[2])
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        Image.fromarray(rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)).save(folder / f"{name}.png")
    project = Project.create(folder, ["background", "object"])
    project.add_folder(folder)
    app = QApplication(sys.argv[:1])
    app.setApplicationDisplayName("WSV Studio")
    window = MainWindow(project)
    window.segmentation.training_panel.settings.model.setCurrentText("unet")  # small and quick: the test is about the window
    window.setGeometry(0, 0, 1200, 760)
    window.show()
    overlays = []

    def report():
        rgba = window.segmentation.canvas.prediction.rgba()
        key = hash(rgba.tobytes()) if rgba.size else None
        if key is not None and (not overlays or overlays[-1] != key):
            overlays.append(key)
        vp = window.segmentation.canvas.viewport()
        corner = vp.mapToGlobal(vp.rect().topLeft())
        centre = vp.mapToGlobal(window.segmentation.canvas.mapFromScene(160, 120))
        state = {"viewport": [corner.x(), corner.y(), vp.width(), vp.height()], "image_centre": [centre.x(), centre.y()],
                 "platform": QApplication.platformName(), "title": window.windowTitle(),
                 "strokes": len(project.store.strokes(window.current_image_id)) if window.current_image_id else 0,
                 "training": window.segmentation.training is not None, "overlays": len(overlays)}
        status.with_suffix(".tmp").write_text(json.dumps(state))
        status.with_suffix(".tmp").replace(status)  # whole, for the test that reads it

    timer = QTimer(interval=200, timeout=report)
    timer.start()
    app.aboutToQuit.connect(report)
    sys.exit(app.exec())
""")


def free_display() -> str:
    for n in range(90, 140):
        if not Path(f"/tmp/.X11-unix/X{n}").exists() and not Path(f"/tmp/.X{n}-lock").exists():
            return f":{n}"
    pytest.skip("no free X display number")


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_real_window_draws_trains_and_quits(tmp_path, user_data):
    display = free_display()
    xvfb = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    status = tmp_path / "status.json"
    env = dict(os.environ, DISPLAY=display, QT_QPA_PLATFORM="xcb", XDG_DATA_HOME=str(user_data),
               OMP_NUM_THREADS="1")
    app = None
    try:
        wait_for(lambda: Path(f"/tmp/.X11-unix/X{display[1:]}").exists(), 30, "the X server")
        app = subprocess.Popen([sys.executable, "-c", DRIVER, str(tmp_path / "photos"), str(status)], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

        def state():
            try:
                return json.loads(status.read_text())
            except (OSError, ValueError):
                return None

        first = wait_for(state, 120, "the window")
        assert first["platform"] == "xcb" and first["title"].startswith("photos")

        def x(*args):
            subprocess.run(["xdotool", *map(str, args)], env=env, check=True, timeout=30)

        cx, cy = first["image_centre"]
        for key, dy in (("2", -30), ("1", 40)):  # a stroke of the object, then one of the background
            x("mousemove", cx - 60, cy + dy)
            x("key", key)
            x("mousedown", 1)
            for step in range(1, 7):
                x("mousemove", cx - 60 + 20 * step, cy + dy)
            x("mouseup", 1)
        wait_for(lambda: state()["strokes"] == 2, 30, "two strokes in the store")
        x("key", "ctrl+t")
        wait_for(lambda: state()["training"], 30, "training to start")
        wait_for(lambda: state()["overlays"] >= 2, 240, "the overlay to change while training")
        x("key", "ctrl+q")
        assert app.wait(timeout=60) == 0, app.stdout.read()
        assert state()["strokes"] == 2
    finally:
        if app is not None and app.poll() is None:
            app.kill()
        xvfb.kill()
        xvfb.wait()
