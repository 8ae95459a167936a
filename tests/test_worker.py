"""The training worker process: lowering its priority, and saying so when it cannot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from app.workers import train as worker

REPO = Path(__file__).resolve().parents[1]


def _refuse(_n: int) -> int:
    raise OSError(1, "Operation not permitted")


def test_be_nice_lowers_the_priority_by_the_increment(monkeypatch):
    calls = []
    monkeypatch.setattr(os, "nice", lambda n: calls.append(n) or n, raising=False)
    assert worker.be_nice(10) is None
    assert worker.be_nice(0) is None
    assert calls == [10]


def test_be_nice_says_why_when_the_priority_stays(monkeypatch):
    monkeypatch.setattr(os, "nice", _refuse, raising=False)
    why = worker.be_nice(10)
    assert why is not None and "normal priority" in why and "Operation not permitted" in why


@pytest.mark.skipif(sys.platform == "win32", reason="os.nice is POSIX")
def test_worker_reports_a_failed_nice_as_a_note_event(tmp_path):
    code = ("import os, sys\n"
            "def refuse(n): raise OSError(1, 'Operation not permitted')\n"
            "os.nice = refuse\n"
            "from app.workers.train import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path / "none"), "--out",
                           str(tmp_path / "m"), "--nice", "10"], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL, env=env)
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events] == ["note", "error"]
    assert "normal priority" in events[0]["message"]
    assert "warning: could not lower" in proc.stderr


def test_psutil_is_declared_where_the_worker_needs_it():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.replace(" ", "").startswith("psutil>=") and "win32" in d for d in deps)
