"""Campaign prediction on Dask (ml.campaign.client): same masks as in-process, resume, failures."""

from __future__ import annotations

import shutil
import socket
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("distributed")

from app.cli import main  # noqa: E402
from ml.campaign import client as C  # noqa: E402
from ml.common.classes import DEFAULT_CLASSES  # noqa: E402
from ml.prediction import batch_predict as BP  # noqa: E402
from ml.prediction import predict as P  # noqa: E402
from ml.project.store import Box, Project  # noqa: E402
from ml.student.checkpoint import save_checkpoint  # noqa: E402
from ml.student.config import ModelCard, StudentConfig  # noqa: E402
from ml.student.models import build_model  # noqa: E402
from tests.conftest import write_photo  # noqa: E402

TINY = StudentConfig(input_size=28, backbone_weights="none", taps=(0, 1), decoder_channels=32)
KEYS = ["a.png", "b.jpg", "T01/c.png"]


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    card = ModelCard(student=TINY, classes=[c.to_json() for c in DEFAULT_CLASSES])
    return save_checkpoint(tmp_path_factory.mktemp("model") / "m", build_model(TINY).eval(), card)


@pytest.fixture(scope="module")
def scheduler():
    """One threads-only cluster for the module: workers share this process (fast, patchable)."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster:
        yield cluster.scheduler_address


def _project(root: Path) -> Project:
    photos = root / "photos"
    for i, (key, (w, h)) in enumerate(zip(KEYS, [(64, 48), (80, 40), (40, 36)], strict=True)):
        write_photo(photos / key, w, h, i)
    proj = Project.create(root / "proj", photos)
    proj.set_boxes("a.png", [Box(4, 4, 30, 30, 1), Box(20, 10, 60, 40, 2)])
    proj.set_boxes("b.jpg", [Box(0, 0, 20, 20, 2)])
    teacher = np.zeros((48, 64), np.uint8)
    teacher[5:20, 5:25] = 1
    proj.save_teacher_mask("a.png", teacher, "box", {})
    return proj


def _run(proj: Project, model_dir: Path, address: str, **kw) -> C.CampaignResult:
    return C.predict_campaign(proj, model_dir, scheduler=address, tiled=True, **kw)


def test_campaign_stores_what_in_process_prediction_stores(tmp_path, model_dir, scheduler):
    here = _project(tmp_path / "here")
    BP.predict_project(here, model_dir, tiled=True, device="cpu")
    there = _project(tmp_path / "there")
    res = _run(there, model_dir, scheduler, device="cpu",
               photo_root=(tmp_path / "there" / "photos").as_uri())  # through fsspec
    assert sorted(res.done) == sorted(KEYS) and not res.failed and res.workers == 2
    assert res.run_dir == "" and not any((there.root / C.RUNS_DIR).glob("*"))
    there = Project.open(there.root)  # what the index on disk says
    for key in KEYS:
        a, b = here.record(key).student, there.record(key).student
        assert (a.source, a.settings, a.extra) == (b.source, b.settings, b.extra)
        np.testing.assert_array_equal(here.load_mask(key, "student"),
                                      there.load_mask(key, "student"))
        for what in a.extra:
            np.testing.assert_array_equal(here.load_student_extra(key, what),
                                          there.load_student_extra(key, what))
    assert "corrections" in there.record("a.png").student.extra


def test_a_broken_photo_is_named_others_finish_and_a_rerun_resumes(tmp_path, model_dir,
                                                                      scheduler, monkeypatch):
    proj = _project(tmp_path)
    good = (proj.image_path("b.jpg")).read_bytes()
    proj.image_path("b.jpg").write_bytes(b"not a photo")
    res = _run(proj, model_dir, scheduler, device="cpu")
    assert set(res.failed) == {"b.jpg"} and "not a readable image" in res.failed["b.jpg"]
    assert sorted(res.done) == ["T01/c.png", "a.png"] and Path(res.run_dir).is_dir()

    calls = []
    real = P.Predictor.predict
    monkeypatch.setattr(P.Predictor, "predict", lambda self, *a, **k: calls.append(1) or
                        real(self, *a, **k))
    proj.image_path("b.jpg").write_bytes(good)
    again = _run(Project.open(proj.root), model_dir, scheduler, device="cpu")
    assert sorted(again.done) == sorted(KEYS) and not again.failed
    assert again.resumed == 2 and len(calls) == 1  # only the photo that failed ran again
    assert again.run_dir == ""  # a complete run removes its folder


def test_a_stopped_run_resumes_without_predicting_finished_photos(tmp_path, model_dir,
                                                                    scheduler, monkeypatch):
    proj = _project(tmp_path)
    steps = []
    first = _run(proj, model_dir, scheduler, device="cpu", window=1, progress=steps.append,
                 should_stop=lambda: bool(steps))
    assert first.stopped and len(first.done) == 1 and Path(first.run_dir).is_dir()
    # a killed write leaves a temp file; it is never taken for a result
    (Path(first.run_dir) / "results" / ".b.jpg.json.1234.tmp").parent.mkdir(exist_ok=True)
    (Path(first.run_dir) / "results" / ".b.jpg.json.1234.tmp").write_text("{")
    calls = []
    real = P.Predictor.predict
    monkeypatch.setattr(P.Predictor, "predict", lambda self, *a, **k: calls.append(1) or
                        real(self, *a, **k))
    again = _run(Project.open(proj.root), model_dir, scheduler, device="cpu")
    assert sorted(again.done) == sorted(KEYS) and again.resumed >= 1
    assert len(calls) == len(KEYS) - again.resumed


def test_only_the_client_writes_the_index_one_photo_per_transaction(tmp_path, model_dir,
                                                                  scheduler, monkeypatch):
    proj = _project(tmp_path)
    writers = []
    real = Project.batch
    monkeypatch.setattr(Project, "batch", lambda self: writers.append(
        threading.current_thread()) or real(self))
    # a local cluster of this command's own, its workers threads of this process
    res = _run(proj, model_dir, "local", workers=2, processes=False, device="cpu",
               index_every=2)
    assert len(res.done) == 3 and res.workers == 2
    assert set(writers) == {threading.main_thread()}
    assert len(writers) == 3  # each photo's masks land in one transaction as it comes


def test_an_unreachable_scheduler_is_a_clear_error(tmp_path, model_dir):
    proj = _project(tmp_path)
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()
    with pytest.raises(C.CampaignError, match="no Dask scheduler answered"):
        _run(proj, model_dir, f"tcp://127.0.0.1:{port}", connect_timeout=1)
    # a peer that accepts and never answers: Dask's client alone would wait for ever
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        with pytest.raises(C.CampaignError, match="within 1 s"):
            _run(proj, model_dir, f"tcp://127.0.0.1:{silent.getsockname()[1]}",
                 connect_timeout=1)
    assert proj.record("a.png").student is None


def test_a_local_cluster_is_sized_to_the_machine():
    size = C.local_size()
    assert size.workers >= 1 and size.tasks in (1, 2) and size.torch_threads >= 1
    assert C.local_size(3).workers == 3
    with pytest.raises(C.CampaignError, match="at least 1"):
        C.local_size(0)


def test_without_distributed_the_error_says_how_to_install(tmp_path, model_dir, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "distributed", None)
    with pytest.raises(C.CampaignError, match=r"pip install 'boxes2pixels\[scale\]'"):
        C.predict_campaign(_project(tmp_path), model_dir)


def test_cli_predicts_on_a_cluster_and_prints_the_dashboard(tmp_path, model_dir, scheduler,
                                                           capsys):
    proj = _project(tmp_path)
    shutil.rmtree(proj.root / "models", ignore_errors=True)
    rc = main(["predict", str(proj.root), "--model", str(model_dir), "--device", "cpu",
               "--scheduler", scheduler, "--box-rule", "posterior", "--box-pad", "2"])
    out = capsys.readouterr()
    assert rc == 0, out
    assert "Dask dashboard: http" in out.out + out.err and "predicted 3/3" in out.out
    records = Project.open(proj.root).images.values()
    assert all(r.student is not None for r in records)
    # the workers' Predictor took the command's box options
    assert {(r.student.settings["box_rule"], r.student.settings["box_pad"])
            for r in records} == {("posterior", 2)}
    assert main(["predict", str(tmp_path / "photos"), "--out", str(tmp_path / "o"),
                 "--model", str(model_dir), "--scheduler", "local"]) == 1
    assert "work on a project" in capsys.readouterr().err



def _proposal_entries(proj: Project) -> dict:
    """Each photo's stored proposals, less the time they were found."""
    out = {}
    for key in KEYS:
        entry = proj.record(key).findings.get("proposals")
        out[key] = None if entry is None else {k: v for k, v in entry.items() if k != "at"}
    return out


@pytest.mark.parametrize("card", ["open threshold", "no calibration yet"])
def test_campaign_stores_the_proposals_predict_stores(tmp_path, model_dir, scheduler, card):
    from ml.evaluation.calibration import Calibration, save_to_card, with_threshold
    from ml.evaluation.free_threshold import FreeThreshold
    from ml.findings.queue import review_queue
    from ml.student.checkpoint import CARD_NAME, load_card

    m = tmp_path / "model"
    shutil.copytree(model_dir, m)

    def reset_card() -> None:
        c = load_card(m)
        c.calibration = None
        if card == "open threshold":  # a mask threshold over the proposals': some beside it
            c.free_threshold = FreeThreshold(0.9, 0.5, 0.5, 10).to_json()
        c.save(m / CARD_NAME)
        if card == "open threshold":  # every candidate passes: proposals to compare
            save_to_card(m, with_threshold(with_threshold(Calibration(), 1, 0.0), 2, 0.0))

    reset_card()
    here = _project(tmp_path / "here")
    BP.predict_project(here, m, tiled=True, device="cpu")
    fitted = load_card(m).calibration
    reset_card()  # the campaign calibrates for itself where the card has none
    there = _project(tmp_path / "there")
    assert not _run(there, m, scheduler, device="cpu").failed
    assert load_card(m).calibration == fitted
    there = Project.open(there.root)
    assert _proposal_entries(there) == _proposal_entries(here)
    assert all(e is not None for e in _proposal_entries(there).values())
    for key in KEYS:  # the mask, and the proposals found under its threshold beside it
        np.testing.assert_array_equal(there.load_mask(key, "student"),
                                      here.load_mask(key, "student"))
        np.testing.assert_array_equal(there.load_proposing_mask(key),
                                      here.load_proposing_mask(key))
    if card == "open threshold":  # and some were found there
        assert any(there.load_student_extra(k, "proposed") is not None for k in KEYS)
    if card == "open threshold":  # the comparison is not of empty lists
        items = [p for e in _proposal_entries(there).values() for p in e["items"].values()]
        assert items and all(p["teacher_iou"] is not None for p in items)
        assert len(review_queue(there).items) == len(items)


def test_a_task_holds_a_photo_only_reviewed_to_no_box(tmp_path):
    # as in-process prediction: an accepted proposal's box does not hold the prediction
    proj = _project(tmp_path)
    proj.set_boxes("T01/c.png", [Box(2, 2, 12, 12, 1, "proposal")])
    task = C._task(proj, "T01/c.png", True, None, True)
    assert task.boxes is not None and len(task.boxes) == 0
    assert len(task.all_boxes) == 1  # still no proposal inside the accepted one
    assert len(C._task(proj, "a.png", True, None, True).boxes) == 2
