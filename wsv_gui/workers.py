"""What the three tabs' training workers share: the trainer is built inside the worker's thread (it opens its
own store connection there), its plain-data records are passed on as signals, stop is checked between records
(so the window never waits longer than one record), what was learnt is kept when training ends however it ends,
and ``stopped`` always fires last with where it was saved ("" if nowhere), so the tab can tidy up.

A subclass says how to build its trainer (``create``), what to do between records (``before_record``,
``after_record``) and how to keep the result (``finish``); which exceptions are the user's to read
(``user_errors``) rather than bugs to report with a traceback.
"""
from __future__ import annotations

import threading
import traceback

from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import UserError


class TrainerWorker(QObject):
    progress = Signal(object)  # the trainer's plain-data record
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
        """A trainer with ``run()`` (a generator of records), ``close()`` optional."""
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

    def __init__(self, worker: TrainerWorker, parent=None) -> None:
        super().__init__(parent)
        self.worker = worker
        worker.moveToThread(self)
        self.started.connect(worker.run)
        worker.stopped.connect(lambda _: self.quit())
