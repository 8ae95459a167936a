"""Printing a batch job's :class:`ml.common.batch.BatchResult` and choosing the exit code.

Every batch command exits 0 when each item was done or skipped for a stated reason, 1 when
some items failed (each is named on its own line; the rest was done and saved) and 130 when
it was stopped early.
"""

from __future__ import annotations

import sys

from ml.common.batch import BatchResult

SHOWN = 50  # lines of each kind printed before "... and N more"
PARTIAL = 1  # exit code: some items failed, the rest was done
STOPPED = 130


def _lines(prefix: str, lines: list[str]) -> None:
    for line in lines[:SHOWN]:
        print(f"{prefix}: {line}")
    if len(lines) > SHOWN:
        print(f"... and {len(lines) - SHOWN} more")


def print_items(result: BatchResult) -> None:
    """Each warning and each failed item, one line each."""
    _lines("warning", list(result.warnings))
    _lines("error", result.problems())


def exit_code(result: BatchResult) -> int:
    """0, :data:`PARTIAL` when items failed, :data:`STOPPED` when stopped early."""
    if result.stopped:
        return STOPPED
    return PARTIAL if result.failed else 0


def report(result: BatchResult, what: str) -> int:
    """Print the items and the one-line summary; say on stderr what failed; return the code."""
    print_items(result)
    print(result.summary())
    if result.failed:
        print(f"{len(result.failed)} image(s) could not be {what} (named above); the rest was "
              f"done", file=sys.stderr)
    return exit_code(result)
