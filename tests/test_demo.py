"""`make demo`'s job (app.demo) end to end on a few tiny synthetic photos."""

from __future__ import annotations

import json

import pytest

from app import demo


def test_demo_scores_teacher_and_student_on_photos_the_student_never_saw(tmp_path, capsys):
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out), "--n", "4", "--size", "96", "--epochs", "1",
                      "--input-size", "28", "--backbone-weights", "none", "--teacher", "ridge",
                      "--crop", "0", "--seed", "5", "--test", "2"]) == 0
    summary = json.loads((out / "demo_metrics.json").read_text())
    assert summary["held_out"] == ["synth_0004.jpg", "synth_0005.jpg"]  # the generator's next 2
    trained = set(summary["trained_on"])
    assert trained and trained <= {f"synth_000{i}.jpg" for i in range(4)}
    assert summary["seed"] == 5 and summary["crop"] == 0 and summary["epochs_run"] == 1
    for row in ("teacher", "student", "student_box_free"):
        assert 0.0 <= summary[row]["binary_iou"] <= 1.0
    free = summary["student_box_free"]  # the held-out photos without boxes, by region too
    assert free["true_regions"] > 0 and free["region_recall"] == free["region_recall"]
    gain = summary["student_minus_teacher"]  # paired over the same 2 photos, with its interval
    assert gain["photos"] == 2 and gain["low"] <= gain["diff"] <= gain["high"]
    assert gain["diff"] == pytest.approx(summary["student"]["binary_iou"]
                                         - summary["teacher"]["binary_iou"])
    assert json.loads((out / "data" / "dataset.json").read_text())["source"].endswith("seed 5)")
    printed = capsys.readouterr().out
    assert "teacher (ridge)" in printed and "student (Boxes2Pixels)" in printed
    assert "student, no boxes" in printed and "regions found" in printed
    assert "student - teacher: " in printed and "bootstrap interval over 2 photos" in printed
    assert (out / "demo_panel.png").stat().st_size > 1000 and "demo_panel.png" in printed


def test_demo_plans_its_training_for_the_budget_as_b2p_train_does(tmp_path, monkeypatch, capsys):
    from ml.training import budget
    from ml.training.step_cost import StepCost

    measured = []  # a step that takes 100 s: the 5-minute budget plans a couple of epochs
    monkeypatch.setattr(budget, "measured_costs", lambda *a, **k: (
        lambda c: (measured.append(c), StepCost(1.0, 100.0, 10.0))[1]))
    out = tmp_path / "demo"
    assert demo.main(["--out", str(out), "--n", "4", "--size", "96", "--budget", "5m",
                      "--input-size", "28", "--backbone-weights", "none", "--teacher", "ridge",
                      "--crop", "0", "--seed", "5", "--test", "2"]) == 0
    summary = json.loads((out / "demo_metrics.json").read_text())
    plan = summary["budget_plan"]
    assert measured and {(c.input_size, c.crop) for c in measured} == {(28, 0)}  # kept as given
    assert plan["budget_s"] == 300 and 1 <= plan["epochs"] <= 3
    assert summary["epochs_run"] == plan["epochs"] and summary["input_size"] == 28
    printed = capsys.readouterr().out
    assert "measuring a training step for the 5 min budget" in printed and "why:" in printed
    assert "for the 5 min budget; " in printed and summary["train_seconds"] > 0


def test_a_budget_too_short_for_one_epoch_is_one_line(tmp_path, monkeypatch, capsys):
    from ml.training import budget
    from ml.training.step_cost import StepCost

    monkeypatch.setattr(budget, "measured_costs",
                        lambda *a, **k: lambda c: StepCost(1.0, 100.0, 10.0))
    assert demo.main(["--out", str(tmp_path / "demo"), "--n", "4", "--size", "96", "--budget",
                      "30s", "--input-size", "28", "--backbone-weights", "none", "--teacher",
                      "ridge", "--crop", "0", "--test", "2"]) == 1
    err = capsys.readouterr().err  # the progress bars write there too
    last = err.strip().splitlines()[-1]
    assert last.startswith("demo: ") and "30 s" in last and "Traceback" not in err


def test_test_zero_holds_out_every_fourth_photo_as_rounds_1_to_11_did():
    keys = [f"synth_{i:04d}.jpg" for i in range(8)]
    assert demo._held_out(keys, 0) == ["synth_0000.jpg", "synth_0004.jpg"]
    assert demo._held_out(keys, 3) == keys[-3:]


@pytest.mark.parametrize(("args", "message"), [
    (["--test", "-1"], "--test must be 0 or more"), (["--n", "0"], "--n must be at least 1"),
    (["--budget", "5m", "--epochs", "3"], "give --budget or --epochs, not both"),
    (["--budget", "soon"], "--budget: budget 'soon' is not a duration")])
def test_bad_arguments_are_refused_with_their_reason(args, message, capsys):
    with pytest.raises(SystemExit):
        demo.main(args)
    assert message in capsys.readouterr().err
