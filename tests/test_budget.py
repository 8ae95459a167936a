"""The wall-clock budget planner (pure, with injected step times) and ``b2p train --budget``."""

from __future__ import annotations

import json
import math
from dataclasses import replace

import pytest

from ml.student.config import ModelCard, StudentConfig, TrainConfig
from ml.training import budget as B
from ml.training.step_cost import measure_step
from ml.training.widths import summarise

SQUARE = [(512, 512)] * 50  # 40 train + 10 val photos


def costs(step_at_224: float = 1.0, encode_at_224: float = 0.1, calls: list | None = None):
    """Step times growing with the input's pixel count, as a ViT's roughly do."""
    def cost(c: B.Candidate) -> B.StepCost:
        if calls is not None:
            calls.append(c)
        k = (c.input_size / 224) ** 2 * (3.0 if c.mode == "bitfit" else 1.0)
        return B.StepCost(encode_at_224 * k, step_at_224 * k, step_at_224 * k / 3)
    return cost


@pytest.mark.parametrize("text,seconds", [("90s", 90), ("10m", 600), ("1h", 3600),
                                          ("1.5h", 5400), ("45", 45), (" 2 min ", 120)])
def test_parse_budget_reads_seconds_minutes_and_hours(text, seconds):
    assert B.parse_budget(text) == seconds


@pytest.mark.parametrize("text", ["0", "0m", "abc", "-5m", "", "10 parsecs"])
def test_parse_budget_refuses_nonsense_with_one_line(text):
    with pytest.raises(ValueError) as e:
        B.parse_budget(text)
    assert "\n" not in str(e.value) and repr(text) in str(e.value)


def test_format_duration_is_for_people():
    assert [B.format_duration(s) for s in (45, 580, 600, 3900, 7200)] == [
        "45 s", "9 min 40 s", "10 min", "1 h 5 min", "2 h"]


def test_estimate_counts_the_views_the_trainer_steps_through():
    cost = B.StepCost(encode_s=1.0, step_s=10.0, eval_s=100.0)
    setup, cache, epoch = B.estimate(B.Candidate("frozen", 56), cost, [(64, 64)] * 5)
    # 4 train photos and their flipped twins plus the 1 val photo are encoded once
    assert cache == 4 * 2 + 1
    assert epoch == math.ceil(8 / 4) * 10 + 1 * 100 + B.SAVE_S_PER_EPOCH
    assert setup == B.SETUP_S + 5 * B.LOAD_S_PER_IMAGE
    _, cache, epoch = B.estimate(B.Candidate("bitfit", 56), cost, [(64, 64)] * 5)
    assert cache == 0 and epoch == 10 + 100 + B.SAVE_S_PER_EPOCH


def test_cpu_plan_is_frozen_and_shrinks_the_input_to_fit_the_budget():
    calls: list = []
    big = B.plan(3600, "cpu", SQUARE, costs(calls=calls))
    assert (big.mode, big.input_size) == ("frozen", 448) and big.epochs >= B.MIN_EPOCHS
    assert calls == [B.Candidate("frozen", 448)]  # nothing else measured
    small = B.plan(300, "cpu", SQUARE, costs())
    assert small.mode == "frozen" and small.input_size < big.input_size
    for p in (big, small):
        assert p.expected_s <= p.budget_s
        assert p.expected_s == pytest.approx(p.setup_s + p.cache_s + p.epochs * p.epoch_s)
        # one more epoch would not have fitted (or the plan is at its epoch cap)
        assert p.epochs == B.MAX_EPOCHS or p.expected_s + p.epoch_s > p.budget_s
    assert small.describe().startswith(f"plan: frozen, {small.input_size} px, {small.epochs} "
                                       "epochs, expected ")


def test_gpu_plan_is_the_papers_settings_when_they_fit():
    p = B.plan(None, "cuda", SQUARE, costs(step_at_224=0.01, encode_at_224=0.001))
    assert (p.mode, p.input_size, p.epochs) == ("bitfit", 518, B.MAX_EPOCHS)
    assert p.budget_s is None and p.expected_s > 0


def test_budget_below_one_epoch_is_refused_with_the_minimum():
    cost = costs()
    with pytest.raises(B.BudgetError) as e:
        B.plan(20, "cpu", SQUARE, cost)
    setup, cache, epoch = B.estimate(B.Candidate("frozen", 224), cost(B.Candidate("frozen", 224)),
                                     SQUARE)
    assert e.value.minimum_s == pytest.approx(setup + cache + epoch)
    assert B.format_duration(e.value.minimum_s) in str(e.value)
    # the minimum itself is accepted: one epoch at the cheapest setting
    assert B.plan(e.value.minimum_s + 0.01, "cpu", SQUARE, cost).epochs == 1


def test_large_photos_get_crop_candidates_and_their_views():
    from ml.student.crops import CROP_AUTO, resolve_crop

    ladder = B.default_ladder("cpu", [(4000, 3000)] * 3)
    # the crop the plan costs is the one training's crop=auto will use: one rule
    crop = resolve_crop(CROP_AUTO, 448, [(3000, 4000)] * 3)
    assert crop > 0
    assert ladder[0] == B.Candidate("frozen", 448, crop) and B.Candidate("frozen", 448) in ladder
    small = [(260, 260)] * 3  # no photo 1.25x the input: whole photos only
    assert B.default_ladder("cpu", small) == [B.Candidate("frozen", s) for s in (448, 336, 224)]
    # cached at 4 x 896 = 3584 px long side: 4 x 3 crops of 896
    assert B.views_per_photo((4000, 3000), B.Candidate("frozen", 448, 896)) == 12
    assert B.views_per_photo((4000, 3000), B.Candidate("frozen", 448)) == 1


def test_restrict_keeps_what_a_person_fixed():
    ladder = B.default_ladder("cpu", SQUARE)
    # 512 px photos are 1.5x a 336 input: its native crops come first
    assert B.restrict(ladder, input_size=336) == [B.Candidate("frozen", 336, 336),
                                                  B.Candidate("frozen", 336)]
    assert B.restrict(ladder, input_size=336, crop=0) == [B.Candidate("frozen", 336)]
    assert B.restrict(ladder, mode="bitfit") == [B.Candidate("bitfit", 448)]
    assert B.restrict(ladder) == ladder


def test_plan_is_recorded_in_the_model_card(tmp_path):
    p = B.plan(600, "cpu", SQUARE, costs())
    student, cfg = B.apply_plan(p, StudentConfig(), TrainConfig())
    assert (student.mode, student.input_size, cfg.epochs, cfg.crop) == (
        p.mode, p.input_size, p.epochs, p.crop)
    ModelCard(student, cfg).save(tmp_path / "config.json")
    back = ModelCard.load(tmp_path / "config.json").train
    assert back.budget_s == 600 and B.TrainPlan.from_dict(back.budget_plan) == p


# ---------------------------------------------------------------- b2p train --budget
@pytest.fixture
def tiny_project(tmp_path):
    from tests.test_train import make_project

    return make_project(tmp_path, 5)


def _train(project, out, *extra):
    from app.cli import main

    return main(["train", str(project.root), "--out", str(out), "--device", "cpu",
                 "--backbone-weights", "none", *extra])


@pytest.mark.parametrize("budget,message", [("0", "more than 0"), ("abc", "not a duration")])
def test_cli_refuses_a_bad_budget_in_one_line(tiny_project, tmp_path, capsys, budget, message):
    assert _train(tiny_project, tmp_path / "m", "--budget", budget) == 1
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_cli_refuses_a_budget_with_epochs(tiny_project, tmp_path, capsys):
    assert _train(tiny_project, tmp_path / "m", "--budget", "10m", "--epochs", "3") == 1
    assert "not both" in capsys.readouterr().err


def _fake_measure(monkeypatch, step_s: float) -> None:
    monkeypatch.setattr(B, "default_ladder", lambda device, sizes: [B.Candidate("frozen", 56)])
    monkeypatch.setattr(B, "measured_costs",
                        lambda *a, **k: lambda c: B.StepCost(0.5, step_s, 1.0))


def test_cli_refuses_a_budget_below_one_epoch(tiny_project, tmp_path, capsys, monkeypatch):
    _fake_measure(monkeypatch, step_s=100.0)
    assert _train(tiny_project, tmp_path / "m", "--budget", "30s") == 1
    err = capsys.readouterr().err
    assert "too short" in err and "needs at least 3 min 31 s" in err


def test_cli_prints_the_plan_then_trains_it(tiny_project, tmp_path, capsys, monkeypatch):
    _fake_measure(monkeypatch, step_s=100.0)  # one epoch: 2 steps of 100 s + validation
    out = tmp_path / "m"
    assert _train(tiny_project, out, "--budget", "10m") == 0
    text = capsys.readouterr().out
    assert "plan: frozen, 56 px, 2 epochs, expected 6 min 53 s on cpu" in text
    card = ModelCard.load(out / "config.json")
    assert card.student.mode == "frozen" and card.student.input_size == 56
    assert card.train.epochs == 2 and card.train.budget_s == 600
    assert card.train.budget_plan["epochs"] == 2 and len(card.history) == 2


CPU_TRAIN = json.dumps({"device": "cpu"})


def test_planner_prints_one_json_line_for_the_gui(tiny_project, monkeypatch, capsys):
    from app.workers.plan import main

    _fake_measure(monkeypatch, step_s=100.0)
    assert main([str(tiny_project.root), "--budget", "10m", "--train", CPU_TRAIN]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["epochs"] == 2 and d["text"] == B.TrainPlan.from_dict(d).describe()
    assert main([str(tiny_project.root), "--budget", "abc"]) == 1
    assert "not a duration" in json.loads(capsys.readouterr().out)["error"]
    # settings out of range: the configs' own message, one line for all budgets
    assert main([str(tiny_project.root), "--student", '{"members": 0}']) == 1
    assert "members 0 must be at least 1" in json.loads(capsys.readouterr().out)["error"]


def test_about_says_the_expected_time_in_words_for_this_machine():
    p = B.plan(900, "cpu", SQUARE, costs())
    assert p.about() == f"about {B.rough_duration(p.expected_s)} on this CPU"
    assert [B.rough_duration(s) for s in (40, 839, 845, 3900, 7400)] == [
        "40 s", "14 min", "14 min", "1 h 5 min", "2 h 5 min"]
    gpu = B.plan(None, "cuda", SQUARE, costs(step_at_224=0.01, encode_at_224=0.001))
    assert gpu.about().startswith("at most about ") and "on this GPU" in gpu.about()
    assert "early stopping" in gpu.about()
    d = json.loads(p.to_json())
    assert d["about"] == p.about() and d["text"] == p.describe()
    assert B.TrainPlan.from_dict(d) == p


@pytest.mark.parametrize("text", ["converged", "until converged", " None "])
def test_a_budget_choice_may_be_until_converged(text):
    assert B.parse_budget_choice(text) is None
    assert B.parse_budget_choice("15m") == 900


def test_planner_plans_every_budget_asked_measuring_once(tiny_project, monkeypatch, capsys):
    from app.workers.plan import main

    measured: list = []
    monkeypatch.setattr(B, "default_ladder", lambda device, sizes: [B.Candidate("frozen", 56)])
    monkeypatch.setattr(B, "measured_costs", lambda *a, **k: measured.append(a) or (
        lambda c: B.StepCost(0.5, 100.0, 1.0)))
    argv = [str(tiny_project.root), "--train", CPU_TRAIN, "--budget", "15m", "--budget", "30s",
            "--budget", "converged"]
    assert main(argv) == 1  # 30 s is too short: said on its own line, the others planned
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [d["budget_s"] for d in lines] == [900, 30, None]
    assert lines[0]["epochs"] == 4 and lines[0]["about"].endswith("on this CPU")
    assert "too short" in lines[1]["error"] and "mode" not in lines[1]
    assert lines[2]["epochs"] == B.MAX_EPOCHS
    assert len(measured) == 1


def test_the_step_timed_has_the_box_terms_when_the_run_has_them(monkeypatch):
    from ml.training.box_loss import BoxLoss

    calls = []
    real = BoxLoss.__call__

    def counted(self, *args, **kwargs):
        calls.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(BoxLoss, "__call__", counted)
    measure_step(B.Candidate("frozen", 56), batch_size=1, repeats=1)
    assert calls == []
    cost = measure_step(B.Candidate("frozen", 56), batch_size=1, repeats=1, box_loss=1.0)
    assert len(calls) == 2 and cost.step_s > 0  # the warm-up step and the timed one


def test_plan_project_measures_with_the_runs_box_loss_and_members(monkeypatch, tmp_path):
    from ml.common.classes import make_classes
    from ml.project.store import Project

    seen = []
    monkeypatch.setattr(B, "measured_costs", lambda dev, n, bs, box_loss, members: (
        seen.append((box_loss, members)), costs())[1])
    proj = Project.create(tmp_path / "p", tmp_path, make_classes(["dirt"]))
    monkeypatch.setattr(proj, "image_size", lambda k: (512, 512))
    import ml.training.data

    monkeypatch.setattr(ml.training.data, "labelled_keys", lambda project, source: ["a.png"] * 20)
    monkeypatch.setattr(B, "project_widths", lambda *a: summarise([]))  # no boxes to measure
    B.plan_project(proj, StudentConfig(), TrainConfig(device="cpu", box_loss=0.5), 600)
    B.plan_project(proj, StudentConfig(members=3), TrainConfig(device="cpu"), 600)
    assert seen == [(0.5, 1), (0.0, 3)]


def test_plan_project_returns_the_configs_planned_keeping_what_was_fixed(monkeypatch, tmp_path):
    from ml.common.classes import make_classes
    from ml.project.store import Project

    proj = Project.create(tmp_path / "p", tmp_path, make_classes(["dirt"]))
    monkeypatch.setattr(proj, "image_size", lambda k: (512, 512))
    import ml.training.data

    monkeypatch.setattr(ml.training.data, "labelled_keys", lambda project, source: ["a.png"] * 50)
    monkeypatch.setattr(B, "project_widths", lambda *a: summarise([]))  # no boxes to measure
    student, cfg = StudentConfig(members=2), TrainConfig(device="cpu", batch_size=2)
    s, c = B.plan_project(proj, student, cfg, 3600, cost=costs())
    p = B.TrainPlan.of(c)
    assert (s.mode, s.input_size, c.crop, c.epochs) == (p.mode, p.input_size, p.crop, p.epochs)
    assert s.members == 2 and c.batch_size == 2 == p.batch_size and c.budget_s == 3600
    assert B.TrainPlan.of(TrainConfig()) is None  # not planned
    # the person's input size is kept; the rest is planned around it
    s, c = B.plan_project(proj, replace(student, input_size=224), cfg, 3600, cost=costs(),
                          fixed=["input_size"])
    assert s.input_size == 224 and s.mode == "frozen"
    with pytest.raises(ValueError, match="input size 50 must be a multiple of 14"):
        B.plan_project(proj, replace(student, input_size=50), cfg, 3600, cost=costs())
    with pytest.raises(ValueError, match="b2p student, not unet"):
        B.plan_project(proj, replace(student, arch="unet"), cfg, 3600, cost=costs())


def test_plan_project_plans_for_the_photos_the_run_trains_on(monkeypatch, tmp_path):
    from ml.common.classes import make_classes
    from ml.project.store import Project

    proj = Project.create(tmp_path / "p", tmp_path, make_classes(["dirt"]))
    monkeypatch.setattr(proj, "image_size", lambda k: (512, 512))
    import ml.training.data

    every = [f"{i:02d}.png" for i in range(50)]
    monkeypatch.setattr(ml.training.data, "labelled_keys", lambda project, source: list(every))
    monkeypatch.setattr(B, "project_widths", lambda *a: summarise([]))  # no boxes to measure
    cfg = TrainConfig(device="cpu")
    _, on_all = B.plan_project(proj, StudentConfig(), cfg, 600, cost=costs())
    _, on_ten = B.plan_project(proj, StudentConfig(), cfg, 600, cost=costs(),
                               keys=every[:10] + ["not_labelled.png"])
    every[:] = every[:10]  # a project that holds only those ten photos
    _, alone = B.plan_project(proj, StudentConfig(), cfg, 600, cost=costs())
    assert on_ten.budget_plan == alone.budget_plan
    assert on_ten.epochs > on_all.epochs  # fewer photos, more epochs in the same budget


# ---------------------------------------------------------------- thin defects set a scale floor
PHOTOS_640 = [(640, 640)] * 50


def test_thin_defects_hold_the_plan_at_a_scale_that_keeps_them_two_pixels_wide():
    from ml.training.widths import MIN_THIN_PX, Widths

    coarse = B.plan(300, "cpu", PHOTOS_640, costs())
    assert (coarse.input_size, coarse.crop) == (224, 0)  # 0.35 px per photo px fits 13 epochs
    thin = Widths(thin_px=4.0, boxes=50, from_masks=50)  # streaks 4 px wide on the photos
    p = B.plan(300, "cpu", PHOTOS_640, costs(), widths=thin)
    scale = B.candidate_scale(B.Candidate(p.mode, p.input_size, p.crop), PHOTOS_640)
    assert 4.0 * scale >= MIN_THIN_PX and p.input_size > 224 and p.epochs >= 1
    assert p.expected_s <= 300
    assert "a quarter of the 50 boxes hold defects 4 px wide or thinner" in p.reason
    assert "at 224 px: 1.4 px" in p.reason and "this one trains the most" in p.reason
    # a budget no setting that keeps them fits: refused with what one epoch of it needs
    with pytest.raises(B.BudgetError, match=r"needs at least .* \(at 336 px; a quarter"):
        B.plan(60, "cpu", PHOTOS_640, costs(), widths=thin)


def test_blob_defects_leave_the_plan_as_it_was():
    from ml.training.widths import Widths

    blobs = Widths(thin_px=40.0, boxes=50, from_masks=50)
    for budget in (300, 900, None):
        before = B.plan(budget, "cpu", PHOTOS_640, costs())
        after = B.plan(budget, "cpu", PHOTOS_640, costs(), widths=blobs)
        assert (after.input_size, after.crop, after.epochs) == (
            before.input_size, before.crop, before.epochs)
        assert after.reason.startswith("a quarter of the 50 boxes hold defects 40 px")


def test_a_fixed_coarse_setting_is_kept_and_the_reason_says_what_it_costs():
    from ml.training.widths import Widths

    ladder = B.restrict(B.default_ladder("cpu", PHOTOS_640), input_size=224, crop=0)
    p = B.plan(300, "cpu", PHOTOS_640, costs(), ladder=ladder,
               widths=Widths(thin_px=4.0, boxes=50, from_masks=50))
    assert (p.input_size, p.crop) == (224, 0) and "under the 2 px they need" in p.reason


def test_widths_come_from_the_masks_and_else_from_the_boxes():
    from types import SimpleNamespace

    import numpy as np

    from ml.project.records import Box
    from ml.training import widths as W

    label = np.zeros((100, 100), np.uint8)
    label[10:60, 20:22] = 1  # a 2 px streak in a 30 x 50 box
    label[70:90, 60:90] = 1  # a 20 x 30 blob filling its box
    records = {"a": [Box(10, 10, 40, 60, 1), Box(60, 70, 90, 90, 1)],
               "b": [Box(0, 0, 12, 50, 1)]}  # no mask: its short side, 12 px
    project = SimpleNamespace(record=lambda k: SimpleNamespace(boxes=records[k]),
                              load_mask=lambda k, source: label if k == "a" else None)
    got = [W.box_width((b.x0, b.y0, b.x1, b.y1), label > 0) for b in records["a"]]
    assert got[0] == pytest.approx(2.0) and got[1] == pytest.approx(20.0, abs=1.5)
    w = W.project_widths(project, ["a", "b"])
    assert (w.boxes, w.from_masks) == (3, 2)
    assert w.thin_px == pytest.approx(np.quantile([2.0, got[1], 12.0], W.THIN_QUANTILE))
    assert W.scale_floor(2.0) == 1.0 and W.scale_floor(8.0) == 0.25 and W.scale_floor(0) == 0
    assert W.summarise([]).describe() == "no boxes to measure the defects' widths by"


def test_the_scale_of_a_setting_is_the_one_training_and_prediction_use():
    from ml.student.crops import photo_scale

    assert photo_scale((371, 586), 224) == pytest.approx(224 / 586)  # the long side sets it
    assert photo_scale((640, 640), 224, 224) == 1.0  # native crops: cached whole
    assert photo_scale((4000, 3000), 448, 896) == pytest.approx(3584 / 4000 / 2)


def test_thin_class_widths_come_from_the_classes_the_auto_teacher_surveyed_as_thin():
    from types import SimpleNamespace

    import numpy as np

    from ml.project.records import Box
    from ml.training import widths as W

    label = np.zeros((100, 100), np.uint8)
    label[10:60, 20:23] = 1  # a 3 px crack (class 1, surveyed thin)
    label[70:90, 60:90] = 2  # a blob (class 2, a region)
    teacher = SimpleNamespace(settings={"kinds": {"1": "thin", "2": "region"}})
    records = {"a": SimpleNamespace(boxes=[Box(10, 10, 40, 60, 1), Box(60, 70, 90, 90, 2)],
                                    teacher=teacher),
               "b": SimpleNamespace(boxes=[Box(0, 0, 9, 9, 1)], teacher=None)}  # no survey
    project = SimpleNamespace(record=records.__getitem__, load_mask=lambda k, source: label)
    crack = W.box_width((10, 10, 40, 60), label == 1)  # the one surveyed box: b has no survey
    assert W.thin_class_widths(project, ["a", "b"]) == {"1": round(crack, 2)} and crack <= 4
    other = SimpleNamespace(settings={"teacher": "grabcut"})  # another teacher: no survey
    project.record = lambda k: SimpleNamespace(boxes=records["a"].boxes, teacher=other)
    assert W.thin_class_widths(project, ["a"]) == {}
