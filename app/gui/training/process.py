"""Supervises the training worker process: start, JSON-lines events, stop, crash reports."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from qtpy.QtCore import QObject, QProcess, QProcessEnvironment, QTimer, Signal

from app.gui import _constants as C
from ml.training.events import Done, Error, Stopped, TrainEvent, from_json

# the hidden ``b2p`` subcommand that runs each of app/workers/ in the frozen app (app/cli/_gui.py)
FROZEN_WORKERS = {"train": "worker", "plan": "plan-worker"}


def worker_command(args: list[str], worker: str = "train") -> list[str]:
    """argv of ``app.workers.<worker>``: ``python -m app.workers.train`` or, frozen,
    ``<app> worker`` (``<app> plan-worker`` for the planner)."""
    if getattr(sys, "frozen", False):
        return [sys.executable, FROZEN_WORKERS[worker], *args]
    return [sys.executable, "-m", f"app.workers.{worker}", *args]


def worker_environment() -> QProcessEnvironment:
    """The GUI's environment, unbuffered, with this checkout first on the path (a worker finds
    the ``app`` and ``ml`` the GUI runs, wherever it was started from)."""
    env = QProcessEnvironment.systemEnvironment()
    env.insert("PYTHONUNBUFFERED", "1")
    if not getattr(sys, "frozen", False):
        root = str(Path(__file__).resolve().parents[3])
        old = env.value("PYTHONPATH", "")
        env.insert("PYTHONPATH", root + (os.pathsep + old if old else ""))
    return env


def worker_threads() -> int:
    """torch threads for a CPU run: one core fewer than the machine has, so the GUI keeps one.

    On two or three cores that would cost a third to half of the training speed; there the
    worker keeps every core and its lower priority (WORKER_NICE) alone leaves the GUI the CPU
    when it needs it.
    """
    n = os.cpu_count() or 2
    return n - 1 if n >= 4 else n


class TrainProcess(QObject):
    """One worker at a time. ``finished_ok`` after ``Done``/``Stopped``, ``crashed`` otherwise.

    Signals carry the typed events of :mod:`ml.training.events`, read back from the worker's
    JSON lines.
    """

    started = Signal()
    event = Signal(object)  # every training event
    progress = Signal(object)  # the events before the end: Setup, CacheProgress, Step, ...
    finished_ok = Signal(object)  # Done or Stopped; None when a stop had to kill the worker
    crashed = Signal(str)  # one message with the worker's last stderr lines

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.proc: QProcess | None = None
        self._buf = b""
        self._stderr = ""
        self._done: Done | Stopped | None = None
        self._error: str | None = None
        self._stop_timer = QTimer(self)
        self._stop_timer.setSingleShot(True)
        self._stop_timer.timeout.connect(self._escalate)
        self._stop_stage = 0

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.state() != QProcess.ProcessState.NotRunning

    def start(self, args: list[str]) -> None:
        if self.is_running():
            raise RuntimeError("a training run is already going")
        cmd = worker_command([*args, "--parent-watch", "--nice", str(C.WORKER_NICE),
                              "--threads", str(worker_threads())])
        self._buf, self._stderr, self._done, self._error = b"", "", None, None
        self._stop_stage = 0
        proc = QProcess(self)
        proc.setProcessEnvironment(worker_environment())
        proc.readyReadStandardOutput.connect(self._read_stdout)
        proc.readyReadStandardError.connect(self._read_stderr)
        proc.finished.connect(self._on_finished)
        proc.errorOccurred.connect(self._on_error)
        self.proc = proc
        proc.start(cmd[0], cmd[1:])
        self.started.emit()

    def stop(self) -> None:
        """Ask politely ("stop" on stdin); terminate, then kill, if it does not end in time."""
        if not self.is_running():
            return
        self.proc.write(b"stop\n")
        self._stop_stage = 1
        self._stop_timer.start(C.STOP_GRACE_MS)

    def _escalate(self) -> None:
        if not self.is_running():
            return
        if self._stop_stage == 1:
            self.proc.terminate()
            self._stop_stage = 2
            self._stop_timer.start(C.KILL_GRACE_MS)
        else:
            self.proc.kill()

    def wait(self, msecs: int) -> bool:
        """Block until the worker ends (shutdown, tests); True if it did."""
        if self.proc is None:
            return True
        return self.proc.waitForFinished(msecs) or not self.is_running()

    def _read_stdout(self) -> None:
        self._buf += bytes(self.proc.readAllStandardOutput())
        *lines, self._buf = self._buf.split(b"\n")
        for raw in lines:
            if not raw.strip():
                continue
            try:
                ev = from_json(json.loads(raw))
            except ValueError:  # not one of our events: keep it with the worker's output
                self._stderr = (self._stderr + raw.decode(errors="replace") + "\n")
                continue
            self._dispatch(ev)

    def _dispatch(self, ev: TrainEvent) -> None:
        self.event.emit(ev)
        match ev:
            case Done() | Stopped():
                self._done = ev
            case Error():
                self._error = ev.message
            case _:
                self.progress.emit(ev)

    def _read_stderr(self) -> None:
        self._stderr += bytes(self.proc.readAllStandardError()).decode(errors="replace")
        self._stderr = self._stderr[-8 * C.STDERR_TAIL_CHARS:]

    def stderr_tail(self) -> str:
        return self._stderr[-C.STDERR_TAIL_CHARS:].strip()

    def _on_error(self, err) -> None:
        if err == QProcess.ProcessError.FailedToStart:
            self.crashed.emit(f"training worker failed to start: {self.proc.errorString()}")

    def _on_finished(self, code: int, status) -> None:
        self._stop_timer.stop()
        self._read_stdout()
        self._read_stderr()
        if self._done is not None and code == 0:
            self.finished_ok.emit(self._done)
            return
        if self._stop_stage and self._error is None:
            self.finished_ok.emit(None)
            return
        why = self._error or (f"exit code {code}" if status == QProcess.ExitStatus.NormalExit
                              else "the process crashed")
        tail = self.stderr_tail()
        self.crashed.emit(f"training failed: {why}" + (f"\n{tail}" if tail else ""))
