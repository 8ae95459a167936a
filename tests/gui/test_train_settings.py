"""The Train panel's settings follow the device: a planned budget on a CPU, the paper's on a GPU."""

from __future__ import annotations

import json

import pytest

from ml.training.budget import TrainPlan

pytestmark = pytest.mark.gui


def _plan_line(budget_s, **kw) -> str:
    p = TrainPlan(**{"mode": "frozen", "input_size": 224, "crop": 0, "epochs": 12,
                     "batch_size": 4, "device": "cpu", "budget_s": budget_s,
                     "expected_s": 580.0, "setup_s": 6.0, "cache_s": 30.0, "epoch_s": 45.0,
                     **kw})
    return p.to_json()


@pytest.fixture
def form(qtbot):
    from app.gui.training.settings import TrainSettings

    w = TrainSettings()
    qtbot.addWidget(w)
    return w


def test_cpu_default_is_a_fifteen_minute_budget_planned_before_start(form):
    form._on_device("cpu (no CUDA found)")
    assert form.budget.currentText() == "15 min" and form.mode.currentText() == "frozen"
    assert form.input_size.value() == 224  # usable before the plan is measured
    form.on_plan_json(_plan_line(900.0))
    assert form.plan_label.text() == ("about 10 min on this CPU\n"
                                      "plan: frozen, 224 px, 12 epochs, expected 9 min 40 s")
    assert form.epochs.value() == 12 and not form.epochs.isEnabled()
    student, cfg = form.configs(3)
    assert (student.mode, student.input_size, cfg.epochs) == ("frozen", 224, 12)
    assert cfg.budget_s == 900.0 and cfg.budget_plan["expected_s"] == 580.0


def test_a_plan_waits_for_its_budget_and_a_too_short_one_is_refused(form):
    form._on_device("cpu (no CUDA found)")
    form.budget.setCurrentText("5 min")
    form.on_plan_json(_plan_line(900.0))  # the 15 min plan: kept for when it is chosen
    assert form.plan is None and form.epochs.isEnabled()
    form.on_plan_json(json.dumps({"budget_s": 300.0,
                                  "error": "a budget of 5 min is too short"}))
    assert form.plan_label.text() == "no plan: a budget of 5 min is too short"
    assert form.configs(3)[1].budget_s == 0.0
    form.budget.setCurrentText("15 min")
    assert form.plan is not None and form.plan.budget_s == 900.0
    form.on_plan_json(_plan_line(900.0, epochs=20), ("another project", "auto"))  # stale
    assert form.plan.epochs == 12
    form.on_plan_json(json.dumps({"error": "no photos with teacher masks"}))
    form.budget.setCurrentText("60 min")  # never planned: the error that holds for all
    assert form.plan_label.text() == "no plan: no photos with teacher masks"


def test_gpu_default_is_the_papers_settings_until_converged(form):
    form._on_device("cuda (NVIDIA H200)")
    assert form.budget.currentText() == "until converged"
    student, cfg = form.configs(3)
    assert (student.mode, student.input_size, cfg.epochs) == ("bitfit", 518, 100)


def test_turning_the_box_loss_on_plans_again_with_its_cost(form, monkeypatch, tmp_path):
    started = []

    def start(ctx):  # what the real one records, without a child process
        started.append(ctx)
        form._plan_ctx = ctx

    monkeypatch.setattr(form, "_start_planner", start)
    form.project_root = tmp_path
    form.refresh_plan(force=True)
    form.box_loss.setValue(1.0)  # the box terms now run: their cost is measured
    form.box_loss.setValue(2.0)  # another weight, the same terms: the plans hold
    assert [ctx[2] for ctx in started] == [False, True]


def test_more_members_plan_again_and_reach_the_student(form, monkeypatch, tmp_path):
    started = []

    def start(ctx):
        started.append(ctx)
        form._plan_ctx = ctx

    monkeypatch.setattr(form, "_start_planner", start)
    form.project_root = tmp_path
    form.refresh_plan(force=True)
    assert form.members.value() == 1  # the paper's single decoder unless asked
    form.members.setValue(3)  # three decoders cost three decoder passes: measured again
    assert [ctx[3] for ctx in started] == [1, 3]
    assert form.configs(3)[0].members == 3
