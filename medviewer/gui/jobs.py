"""Long work off the GUI thread: a worker object moved to a QThread, talking to widgets only through signals.

A job is a plain function of a `JobContext` (progress, cancellation, intermediate results), so the work
itself stays in the Qt-free core and the same function runs in tests without a thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from medviewer.errors import MedViewerError, OperationCancelled, one_line

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.05  # at most 20 progress signals a second: the event loop stays free for the user


class JobContext:
    """What a job function gets: report progress, ask whether to stop, hand over partial results."""

    def __init__(self, worker: JobWorker):
        self._worker = worker
        self._cancel = threading.Event()
        self._last_progress = 0.0

    def progress(self, fraction: float) -> None:
        now = time.monotonic()
        if fraction >= 1.0 or now - self._last_progress >= PROGRESS_INTERVAL_S:
            self._last_progress = now
            self._worker.progressed.emit(float(min(max(fraction, 0.0), 1.0)))

    def should_cancel(self) -> bool:
        return self._cancel.is_set()

    def publish(self, item: Any) -> None:
        """A partial result the GUI can show at once (the first decoded slice, a thumbnail)."""
        self._worker.published.emit(item)

    def cancel(self) -> None:
        self._cancel.set()


class JobWorker(QObject):
    """Runs `function(context)` once in its thread; exactly one of succeeded/failed/cancelled, then finished."""

    progressed = Signal(float)
    published = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, function: Callable[[JobContext], Any]):
        super().__init__()
        self._function = function
        self.context = JobContext(self)

    @Slot()
    def run(self) -> None:
        try:
            result = self._function(self.context)
        except OperationCancelled:
            self.cancelled.emit()
        except MedViewerError as error:
            self.failed.emit(one_line(str(error)))
        except MemoryError:
            self.failed.emit("not enough memory for this job; try one slice, or a smaller image")
        except Exception as error:  # a bug: keep the traceback in the log, tell the user in one line
            log.exception("background job failed")
            self.failed.emit(one_line(f"unexpected error: {type(error).__name__}: {error}"))
        else:
            if self.context.should_cancel():
                self.cancelled.emit()
            else:
                self.succeeded.emit(result)
        finally:
            self.finished.emit()


class BackgroundJob(QObject):
    """One job on its own QThread. Keep a reference until `finished`; `cancel()` is safe from the GUI thread.

    Connect to the job's signals, not the worker's: the job lives in the GUI thread, so its signals are
    relayed through the event loop and a lambda connected to them runs in the GUI thread. (A lambda
    connected to the worker's signals would run in the worker's thread and must not touch widgets.)"""

    progressed = Signal(float)
    published = Signal(object)
    succeeded = Signal(object)
    failed = Signal(str)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, function: Callable[[JobContext], Any], name: str = "job", parent: QObject | None = None):
        super().__init__(parent)
        self.name = name
        self.worker = JobWorker(function)
        self.thread = QThread()
        self.thread.setObjectName(f"medviewer-{name}")
        self.worker.moveToThread(self.thread)
        for name in ("progressed", "published", "succeeded", "failed", "cancelled"):
            getattr(self.worker, name).connect(getattr(self, name))  # queued: the receiver is in this thread
        self.thread.started.connect(self.worker.run)
        # Direct: QThread.quit is thread-safe, and a queued quit would wait for the GUI thread, which may be
        # blocked in wait() (closing the window while a job runs).
        self.worker.finished.connect(self.thread.quit, Qt.ConnectionType.DirectConnection)
        self.thread.finished.connect(self._on_thread_finished)
        self._running = False

    def start(self) -> None:
        self._running = True
        self.thread.start()

    def cancel(self) -> None:
        self.worker.context.cancel()

    @property
    def running(self) -> bool:
        return self._running

    def wait(self, milliseconds: int = 30000) -> bool:
        return self.thread.wait(milliseconds)

    def _on_thread_finished(self) -> None:
        self._running = False
        self.finished.emit()
