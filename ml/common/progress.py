"""Progress reporting and cooperative cancel for long work.

Library functions take ``progress`` (a callable receiving :class:`Progress`) and
``should_stop`` (a callable returning True when the caller wants the work to end).
The CLI turns them into tqdm bars and Ctrl-C; the GUI into Qt signals.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Progress:
    """One step of long work: ``done`` of ``total`` units, with optional details."""

    done: int
    total: int
    message: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    eta_s: float | None = None


ProgressFn = Callable[[Progress], None]
StopFn = Callable[[], bool]


class Cancelled(Exception):
    """Raised inside long work when ``should_stop()`` became true."""


def never_stop() -> bool:
    return False


def ignore_progress(_: Progress) -> None:
    return None


class Reporter:
    """Helper that counts units, estimates the ETA and forwards to a callback.

    ``done`` starts a resumed run part-way: the ETA then comes from this session's rate only
    (units done since it started over the time since), not from units an earlier run did.
    """

    def __init__(self, total: int, progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None, done: int = 0,
                 clock: Callable[[], float] | None = None) -> None:
        self.total = total
        self.done = done
        self._start = done
        self._progress = progress or ignore_progress
        self._should_stop = should_stop or never_stop
        self._clock = clock or time.monotonic
        self._t0 = self._clock()

    def check(self) -> None:
        """Raise :class:`Cancelled` if the caller asked to stop."""
        if self._should_stop():
            raise Cancelled()

    def stopped(self) -> bool:
        return bool(self._should_stop())

    def step(self, n: int = 1, message: str = "", **extra: Any) -> None:
        self.done += n
        ran = self.done - self._start
        elapsed = self._clock() - self._t0
        eta = elapsed / ran * max(self.total - self.done, 0) if ran > 0 else None
        self._progress(Progress(self.done, self.total, message, dict(extra), eta))
