"""Background jobs: run an ml function off the GUI thread, its progress turned into Qt signals.

A job wraps a callable taking ``progress`` and ``should_stop`` keyword arguments (the library's
convention). Signals are emitted from the worker thread and delivered queued on the GUI thread.
"""

from __future__ import annotations

import threading
import traceback
from collections.abc import Callable
from typing import Any

from qtpy.QtCore import QObject, Signal

from ml.common.atomic import explain_os_error
from ml.common.batch import BatchResult
from ml.common.progress import Cancelled, Progress


class Job(QObject):
    """One run of ``fn(*args, progress=..., should_stop=..., **kwargs)`` in a thread."""

    progress = Signal(object)  # ml.common.progress.Progress
    item_error = Signal(str)  # a per-image failure reported without stopping the batch
    succeeded = Signal(object)  # fn's return value
    failed = Signal(str)  # one-line error of the whole job
    finished = Signal()  # always last, after succeeded / failed

    def __init__(self, name: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        super().__init__()
        self.name = name
        self._fn, self._args, self._kwargs = fn, args, kwargs
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.result: Any = None
        self.error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"b2p-{self.name}", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._stop.set()

    def abandon(self) -> None:
        """Cancel and drop whatever it would still say (its panel is closing or moving on)."""
        self.cancel()
        self.succeeded.disconnect()
        self.failed.disconnect()

    @property
    def cancelled(self) -> bool:
        return self._stop.is_set()

    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the thread ends (tests, shutdown); True if it ended."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.is_running()

    def _on_progress(self, p: Progress) -> None:
        err = p.extra.get("error") if isinstance(p.extra, dict) else None
        if err:
            self.item_error.emit(f"{p.message}: {err}" if p.message else str(err))
        self.progress.emit(p)

    def _run(self) -> None:
        try:
            self.result = self._fn(*self._args, progress=self._on_progress,
                                   should_stop=self._stop.is_set, **self._kwargs)
        except Cancelled:
            self.result = None
            self.succeeded.emit(None)
        except Exception as e:  # reported in the panel, never raised into Qt
            if isinstance(e, OSError):  # a full disk, a read-only folder: said in words
                self.error = explain_os_error(e)
            else:
                self.error = f"{e.__class__.__name__}: {e}" if not str(e) else str(e)
            traceback.print_exc()
            self.failed.emit(self.error)
        else:
            for msg in _summary_errors(self.result):
                self.item_error.emit(msg)
            self.succeeded.emit(self.result)
        finally:
            self.finished.emit()


def _summary_errors(result: Any) -> list[str]:
    """Per-image failures of a batch job's :class:`ml.common.batch.BatchResult` (none otherwise)."""
    return result.problems() if isinstance(result, BatchResult) else []
