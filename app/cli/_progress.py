"""tqdm bars and Ctrl-C for the library's progress callbacks."""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from ml.common.progress import Progress, ProgressFn
from ml.training.events import CacheProgress, Note, Setup, Step, TrainEvent, Validation

LOG_INTERVAL_S = 20.0  # not a terminal (a log file, CI): a bar's line at most this often


def _pace() -> dict:
    """tqdm's rate limits: one updating line on a terminal, a few lines a minute in a log.

    Updates go through ``update()``, which keeps to them; ``refresh()`` would draw every event
    (20,000 photos imported were 20,000 lines in a log).
    """
    try:
        tty = sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        tty = False
    return {} if tty else {"mininterval": LOG_INTERVAL_S, "maxinterval": LOG_INTERVAL_S}


@contextmanager
def tqdm_progress(desc: str, unit: str = "img") -> Iterator[ProgressFn]:
    """A progress callback drawing a tqdm bar; the total is taken from the first event."""
    from tqdm import tqdm

    bar: list[tqdm] = []

    def update(p: Progress) -> None:
        if not bar:
            bar.append(tqdm(total=p.total, desc=desc, unit=unit, dynamic_ncols=True, **_pace()))
        b = bar[0]
        if b.total != p.total:
            b.total = p.total
        post = {k: (f"{v:.4g}" if isinstance(v, float) else v) for k, v in p.extra.items()
                if isinstance(v, (int, float, str))}
        if p.message:
            post["msg"] = p.message[:40]
        b.set_postfix(post, refresh=False)
        b.update(p.done - b.n)  # drawn when tqdm's rate limit allows, not on every event

    try:
        yield update
    finally:
        if bar:
            bar[0].close()


@contextmanager
def stop_on_ctrl_c(after: str) -> Iterator[list[bool]]:
    """First Ctrl-C sets ``flag[0]`` (finish ``after``, then stop); a second one aborts."""
    flag = [False]

    def handler(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
        if flag[0]:
            raise KeyboardInterrupt
        flag[0] = True
        print(f"\nstopping after {after} (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    try:
        previous = signal.signal(signal.SIGINT, handler)
    except ValueError:  # not the main thread (tests, embedding): plain KeyboardInterrupt applies
        yield flag
        return
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)


class TrainBars:
    """Training events as tqdm bars (cache, then training steps) and a setup line."""

    def __init__(self) -> None:
        self.name = ""
        self.bar = None  # one bar at a time: the cache bar ends when training starts
        self.val: float | None = None

    def __call__(self, ev: TrainEvent) -> None:
        match ev:
            case Setup():
                self.close()  # a later round starts its own bars
                val = ("validating on the training images (fewer than 5 labelled)"
                       if ev.val_on_train else f"{ev.val_images} for validation")
                start = f"; resuming at epoch {ev.start_epoch + 1}" if ev.start_step else ""
                _write(f"trainable {ev.trainable_params:,} / total {ev.total_params:,} params; "
                       f"{ev.train_images} training images, {val}{start}")
            case CacheProgress():
                self._show("cache", "view", ev.done, ev.total, {})
            case Step():
                post = {"epoch": ev.epoch, "loss": f"{ev.loss:.4f}"}
                if self.val is not None:
                    post["val_aMIoU"] = f"{self.val:.3f}"
                if ev.eta_s is not None:  # this session's pace, validation included
                    post["eta"] = _clock(ev.eta_s)
                # a resumed run starts past step 0: only this session's steps set tqdm's rate
                self._show("train", "step", ev.step, ev.total_steps, post, initial=ev.step - 1)
            case Validation():
                self.val = ev.val_anomaly_miou
            case Note():
                _write(f"note: {ev.message}")
            case _:
                pass

    def _show(self, name: str, unit: str, done: int, total: int, post: dict,
              initial: int = 0) -> None:
        from tqdm import tqdm

        if name != self.name:
            self.close()
            self.name, self.bar = name, tqdm(total=total, desc=name, unit=unit,
                                             dynamic_ncols=True, initial=max(initial, 0),
                                             **_pace())
        self.bar.total = total
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _clock(seconds: float) -> str:
    s = int(round(max(seconds, 0)))
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}"


def _write(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line)
