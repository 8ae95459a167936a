"""`make demo`'s job (app.demo) end to end on a few tiny synthetic photos."""

from __future__ import annotations

import json

from app import demo


def test_demo_scores_teacher_and_student_on_photos_the_student_never_saw(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out), "--n", "4", "--size", "96", "--epochs", "1",
                      "--input-size", "28", "--backbone-weights", "none", "--teacher", "ridge",
                      "--crop", "0", "--seed", "5"]) == 0
    summary = json.loads((out / "demo_metrics.json").read_text())
    assert summary["held_out"] == ["synth_0000.jpg"]  # every fourth photo
    assert summary["seed"] == 5 and summary["crop"] == 0 and summary["epochs_run"] == 1
    for row in ("teacher", "student"):
        assert 0.0 <= summary[row]["binary_iou"] <= 1.0
    assert json.loads((out / "data" / "dataset.json").read_text())["source"].endswith("seed 5)")
    printed = capsys.readouterr().out
    assert "teacher (ridge)" in printed and "student (Boxes2Pixels)" in printed
