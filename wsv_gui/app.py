"""The application behind ``wsv-gui`` (started by wsv_gui.launch): opens the demo project (or ``--project DIR``)
in the main window.

``--screenshot OUT.png`` waits until the window is drawn with its image and thumbnails, saves it and exits;
the README picture and visual checks are made this way.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from engine.annotations.store import StoreError
from engine.project import Project
from wsv_gui.main_window import MainWindow
from wsv_gui.resources import demo_project


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="wsv-gui", description="WSV Studio: mark images, watch a CNN learn.")
    parser.add_argument("--project", type=Path, help="project folder, or a folder of images to make a project of")
    parser.add_argument("--screenshot", type=Path, metavar="OUT.png", help="save the window to a PNG once drawn, then exit")
    parser.add_argument("--size", default="1280x800", help="window size for --screenshot, WIDTHxHEIGHT")
    return parser.parse_args(argv)


def open_project(path: Path | None) -> tuple[Project, list[str]]:
    """The project to show, and the files of a folder of images that could not be added (each with why)."""
    if path is None:
        return demo_project(), []
    if Project.exists(path):
        return Project.open(path), []
    if not path.is_dir():
        raise StoreError(f"{path} is not a folder")
    project = Project.create(path)
    return project, [str(e) for e in project.add_folder(path).errors]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setApplicationName("wsv-studio")  # names the data and settings folders
    app.setApplicationDisplayName("WSV Studio")
    try:
        project, skipped = open_project(args.project)
    except StoreError as exc:
        if args.screenshot:
            print(f"wsv-gui: error: {exc}", file=sys.stderr)
        else:
            QMessageBox.critical(None, "WSV Studio", str(exc))
        return 1
    window = MainWindow(project)
    if args.screenshot:
        w, h = (int(v) for v in args.size.lower().split("x"))
        window.resize(w, h)
    window.show()
    app.aboutToQuit.connect(window.close)  # however the loop ends, worker threads stop before Python tears down
    if skipped:
        for line in skipped:
            print(f"wsv-gui: skipped {line}", file=sys.stderr)
        if not args.screenshot:
            QMessageBox.warning(window, "Some files were skipped", f"{len(skipped)} files could not be read:\n\n"
                                + "\n".join(skipped[:20]))
    if args.screenshot:
        _screenshot_when_ready(app, window, args.screenshot)
    return app.exec()


def _screenshot_when_ready(app: QApplication, window: MainWindow, out: Path, timeout_ms: int = 20000) -> None:
    """Poll until thumbnails are in and the event queue has drawn the window, then grab it and quit."""
    waited = {"ms": 0}

    def attempt() -> None:
        waited["ms"] += 100
        # the list asks for the thumbnails of the rows it draws, so wait for a first paint before asking it
        if (waited["ms"] >= 300 and window.image_list.loading_done()) or waited["ms"] >= timeout_ms:
            app.processEvents()
            ok = window.grab().save(str(out))
            print(f"screenshot {'saved to' if ok else 'could not be written to'} {out}")
            app.exit(0 if ok else 1)
        else:
            QTimer.singleShot(100, attempt)

    QTimer.singleShot(300, attempt)


if __name__ == "__main__":
    sys.exit(main())
