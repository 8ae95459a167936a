"""The Qt binding itself: PySide6 6.12.0 on Python 3.11 corrupts None's reference count."""

from __future__ import annotations

import sys

import pytest

pytestmark = pytest.mark.gui


def test_qt_calls_that_return_nothing_leave_none_alive():
    # PySide6 6.12.0 drops a reference to None on every call that returns nothing; on Python
    # 3.11 (None is not immortal before 3.12) a GUI that makes enough such calls (a plot repaint
    # makes one per point) aborts with "Fatal Python error: none_dealloc". pyproject excludes
    # 6.12.0; an environment that has it needs: pip install "pyside6!=6.12.0"
    from qtpy.QtCore import QObject, QPointF

    point, obj = QPointF(0, 0), QObject()
    before = sys.getrefcount(None)
    for _ in range(500):
        point.setX(1.0)
        obj.setObjectName("x")
    assert sys.getrefcount(None) >= before - 50, "this Qt binding leaks None: see the comment"
