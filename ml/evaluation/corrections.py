"""The corrections map: where the student disagrees with the pseudo-mask, and folding it back.

Codes per pixel: 0 agree, 1 recovered (student finds a defect the pseudo-mask lacks), 2 rejected
(the pseudo-mask's defect the student drops), 3 reclassified (both see a defect, classes differ).
"""

from __future__ import annotations

import numpy as np

AGREE, RECOVERED, REJECTED, RECLASSIFIED = 0, 1, 2, 3
NAMES = {RECOVERED: "recovered", REJECTED: "rejected", RECLASSIFIED: "reclassified"}


def corrections(student: np.ndarray, teacher: np.ndarray) -> np.ndarray:
    """uint8 map: 0 agree, 1 recovered, 2 rejected, 3 reclassified (student vs teacher)."""
    if student.shape != teacher.shape:
        raise ValueError(f"student {student.shape} and teacher {teacher.shape} masks differ")
    s, t = student > 0, teacher > 0
    out = np.zeros(student.shape, np.uint8)
    out[s & ~t] = RECOVERED
    out[t & ~s] = REJECTED
    out[s & t & (student != teacher)] = RECLASSIFIED
    return out


def fold_corrections(teacher: np.ndarray | None, student: np.ndarray,
                     corrections: np.ndarray) -> np.ndarray:
    """Recovered and reclassified pixels take the student's class; rejected become background."""
    if student.shape != corrections.shape:
        raise ValueError(f"student {student.shape} and corrections {corrections.shape} differ")
    out = np.zeros(student.shape, np.uint8) if teacher is None else teacher.astype(np.uint8)
    out = out.copy()
    take = (corrections == RECOVERED) | (corrections == RECLASSIFIED)
    out[take] = student[take]
    out[corrections == REJECTED] = 0
    return out
