"""Training in the supervised worker process, prediction, and reviewing the corrections."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from ml.evaluation.corrections import fold_corrections
from ml.student.checkpoint import can_resume
from ml.training.events import Done, Error, Step, Stopped, from_json
from tests.gui.helpers import save_shot

pytestmark = pytest.mark.gui
TINY = ({"input_size": 56, "backbone_weights": "none", "decoder_channels": 32},
        {"batch_size": 2, "device": "cpu", "num_workers": 0})


def test_worker_reports_bad_input_as_one_error_event(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "app.workers.train", str(tmp_path / "none"),
                           "--out", str(tmp_path / "m")], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)
    assert proc.returncode == 1
    events = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [e["event"] for e in events] == ["error"]
    assert "no project here" in events[0]["message"]
    assert isinstance(from_json(events[0]), Error)


def _prepare(inspector, photos, qtbot):
    from ml.project.store import Box

    project = inspector.open_project(photos)
    for k in project.keys():
        project.set_boxes(k, [Box(8, 18, 32, 42, 1), Box(48, 28, 72, 52, 2)])
    inspector.batch.set_teacher("grabcut")
    inspector.batch.pseudo_label(all_images=True)
    with qtbot.waitSignal(inspector.batch.job_finished, timeout=60000):
        pass
    return project


def test_train_predict_and_review_corrections(inspector, photos, qtbot, tmp_path):
    project = _prepare(inspector, photos, qtbot)
    panel = inspector.training
    panel.overrides = (TINY[0], {**TINY[1], "epochs": 2})
    events: list = []
    panel.process.progress.connect(events.append)
    with qtbot.waitSignal(panel.process.finished_ok, timeout=240000) as done:
        panel.start()
    assert isinstance(done.args[0], Done)
    assert done.args[0].result.epochs_run == 2
    assert any(isinstance(e, Step) for e in events)
    assert len(panel.plot.loss) >= 2 and len(panel.plot.miou) == 2
    assert (panel.out_dir / "model.safetensors").exists()
    assert "done: 2 epochs" in panel.status.text()
    # one validation photo: no box-free threshold is chosen, and the panel claims none
    assert "box-free threshold" not in panel.status.text()
    assert panel.finetune_btn.isEnabled()
    save_shot(inspector.viewer, tmp_path, "03_trained")
    # predict every image with the new model
    inspector.batch.predict(all_images=True)
    with qtbot.waitSignal(inspector.batch.job_finished, timeout=120000):
        pass
    assert all(project.record(k).student is not None for k in project.keys())
    assert inspector.layers.student.data.shape == (64, 80)
    # a prediction with known corrections: accept folds them in, undo puts the mask back
    key = inspector.session.key
    before = project.load_mask(key, "teacher").copy()
    student = np.full((64, 80), 2, np.uint8)
    corr = np.zeros((64, 80), np.uint8)
    corr[0:4, 0:4], corr[20:24, 12:16], corr[30:34, 52:56] = 1, 2, 3
    project.save_student(key, student, model="test", corrections=corr)
    inspector.show_key(key)
    review = inspector.review
    assert review.counts[1].text() == "16 px" and review.accept_btn.isEnabled()
    review.set_shown(2, False)
    assert inspector.layers.corrections.colormap.color_dict[2][3] == 0
    assert inspector.layers.corrections.colormap.color_dict[1][3] == 1
    save_shot(inspector.viewer, tmp_path, "04_corrections")
    review.accept_btn.click()
    inspector.session.flush()
    after = project.load_mask(key, "teacher")
    assert np.array_equal(after, fold_corrections(before, student, corr))
    assert project.record(key).teacher.edited
    assert review.undo_btn.isEnabled()
    review.undo_btn.click()
    inspector.session.flush()
    assert np.array_equal(project.load_mask(key, "teacher"), before)
    # reopening the project finds boxes, masks and predictions as they were
    inspector.open_project(photos)
    again = inspector.project
    assert again is not project
    assert all(len(again.record(k).boxes) == 2 and again.record(k).student is not None
               for k in again.keys())
    assert np.array_equal(inspector.layers.teacher.data, before)


def test_stop_a_run_then_a_crash_is_reported(inspector, photos, qtbot):
    _prepare(inspector, photos, qtbot)
    panel = inspector.training
    panel.overrides = (TINY[0], {**TINY[1], "epochs": 500})
    with qtbot.waitSignal(panel.process.progress, timeout=120000,
                          check_params_cb=lambda e: isinstance(e, Step)):
        panel.start()
    assert panel.stop_btn.isEnabled() and not panel.start_btn.isEnabled()
    with qtbot.waitSignal(panel.process.finished_ok, timeout=60000) as done:
        panel.stop()
    if isinstance(done.args[0], Stopped):
        assert panel.resume_btn.isEnabled() and "state saved" in panel.status.text()
    else:  # None: it did not stop in time (a loaded machine) and was ended
        assert done.args[0] is None and "stopped" in panel.status.text()
        saved = can_resume(panel.out_dir)
        assert ("Resume continues" in panel.status.text()) == saved
        assert panel.resume_btn.isEnabled() or not saved
    # a worker that fails is reported in the panel with its stderr, the app goes on
    panel.overrides = ({**TINY[0], "arch": "no-such-arch"}, {**TINY[1], "epochs": 1})
    with qtbot.waitSignal(panel.process.crashed, timeout=120000) as crash:
        panel.start()
    assert "training failed" in crash.args[0]
    assert "no-such-arch" in crash.args[0]
    assert panel.error.isVisibleTo(panel) and panel.start_btn.isEnabled()


def test_a_worker_ended_before_it_saved_a_state_is_not_called_resumable(inspector, tmp_path):
    panel = inspector.training
    panel.out_dir = tmp_path / "run"  # no last/ state in it
    panel._on_done(None)
    assert "before the worker saved any state" in panel.status.text()
    assert not panel.resume_btn.isEnabled()


def test_fine_tuning_keeps_the_current_models_build(inspector, photos, tmp_path):
    """The form's Members (and heads) give way to the model being fine-tuned."""
    from ml.student.checkpoint import CARD_NAME, WEIGHTS_NAME
    from ml.student.config import ModelCard, StudentConfig

    project = inspector.open_project(photos)
    built = StudentConfig(num_classes=project.num_classes, members=2, full_res=True,
                          taps=(0, 1), **TINY[0])
    model = project.models_dir() / "student_1"  # only its card is read (torch stays out)
    model.mkdir(parents=True)
    (model / WEIGHTS_NAME).write_bytes(b"")
    ModelCard(built).save(model / CARD_NAME)
    panel = inspector.training
    assert panel.settings.members.value() == 1
    args = panel.worker_args(finetune=True)
    student = json.loads(args[args.index("--student") + 1])
    assert (student["members"], student["full_res"], student["taps"]) == (2, True, [0, 1])
    assert args[args.index("--from") + 1] == str(model)
    fresh = panel.worker_args()  # a new run: the form's own settings
    assert json.loads(fresh[fresh.index("--student") + 1])["members"] == 1
