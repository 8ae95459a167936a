"""Folding the student's corrections into a pseudo-mask (pure numpy, no Qt)."""

from __future__ import annotations

import numpy as np

from ._constants import CORR_RECLASSIFIED, CORR_RECOVERED, CORR_REJECTED


def fold_corrections(teacher: np.ndarray | None, student: np.ndarray,
                     corrections: np.ndarray) -> np.ndarray:
    """Recovered and reclassified pixels take the student's class; rejected become background."""
    if student.shape != corrections.shape:
        raise ValueError(f"student {student.shape} and corrections {corrections.shape} differ")
    out = np.zeros(student.shape, np.uint8) if teacher is None else teacher.astype(np.uint8)
    out = out.copy()
    take = (corrections == CORR_RECOVERED) | (corrections == CORR_RECLASSIFIED)
    out[take] = student[take]
    out[corrections == CORR_REJECTED] = 0
    return out
