"""``wsv bench gui``: does the window stay responsive while the trainer runs on the CPU?

Opens the real main window on a generated 4000×3000 photo-like image, starts live training with the default
settings, and measures (1) event-loop stalls with a 10 ms probe timer, as the 99th percentile of how late it
fires, and (2) stroke-to-screen latency: from a mouse-move event on the canvas to the canvas having repainted
the growing stroke, and from releasing the button to the stroke being in the store and on the seed layer.
Run as ``python -m wsv_gui.bench``; prints JSON records.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _make_project(folder: Path):
    from PIL import Image

    from engine.annotations.types import Stroke
    from engine.project import Project

    rng = np.random.default_rng(0)
    h, w = 3000, 4000
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.empty((h, w, 3), np.float32)
    img[..., 0] = 90 + 60 * np.sin(xx / 400) + 40 * np.cos(yy / 300)
    img[..., 1] = 120 + 50 * np.cos(xx / 500 + yy / 700)
    img[..., 2] = 80 + 30 * np.sin(yy / 250)
    disk = (xx - 2200) ** 2 + (yy - 1400) ** 2 < 900 ** 2
    img[disk] = (220, 60, 50)
    img += rng.normal(0, 6, img.shape).astype(np.float32)
    Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / "large.jpg", quality=90)
    project = Project.create(folder, ["background", "object"])
    project.add_folder(folder)
    bg, obj = project.store.classes()
    image_id = project.store.images()[0].id
    project.store.add_stroke(Stroke(image_id, obj.id, 30.0, [[1900, 1300], [2500, 1500]]))
    project.store.add_stroke(Stroke(image_id, bg.id, 30.0, [[300, 300], [3600, 2700]]))
    project.close()


def run(seconds: float) -> list[dict]:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QElapsedTimer, QPointF, Qt, QTimer
    from PySide6.QtGui import QMouseEvent
    from PySide6.QtWidgets import QApplication

    from engine.project import Project
    from wsv_gui.main_window import MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = tempfile.TemporaryDirectory()
    folder = Path(tmp.name)
    _make_project(folder)
    window = MainWindow(Project.open(folder))
    window.resize(1440, 900)
    window.show()
    app.processEvents()
    canvas = window.canvas
    vp = canvas.viewport()

    def mouse(kind, scene_pt, button, buttons):
        pt = canvas.mapFromScene(QPointF(*scene_pt))
        QApplication.sendEvent(vp, QMouseEvent(kind, QPointF(pt), QPointF(vp.mapToGlobal(pt)), button, buttons,
                                               Qt.KeyboardModifier.NoModifier))

    def draw_strokes(n_strokes: int) -> tuple[list[float], list[float]]:
        move_ms, commit_ms = [], []
        left = Qt.MouseButton.LeftButton
        for k in range(n_strokes):
            y = 500 + 180 * k
            mouse(QMouseEvent.Type.MouseButtonPress, (600, y), left, left)
            for x in range(620, 3400, 40):
                t0 = time.perf_counter()
                mouse(QMouseEvent.Type.MouseMove, (x, y + 60 * np.sin(x / 300)), left, left)
                vp.repaint()
                move_ms.append((time.perf_counter() - t0) * 1000)
            t0 = time.perf_counter()
            mouse(QMouseEvent.Type.MouseButtonRelease, (3400, y), left, Qt.MouseButton.NoButton)
            vp.repaint()
            commit_ms.append((time.perf_counter() - t0) * 1000)
            app.processEvents()
        return move_ms, commit_ms

    idle_moves, idle_commits = draw_strokes(3)
    lateness: list[float] = []
    clock = QElapsedTimer()
    probe = QTimer()
    probe.setInterval(10)
    last = {"t": None}

    def tick() -> None:
        now = clock.nsecsElapsed() / 1e6
        if last["t"] is not None:
            lateness.append(max(0.0, now - last["t"] - 10.0))
        last["t"] = now

    window.train()
    deadline = time.monotonic() + 120
    while not window.training_panel._steps and time.monotonic() < deadline:  # wait for the first step
        app.processEvents()
        time.sleep(0.005)
    clock.start()
    probe.timeout.connect(tick)
    probe.start()
    end = time.monotonic() + seconds
    busy_moves, busy_commits = [], []
    while time.monotonic() < end:
        app.processEvents()
        if len(busy_commits) < 3 and time.monotonic() > end - seconds / 2:
            probe.stop()  # our own synthetic strokes are not stalls of the event loop
            m, c = draw_strokes(1)
            busy_moves += m
            busy_commits += c
            last["t"] = None
            probe.start()
        time.sleep(0.001)
    probe.stop()
    steps = window.training_panel._steps[-1] if window.training_panel._steps else 0
    device = window.status_training.text().split(" ")[0]
    window.close()
    tmp.cleanup()

    def pct(values, q):
        return round(float(np.percentile(values, q)), 2) if values else None

    base = {"bench": "gui", "image": "4000x3000", "device": device}
    return [
        {**base, "metric": "event_loop_stall_p99_ms", "value": pct(lateness, 99), "probe_ms": 10,
         "samples": len(lateness), "training_steps": steps, "seconds": seconds},
        {**base, "metric": "stroke_to_screen_ms", "while": "idle", "p50": pct(idle_moves, 50), "p99": pct(idle_moves, 99)},
        {**base, "metric": "stroke_to_screen_ms", "while": "training", "p50": pct(busy_moves, 50), "p99": pct(busy_moves, 99)},
        {**base, "metric": "stroke_commit_ms", "while": "idle", "p50": pct(idle_commits, 50), "max": pct(idle_commits, 100)},
        {**base, "metric": "stroke_commit_ms", "while": "training", "p50": pct(busy_commits, 50), "max": pct(busy_commits, 100)},
    ]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m wsv_gui.bench")
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    json.dump(run(args.seconds), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
