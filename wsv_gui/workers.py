"""The GUI's one pattern for long jobs (training in every tab, exporting masks, decoding thumbnails): an engine
object whose ``run()`` is a generator of plain-data records, driven by a ``Worker`` in its own ``WorkerThread``.
The object is built inside the worker's thread (it opens its own store connection there), its records are passed
on as signals, stop (and pause, where a subclass waits) is checked between records, so the window never waits
longer than one record; what was done is kept however the job ends, and ``stopped`` always fires last with where
the result went (or a summary; "" if nothing), so the tab can tidy up.

A subclass says how to build its object (``create``), what to do between records (``before_record``,
``after_record``) and how to keep the result (``finish``). What the user can fix (engine.errors.UserError) is
reported as its message; anything else is a bug and keeps its traceback.

Short requests answered one at a time (detections on the shown image, loading a generative model, drawing
samples) go to a *service* instead: a QObject moved to its own QThread, whose slots run one request each and
answer with a signal (wsv_gui.detection.worker.DetectorService, wsv_gui.generative.service).
"""
from __future__ import annotations

import threading
import traceback

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import UserError


class Worker(QObject):
    progress = Signal(object)  # the job's plain-data record
    failed = Signal(str)
    stopped = Signal(str)  # where the result was saved ("" if it was not)

    user_errors: tuple[type[Exception], ...] = (UserError,)
    what = "training"
    """the failure message's subject"""

    def __init__(self) -> None:
        super().__init__()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def create(self):
        """The job: an object with ``run()`` (a generator of records), ``close()`` optional."""
        raise NotImplementedError

    def before_record(self, trainer) -> bool:
        """Called before asking for each record; False ends training. Override to wait, e.g. while paused."""
        return not self._stop.is_set()

    def after_record(self, trainer, record) -> None:
        """Called after each record was emitted."""

    def finish(self, trainer) -> str:
        """Keep what was learnt; return the folder it went to, or "" when there is nothing to keep."""
        raise NotImplementedError

    @Slot()
    def run(self) -> None:
        saved = ""
        trainer = None
        try:
            trainer = self.create()
            records = trainer.run()
            try:
                while self.before_record(trainer):
                    try:
                        record = next(records)
                    except StopIteration:
                        break
                    self.progress.emit(record)
                    self.after_record(trainer, record)
            finally:
                records.close()
            saved = self.finish(trainer)
        except self.user_errors as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug must reach the user, not kill the thread silently
            self.failed.emit(f"{self.what} failed: {exc}\n\n{traceback.format_exc(limit=5)}")
        finally:
            close = getattr(trainer, "close", None)
            if close is not None:
                close()
            self.stopped.emit(saved)


class WorkerThread(QThread):
    """Owns one worker object for the life of the thread; the thread ends when the worker says it stopped."""

    def __init__(self, worker: Worker, parent=None) -> None:
        super().__init__(parent)
        self.worker = worker
        worker.moveToThread(self)
        self.started.connect(worker.run)
        worker.stopped.connect(lambda _: self.quit())
