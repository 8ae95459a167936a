"""`make test` on a machine without a display: GUI tests skip with one line, the rest passes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import _display

ROOT = Path(__file__).resolve().parents[1]


def _run_pytest(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def _no_display_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a fresh machine: no DISPLAY, no Xvfb on PATH, not CI."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "CI", "PYTEST_ADDOPTS")}
    empty = tmp_path / "bin"
    empty.mkdir()
    env["PATH"] = str(empty)
    return env


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 displays are Linux's")
def test_gui_tests_skip_with_one_line_without_a_display(tmp_path):
    r = _run_pytest(_no_display_env(tmp_path), "tests/gui/test_plugin.py", "tests/test_layout.py")
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Fatal Python error" not in out
    line = next(ln for ln in out.splitlines() if "GUI tests skipped" in ln)
    assert "no display and no Xvfb" in line
    assert "xvfb" in line and "libxcb-cursor0" in line  # names the packages and the install
    assert " passed" in out and " skipped" in out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11 displays are Linux's")
def test_ci_refuses_to_skip_gui_tests(tmp_path):
    env = _no_display_env(tmp_path) | {"CI": "true"}
    r = _run_pytest(env, "tests/gui/test_plugin.py")
    assert r.returncode != 0
    assert "GUI tests cannot run under CI" in r.stdout + r.stderr


def test_probe_names_a_qt_that_cannot_start(monkeypatch):
    monkeypatch.setenv("DISPLAY", ":999")
    monkeypatch.setenv("QT_QPA_PLATFORM", "no-such-platform")
    reason = _display.unavailable_reason(timeout=60)
    assert reason is not None and reason.startswith("Qt cannot start")


def test_package_list_is_the_one_ci_installs():
    pkgs = _display.gui_packages()
    assert {"xvfb", "xauth", "libxcb-cursor0", "libgl1-mesa-dri"} <= set(pkgs)
    assert ".ci/gui-packages.txt" in (ROOT / ".ci" / "run").read_text()
