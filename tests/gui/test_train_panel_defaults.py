"""The Train panel offers what fits the machine, and after a run predicts every photo with the
new model; the Corrections dock then shows what changed against the previous model.

The planner and the device probe run as child Pythons, as in the app; here they are small
scripts that answer at once (the real planner's lines come from ``ml.training.budget`` itself, with
step times made up, so no test waits for torch to time a ViT).
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from ml.evaluation.model_diff import GAINED, model_diff
from ml.training import budget as B
from ml.training.events import Done
from tests.gui.helpers import save_shot, write_photos

pytestmark = pytest.mark.gui
TINY = ({"input_size": 56, "backbone_weights": "none", "decoder_channels": 32},
        {"batch_size": 2, "device": "cpu", "num_workers": 0})
SIZES = [(300, 300)] * 50  # no crops at any input size


def _cost(c: B.Candidate) -> B.StepCost:
    k = (c.input_size / 224) ** 2 * (3.0 if c.mode == "bitfit" else 1.0)
    return B.StepCost(0.1 * k, 1.0 * k, k / 3)


def _plan_lines(device: str) -> dict[str, str]:
    """What ``python -m ml.training.budget`` prints for each budget choice on ``device``."""
    from app.gui._preload import preload_torch

    preload_torch()  # the planner reads ml.training.data (torch): load it the way the GUI must
    out = {}
    for arg, seconds in (("300s", 300.0), ("900s", 900.0), ("3600s", 3600.0),
                         ("converged", None)):
        try:
            out[arg] = B.plan(seconds, device, SIZES, _cost).to_json()
        except B.BudgetError as e:
            out[arg] = json.dumps({"budget_s": seconds, "error": str(e)})
    return out


def _plan_with(monkeypatch, S, code: str) -> None:
    """The planner child runs ``code`` with the planner's arguments, not app.workers.plan."""
    monkeypatch.setattr(S, "worker_command",
                        lambda args, worker="train": [sys.executable, "-c", code, *args])


@pytest.fixture
def children(tmp_path, monkeypatch):
    """Fake planner and probe children; returns a function setting the device they report."""
    from app.gui.training import settings as S

    log = tmp_path / "planner_calls.jsonl"
    script = tmp_path / "fake_planner.py"

    def use(device: str) -> object:
        lines = tmp_path / f"plans_{device}.json"
        lines.write_text(json.dumps(_plan_lines(device)))
        script.write_text(
            "import json, sys\n"
            f"lines = json.load(open({str(lines)!r}))\n"
            f"open({str(log)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
            "args = sys.argv[1:]\n"
            "for i, a in enumerate(args):\n"
            "    if a == '--budget':\n"
            "        print(lines[args[i + 1]], flush=True)\n")
        said = "cuda (NVIDIA H200)" if device == "cuda" else "cpu (no CUDA found)"
        monkeypatch.setattr(S, "PROBE_CODE", f"print({said!r})")
        _plan_with(monkeypatch, S, f"exec(open({str(script)!r}).read())")
        return log
    return use


@pytest.fixture
def project(tmp_path):
    from ml.project.store import Project

    write_photos(tmp_path / "three", n=3)
    return Project.create(tmp_path / "proj", tmp_path / "three")


@pytest.fixture
def panel(qtbot):
    from app.gui.training.panel import TrainingPanel

    w = TrainingPanel()
    qtbot.addWidget(w)
    return w


def _calls(log) -> list[list[str]]:
    return [json.loads(x) for x in log.read_text().splitlines()] if log.exists() else []


def test_on_a_cpu_the_panel_proposes_frozen_fifteen_minutes_and_says_how_long(
        panel, project, children, qtbot):
    log = children("cpu")
    panel.show()
    panel.set_project(project)
    form = panel.settings
    form.probe()  # the app waits a few seconds after showing the form; the test does not
    qtbot.waitUntil(lambda: form.device_kind == "cpu" and form.plan is not None, timeout=30000)
    assert form.budget.currentText() == "15 min" and form.mode.currentText() == "frozen"
    assert form.plan.mode == "frozen" and form.plan.budget_s == 900.0
    about, detail = form.plan_label.text().split("\n")
    assert about == form.plan.about() and about.startswith("about ")
    assert about.endswith("on this CPU") and detail == form.plan.describe()
    assert not form.epochs.isEnabled()  # the budget drives the settings
    student, cfg = form.configs(3)
    assert (student.mode, student.input_size, cfg.epochs, cfg.budget_s) == (
        "frozen", form.plan.input_size, form.plan.epochs, 900.0)
    # switching the budget shows its plan at once: every choice was planned in one child
    fifteen = form.plan
    form.budget.setCurrentText("5 min")
    assert form.plan is not None and form.plan.budget_s == 300.0
    assert form.plan.input_size < fifteen.input_size  # cheaper to fit the shorter time
    assert form.plan_label.text().split("\n")[0] == form.plan.about() != fifteen.about()
    assert form.input_size.value() == form.plan.input_size
    form.budget.setCurrentText("until converged")
    assert form.plan.budget_s is None and "early stopping" in form.plan_label.text()
    calls = _calls(log)
    assert len(calls) == 1  # one planner run for all choices, the chosen budget first
    assert calls[0][calls[0].index("--budget") + 1] == "900s"
    assert {calls[0][i + 1] for i, a in enumerate(calls[0]) if a == "--budget"} == {
        "300s", "900s", "3600s", "converged"}


def test_on_a_gpu_the_panel_proposes_the_papers_settings_with_their_duration(
        panel, project, children, qtbot):
    children("cuda")
    panel.show()
    panel.set_project(project)
    form = panel.settings
    form.probe()
    qtbot.waitUntil(lambda: form.device_kind == "cuda" and form.plan is not None, timeout=30000)
    assert form.budget.currentText() == "until converged"
    assert (form.mode.currentText(), form.input_size.value(), form.epochs.value()) == (
        "bitfit", 518, B.MAX_EPOCHS)
    assert form.plan_label.text().startswith("at most about ")
    assert "on this GPU" in form.plan_label.text()


def test_a_planner_without_an_answer_is_said_in_the_label(panel, project, monkeypatch, qtbot):
    from app.gui.training import settings as S

    _plan_with(monkeypatch, S, "import sys; sys.exit(3)")
    panel.set_project(project)
    form = panel.settings
    qtbot.waitUntil(lambda: not form.planning(), timeout=30000)
    assert form.plan is None and form.plan_label.text() == "no plan: the planner gave no answer"
    assert form.epochs.isEnabled()  # the person sets them by hand then


def test_predict_all_with_the_new_model_then_compare_with_the_previous(inspector, photos, qtbot,
                                                                       children, tmp_path):
    from ml.project.store import Box

    children("cpu")
    project = inspector.open_project(photos)
    for k in project.keys():
        project.set_boxes(k, [Box(8, 18, 32, 42, 1), Box(48, 28, 72, 52, 2)])
    inspector.batch.set_teacher("grabcut")
    inspector.batch.pseudo_label(all_images=True)
    with qtbot.waitSignal(inspector.batch.job_finished, timeout=60000):
        pass
    old = np.zeros((64, 80), np.uint8)  # an earlier model that found nothing anywhere
    for k in project.keys():
        project.save_student(k, old, model="old-model")
    panel = inspector.training
    assert panel.predict_btn.isHidden()  # nothing new to predict with yet
    panel.overrides = (TINY[0], {**TINY[1], "epochs": 1})
    with qtbot.waitSignal(panel.process.finished_ok, timeout=240000) as done:
        panel.start()
    assert isinstance(done.args[0], Done)
    assert not panel.predict_btn.isHidden() and panel.predict_btn.isEnabled()
    assert panel.predict_btn.text() == "Predict all photos with the new model"
    with qtbot.waitSignal(inspector.batch.job_finished, timeout=120000):
        panel.predict_btn.click()
    assert not panel.predict_progress.isHidden()
    assert panel.predict_progress.label.text().startswith("predict: done")
    from ml.student.checkpoint import model_id

    new_id = model_id(panel.out_dir)
    for k in project.keys():
        assert project.record(k).student.source == new_id
        assert project.record(k).previous.source == "old-model"
        assert np.array_equal(project.load_mask(k, "previous"), old)
    assert "Against the previous model (5 of 5 photos changed)" in panel.predict_status.text()
    # the Corrections dock compares with the previous model: what the new one gained
    review = inspector.review
    review.set_mode("previous")
    key = inspector.session.key
    student = project.load_mask(key, "student")
    expected = model_diff(old, student)
    assert np.array_equal(inspector.layers.corrections.data, expected.changes)
    gained = int((expected.changes == GAINED).sum())
    assert gained > 0 and review.counts[GAINED].text() == f"{gained} px"
    assert review.toggles[GAINED].text() == "gained"
    assert review.detail.text() == expected.summary(project.class_names())
    assert review.accept_btn.isHidden()  # accepting folds the teacher's corrections only
    save_shot(inspector.viewer, tmp_path, "05_compare_previous")
    # back to the teacher: the stored corrections, and Accept again
    review.set_mode("teacher")
    corr = project.load_student_extra(key, "corrections")
    assert np.array_equal(inspector.layers.corrections.data, corr)
    assert review.toggles[GAINED].text() == "recovered" and not review.accept_btn.isHidden()
