"""Box panels (ml.evaluation.panel): a seeded sample of boxes, photo | teacher | student."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ml.evaluation import panel as P


def _photo() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    img = np.full((120, 160, 3), 200, np.uint8)
    img[40:80, 60:62] = 30  # a 2 px streak
    teacher = np.zeros((120, 160), bool)
    teacher[40:80, 60:62] = True
    student = np.zeros((120, 160), bool)
    student[40:80, 55:70] = True  # filled round it
    return img, teacher, student


def test_the_sample_is_fixed_by_its_seed_and_keeps_the_sets_order():
    refs = [P.BoxRef("k", i, (i, 0, i + 5, 5)) for i in range(30)]
    a, b = P.sample_boxes(refs, 8, seed=3), P.sample_boxes(refs, 8, seed=3)
    assert a == b and len(a) == 8 and [r.index for r in a] == sorted(r.index for r in a)
    assert P.sample_boxes(refs, 8, seed=4) != a
    assert P.sample_boxes(refs[:5], 8) == refs[:5]


def test_the_window_holds_the_box_and_stays_inside_the_photo():
    assert P.window((60, 40, 62, 80), (120, 160)) == (1, 0, 121, 120)  # 3 x 40, inside
    x0, y0, x1, y1 = P.window((150, 110, 158, 118), (120, 160))  # near a corner
    assert (x1, y1) == (160, 120) and x1 - x0 == y1 - y0 == P.MIN_WINDOW


def test_a_panel_row_shows_the_photo_then_each_mask_over_it(tmp_path):
    img, teacher, student = _photo()
    row = P.render_row(img, (56, 38, 66, 82), [teacher, student], cell=96)
    assert row.shape == (96, 3 * 96, 3)
    cells = [row[:, i * 96:(i + 1) * 96].astype(int) for i in range(3)]
    tinted = [int((np.abs(c - cells[0]).sum(axis=2) > 30).sum()) for c in cells]
    assert tinted[0] == 0 and 0 < tinted[1] < tinted[2]  # the student filled more than its teacher
    out = P.write_panel(tmp_path / "p.png", [P.BoxRef("a", 0, (56, 38, 66, 82), "ridge")] * 2,
                        lambda k: (img, [teacher, student]), ("photo", "teacher", "student"),
                        cell=96)
    back = cv2.imread(str(out))
    assert back.shape == (P.HEADER + 2 * 96, 3 * 96, 3)
    with pytest.raises(ValueError, match="no boxes"):
        P.write_panel(tmp_path / "q.png", [], lambda k: (img, []), ("photo",))
