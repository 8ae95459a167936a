"""Training worker process: runs an ml.training.trainer.Trainer and speaks JSON lines on stdout.

Started by the GUI as ``python -m app.workers.train ...`` (or ``b2p worker ...`` when frozen). Every
line on stdout is one training event of :mod:`ml.training.events` as
:func:`ml.training.events.to_json` writes it (``setup``, ``cache_progress``, ``step``,
``validation``, ``checkpoint``, then ``done`` or ``stopped``, or ``error``; ``note`` says something
went wrong that does not stop training); the GUI reads them back with ``from_json``. It stops
cleanly, saving its state for resume, when it reads ``stop`` on stdin or receives SIGTERM; with
``--parent-watch`` the end of stdin (the parent died) stops it too. ``--nice`` and ``--threads``
keep it from starving the GUI on a small machine (the GUI passes them). Exit code 0 after
``done`` or ``stopped``, 1 after ``error``, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import traceback
from pathlib import Path
from typing import IO

from ml.training.events import Error, Note, TrainEvent, to_json


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="b2p worker", description=__doc__.splitlines()[0])
    p.add_argument("project", help="project folder")
    p.add_argument("--out", required=True, help="model folder to write")
    p.add_argument("--student", default="{}", help="JSON of StudentConfig fields")
    p.add_argument("--train", default="{}", help="JSON of TrainConfig fields")
    p.add_argument("--mask-source", default="teacher", help="teacher | reviewed | ...")
    p.add_argument("--resume", action="store_true", help="continue OUT/last")
    p.add_argument("--from", dest="init_from", default=None, help="fine-tune from this model")
    p.add_argument("--parent-watch", action="store_true", help="stop when stdin closes")
    p.add_argument("--nice", type=int, default=0,
                   help="lower this process's CPU priority by N (the GUI starts it with 10)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU threads for torch (0: torch's default, one per core)")
    return p


def be_nice(increment: int) -> str | None:
    """Lower our CPU priority so the GUI that started us gets the CPU first when it needs it.

    Returns None when done, else why it could not be done (the caller reports it).
    """
    if increment <= 0:
        return None
    try:
        if hasattr(os, "nice"):
            os.nice(increment)
        else:  # Windows has no os.nice; psutil is a dependency there
            import psutil

            psutil.Process().nice(psutil.BELOW_NORMAL_PRIORITY_CLASS)
    except Exception as e:  # reported by the caller; priority is a courtesy, not a reason to fail
        return (f"could not lower the worker's CPU priority ({type(e).__name__}: {e}); "
                "training runs at normal priority")
    return None


def limit_threads(n: int) -> None:
    """Cap torch's (and OpenMP's) CPU threads at ``n``; call before torch is imported."""
    if n > 0:
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(n)


class Emitter:
    """Writes one training event per line to the protocol stream, thread-safely."""

    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream
        self.sent_error = False
        self._lock = threading.Lock()

    def __call__(self, event: TrainEvent) -> None:
        line = json.dumps(to_json(event))
        with self._lock:
            self.stream.write(line + "\n")
            self.stream.flush()
            self.sent_error |= isinstance(event, Error)


def _watch_stdin(stop: threading.Event, stop_on_eof: bool) -> None:
    try:
        for line in sys.stdin:
            if line.strip().lower() == "stop":
                stop.set()
                return
    except (OSError, ValueError):
        pass
    if stop_on_eof:
        stop.set()


def run(args: argparse.Namespace, emit: Emitter, stop: threading.Event) -> int:
    from ml.project.store import Project
    from ml.student.config import StudentConfig, TrainConfig

    student = StudentConfig.from_dict(json.loads(args.student))
    cfg = TrainConfig.from_dict(json.loads(args.train))
    project = Project.open(args.project)  # bad input fails here, before torch loads
    from ml.training.trainer import Trainer
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    trainer = Trainer(project, Path(args.out), student, cfg, mask_source=args.mask_source,
                      resume=args.resume,
                      init_from=Path(args.init_from) if args.init_from else None,
                      should_stop=stop.is_set)
    for event in trainer.fit():
        emit(event)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The protocol owns stdout; anything else printed (libraries, warnings) goes to stderr.
    emit = Emitter(sys.stdout)
    sys.stdout = sys.stderr
    nice_failed = be_nice(args.nice)
    if nice_failed:
        print(f"warning: {nice_failed}", file=sys.stderr)
        emit(Note(nice_failed))
    limit_threads(args.threads)
    stop = threading.Event()
    try:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    except ValueError:  # not the main thread (tests calling main directly)
        pass
    threading.Thread(target=_watch_stdin, args=(stop, args.parent_watch), daemon=True).start()
    try:
        return run(args, emit, stop)
    except Exception as e:
        details = traceback.format_exc()
        print(details, file=sys.stderr)
        if not emit.sent_error:  # fit() sends its own Error before it raises
            emit(Error.from_exception(e, details))
        return 1
    finally:
        sys.stdout = emit.stream


if __name__ == "__main__":
    sys.exit(main())
