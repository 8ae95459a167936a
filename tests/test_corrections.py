"""The corrections map (student vs pseudo-mask) and folding it back into the pseudo-mask."""

from __future__ import annotations

import numpy as np
import pytest

from ml.evaluation.corrections import (
    AGREE,
    NAMES,
    RECLASSIFIED,
    RECOVERED,
    REJECTED,
    corrections,
    fold_corrections,
)


def test_corrections_codes():
    teacher = np.array([[0, 1, 2, 0, 1]], np.uint8)
    student = np.array([[0, 1, 1, 2, 0]], np.uint8)
    assert corrections(student, teacher).tolist() == [[AGREE, AGREE, RECLASSIFIED, RECOVERED,
                                                       REJECTED]]
    with pytest.raises(ValueError):
        corrections(student, teacher.T)


def test_fold_corrections_follows_the_codes():
    teacher = np.array([[1, 1, 0, 2]], np.uint8)
    student = np.array([[2, 0, 1, 1]], np.uint8)
    corr = np.array([[3, 2, 1, 0]], np.uint8)  # reclassified, rejected, recovered, agree
    assert fold_corrections(teacher, student, corr).tolist() == [[2, 0, 1, 2]]
    assert fold_corrections(None, student, corr).tolist() == [[2, 0, 1, 0]]
    with pytest.raises(ValueError):
        fold_corrections(teacher, student, corr[:, :2])


def test_folding_every_correction_gives_the_student_mask():
    rng = np.random.default_rng(0)
    teacher = rng.integers(0, 3, (16, 16), dtype=np.uint8)
    student = rng.integers(0, 3, (16, 16), dtype=np.uint8)
    corr = corrections(student, teacher)
    assert set(np.unique(corr)) <= {AGREE, *NAMES}
    np.testing.assert_array_equal(fold_corrections(teacher, student, corr), student)
