"""bench/compare_eval.py: two `b2p eval` files of the same photos, and whether their difference
is more than the photos that were scored."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from ml.evaluation.metrics import score_masks

ROOT = Path(__file__).resolve().parents[1]


def test_per_photo_counts_add_up_to_the_pooled_binary_iou(tmp_path):
    from ml.common.images import save_label

    rng = np.random.default_rng(0)
    gts, preds = {}, {}
    for i in range(5):
        gts[f"p{i}"] = (rng.random((20, 30)) > 0.7).astype(np.uint8) * (1 + i % 2)
        preds[f"p{i}"] = (rng.random((20, 30)) > 0.6).astype(np.uint8) * (2 - i % 2)
        save_label(tmp_path / f"p{i}.png", gts[f"p{i}"])
    r = score_masks(list(gts), tmp_path, preds.get, ["background", "dirt", "damage"])
    inter = sum(v[0] for v in r.per_photo.values())
    union = sum(v[1] for v in r.per_photo.values())
    assert set(r.per_photo) == set(gts)
    assert inter / union == pytest.approx(r.scores["binary_iou"])  # class mix-ups overlap
    a, b = gts["p0"] > 0, preds["p0"] > 0
    assert r.per_photo["p0"] == ((a & b).sum(), (a | b).sum())


def _eval_file(path: Path, per_photo: dict | None) -> Path:
    path.write_text(json.dumps({"binary_iou": 0.0, **({"per_photo": per_photo}
                                                       if per_photo is not None else {})}))
    return path


def test_compare_prints_the_difference_and_its_interval(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "bench"))
    import compare_eval

    teacher = {f"p{i}": [50, 100] for i in range(12)}
    student = {f"p{i}": [60, 100] for i in range(12)}
    before = _eval_file(tmp_path / "teacher.json", teacher)
    after = _eval_file(tmp_path / "student.json", student)
    assert compare_eval.main([str(before), str(after), "--label", "student - its teacher"]) == 0
    assert capsys.readouterr().out.strip() == (
        "student - its teacher: +10.0 (+10.0 to +10.0) binary IoU points "
        "(95 % bootstrap interval over 12 photos)")
    student["p0"] = [0, 400]  # one photo lost badly: the gain is no longer sure
    assert compare_eval.main([str(before), str(_eval_file(after, student))]) == 0
    assert capsys.readouterr().out.rstrip().endswith("over 12 photos, which holds 0)")
    with pytest.raises(SystemExit, match="no per-photo counts"):
        compare_eval.main([str(_eval_file(tmp_path / "old.json", None)), str(after)])
