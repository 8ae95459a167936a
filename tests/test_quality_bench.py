"""bench/quality.py's interface on a tiny synthetic dataset (random backbone, one epoch)."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
KEYS = {"name", "teacher", "miou", "anomaly_miou", "anomaly_f1", "binary_iou", "binary_recall",
        "binary_precision"}


@pytest.fixture(scope="module")
def quality():
    sys.path.insert(0, str(ROOT / "bench"))
    import quality

    return quality


def quick_run(tmp_path: Path, quality, rows: str = "b2p") -> tuple[Path, Path]:
    """(data, run folder) of a one-epoch frozen run from box fill on six tiny photos."""
    from ml.datasets.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", n=6, size=96, seed=3)
    out = tmp_path / "out"
    assert quality.main(["--data", str(data), "--quick", "--epochs", "1", "--input-size", "28",
                         "--backbone-weights", "none", "--teachers", "box", "--mode", "frozen",
                         "--crop", "0", "--rows", rows, "--out", str(out)]) == 0
    return data, out


def test_quick_run_writes_the_documented_json_split_and_figure(tmp_path, quality):
    from ml.datasets.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", n=6, size=96, seed=3)
    out = tmp_path / "out"
    rc = quality.main(["--data", str(data), "--quick", "--epochs", "1", "--input-size", "28",
                       "--backbone-weights", "none", "--teachers", "box",
                       "--rows", "b2p,b2p oracle", "--out", str(out)])
    assert rc == 0
    result = json.loads((out / "quality.json").read_text())
    assert result["dataset"] == "synthetic_blades"
    names = [(r["name"], r["teacher"]) for r in result["rows"]]
    assert names == [("box fill", None), ("b2p", "box"), ("b2p oracle", None)]
    for row in result["rows"]:
        assert KEYS <= row.keys()
        # NaN: precision of a student that marks no pixel (one epoch) is undefined
        assert all(0.0 <= row[k] <= 1.0 or (k == "binary_precision" and math.isnan(row[k]))
                   for k in KEYS - {"name", "teacher"})
    trained = [r for r in result["rows"] if r["name"].startswith("b2p")]
    assert all(r["trainable_params"] > 0 and r["train_seconds"] > 0 for r in trained)
    for r in trained:  # the student alone, and the product's output beside it
        assert {f"product_{k}" for k in quality.METRICS} <= r.keys()
        assert 0.0 <= r["fallback_share"] <= 1.0
        assert all(0.0 <= r[f"product_{k}"] <= 1.0 or math.isnan(r[f"product_{k}"])
                   for k in quality.METRICS)
        if r["fallback_share"] == 0.0:  # no box fell back: the product is the student alone
            assert r["product_binary_iou"] == r["binary_iou"]
    assert result["note"] == quality.QUICK_NOTE
    split = json.loads((out / "split.json").read_text())
    assert split["test"] == result["split"]["test"] and not set(split["test"]) & set(
        split["train"])
    assert (out / "examples_synthetic_blades.png").stat().st_size > 10_000
    assert (out / "panel_synthetic_blades.png").stat().st_size > 1000  # photo, teacher, student
    md = (out / "quality.md").read_text()
    assert "| b2p | box |" in md and quality.QUICK_NOTE in md and "fallback_share" in md


def test_student_alone_is_scored_without_the_teachers_fallback(tmp_path, quality):
    """A student that finds nothing scores nothing; the product column holds the teacher."""
    import numpy as np
    import torch

    from ml.common.classes import DEFAULT_CLASSES
    from ml.common.images import save_label
    from ml.project.store import Box, Project
    from ml.student.checkpoint import save_checkpoint
    from ml.student.config import ModelCard, StudentConfig
    from ml.student.models import build_model
    from tests.conftest import write_photo

    photos = tmp_path / "photos"
    write_photo(photos / "a.png", 64, 48)
    proj = Project.create(tmp_path / "p", photos, DEFAULT_CLASSES)
    key = proj.keys()[0]
    proj.set_boxes(key, [Box(10, 10, 30, 30, 1)])
    gt = np.zeros((48, 64), np.uint8)
    gt[12:28, 12:28] = 1
    save_label(tmp_path / "gt" / "a.png", gt)
    cfg = StudentConfig(input_size=28, backbone_weights="none", taps=(0, 1),
                        decoder_channels=32)
    model = build_model(cfg)
    with torch.no_grad():  # a student that finds nothing: background everywhere
        head = model.decoder.fine_head
        head.weight.zero_()
        head.bias.copy_(torch.tensor([50.0, 0.0, 0.0]))
    d = save_checkpoint(tmp_path / "m", model, ModelCard(student=cfg, classes=[
        c.to_json() for c in DEFAULT_CLASSES]))
    row, alone = quality.eval_model(d, proj, [key], tmp_path / "gt", {key: gt},
                                    ["background", "dirt", "damage"], False, "cpu")
    assert not alone[key].any()
    assert row["binary_iou"] == 0.0 and row["fallback_share"] == 1.0
    assert row["product_binary_iou"] == 1.0  # the teacher's (here perfect) mask


def test_merge_keeps_each_row_once_and_refuses_other_splits(quality):
    sys.path.insert(0, str(ROOT / "bench"))
    from merge_quality import merge

    base = {"dataset": "d", "split": {"seed": 0, "train": 3, "test": ["a"]}, "command": "x",
            "seconds": 1.0}
    a = {**base, "rows": [{"name": "box fill", "teacher": None}, {"name": "b2p",
                                                                  "teacher": "box"}]}
    b = {**base, "rows": [{"name": "box fill", "teacher": None}, {"name": "unet",
                                                                  "teacher": "box"}]}
    assert [r["name"] for r in merge([a, b])["rows"]] == ["box fill", "b2p", "unet"]
    with pytest.raises(ValueError):
        merge([a, {**b, "split": {"seed": 1, "train": 3, "test": ["b"]}}])


def test_box_loss_and_rounds_rows_run_in_the_quick_bench(tmp_path, quality):
    from ml.datasets.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", n=6, size=96, seed=3)
    out = tmp_path / "out"
    rows = ["b2p +box loss", "b2p +box loss -pairwise", "b2p 2 rounds", "b2p whole image"]
    rc = quality.main(["--data", str(data), "--quick", "--epochs", "1", "--input-size", "28",
                       "--backbone-weights", "none", "--teachers", "box", "--mode", "frozen",
                       "--crop", "0", "--rows", ",".join(rows), "--out", str(out)])
    assert rc == 0
    result = json.loads((out / "quality.json").read_text())
    assert [r["name"] for r in result["rows"]] == ["box fill", *rows]
    for row in result["rows"]:
        # a student that finds nothing has no precision: NaN, never a made-up figure
        assert all(0.0 <= row[k] <= 1.0 or (k == "binary_precision" and math.isnan(row[k]))
                   for k in KEYS - {"name", "teacher"})
    assert (out / "work" / "models" / "box_b2p_2_rounds" / "round2" / "config.json").is_file()


def test_rows_for_one_teacher_replace_the_shared_row_lists(tmp_path, quality):
    from ml.datasets.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", n=6, size=96, seed=3)
    out = tmp_path / "out"
    rc = quality.main(["--data", str(data), "--quick", "--epochs", "1", "--input-size", "28",
                       "--backbone-weights", "none", "--teachers", "grabcut,box",
                       "--mode", "frozen", "--crop", "0", "--rows-for", "grabcut=",
                       "--rows-for", "box=b2p", "--out", str(out)])
    assert rc == 0
    rows = json.loads((out / "quality.json").read_text())["rows"]
    assert [(r["name"], r["teacher"]) for r in rows] == [
        ("box fill", None), ("teacher", "grabcut"), ("b2p", "box")]
    with pytest.raises(SystemExit) as e:
        quality.main(["--data", str(data), "--rows-for", "grabcut", "--out", str(tmp_path / "x")])
    assert e.value.code == 2 and not (tmp_path / "x").exists()  # refused before any work


def test_refine_bench_scores_every_variant_on_held_out_and_training_photos(tmp_path, quality):
    import refine

    data, out = quick_run(tmp_path, quality)
    assert refine.main([str(out), "--data", str(data), "--model", "box_b2p"]) == 0
    rows = [line.split(" | ") for line in (out / "refine_box_b2p.md").read_text().splitlines()
            if line.startswith("| ") and not line.startswith("| variant")]
    assert [r[0].lstrip("| ") for r in rows] == list(refine.VARIANTS)
    assert all(0.0 <= float(v.strip(" |")) <= 1.0 for r in rows for v in r[1:])


def test_auto_choice_bench_scores_picks_against_fixed_candidates_and_the_ceiling(tmp_path,
                                                                                  quality):
    import auto_choice

    from ml.datasets.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", n=4, size=96, seed=3)
    out = tmp_path / "auto_choice.md"
    assert auto_choice.main(["--data", str(data), "--out", str(out)]) == 0
    rows = dict(line.strip("| ").split(" | ") for line in out.read_text().splitlines()
                if line.startswith("| ") and not line.startswith(("| rule", "| candidate"))
                and line.count("|") == 3)
    scores = {k: float(v) for k, v in rows.items()}
    assert {"auto", "always box", "best per box"} <= scores.keys()
    assert all(0.0 <= v <= 1.0 for v in scores.values())
    # the ceiling picks per box: it is never below auto's picks nor below any fixed candidate
    assert scores["best per box"] >= max(v for k, v in scores.items() if k != "best per box")


def test_auto_choice_ceiling_maximises_the_summed_iou():
    sys.path.insert(0, str(ROOT / "bench"))
    from auto_choice import summarise

    # box 1: "a" has the higher IoU (1/2 > 40/100), yet "b" gives the sum more: picking each
    # box's highest IoU (a, a: 11/102) is not the ceiling (b, a: 50/200)
    per_box = [({"": (0, 100), "a": (1, 2), "b": (40, 100)}, "a"),
               ({"": (0, 100), "a": (10, 100), "b": (5, 100)}, "b")]
    s = summarise(per_box)["rows"]
    assert s["auto"] == pytest.approx(6 / 102)
    assert s["always a"] == pytest.approx(11 / 102) and s["always b"] == pytest.approx(45 / 200)
    assert s["best per box"] == pytest.approx(50 / 200)


def test_average_bench_scores_each_model_and_the_mean_of_their_probabilities(tmp_path,
                                                                              quality):
    import average

    data, out = quick_run(tmp_path, quality, "b2p,b2p oracle")
    proj = average.Project.open(out / "work" / "project")
    test = json.loads((out / "split.json").read_text())["test"]
    models = [out / "work" / "models" / "box_b2p", out / "work" / "models" / "b2p_oracle"]
    masks, names = data / "masks", quality.dataset_classes(data)
    rows = average.score_average(models, proj, test, masks, names)
    assert [name for name, _ in rows] == [*map(str, models), "average of 2"]
    assert all(0.0 <= s["binary_iou"] <= 1.0 for _, s in rows)
    # a model averaged with itself is that model
    (_, alone), _, (_, same) = average.score_average([models[0]] * 2, proj, test, masks, names)
    assert same["binary_iou"] == alone["binary_iou"]
    table = tmp_path / "average.md"
    assert average.main([str(out), *map(str, models), "--data", str(data), "--out",
                         str(table)]) == 0
    assert "| average of 2 |" in table.read_text()


def test_rescore_by_pad_reproduces_the_runs_figure_at_the_default_pad(tmp_path, quality):
    import rescore

    from ml.prediction.box_constraint import BOX_PAD

    data, out = quick_run(tmp_path, quality)
    assert rescore.main([str(out), "--data", str(data), "--box-pad", f"{BOX_PAD},6"]) == 0
    result = json.loads((out / "rescored_pad.json").read_text())
    (row,) = result["rows"]
    run_row = next(r for r in json.loads((out / "quality.json").read_text())["rows"]
                   if r["name"] == "b2p")
    assert row["model"] == "out/box_b2p" and result["pads"] == [BOX_PAD, 6]
    assert row[f"pad {BOX_PAD} binary_iou"] == pytest.approx(run_row["binary_iou"])
    assert 0.0 <= row["pad 6 binary_iou"] <= 1.0
    assert "| out/box_b2p |" in (out / "rescored_pad.md").read_text()
    # other model folders of the same split, scored on this run's project
    model = out / "work" / "models" / "box_b2p"
    assert rescore.main([str(out), "--data", str(data), "--box-pad", "0",
                         "--models", str(model), str(tmp_path / "nothing")]) == 0
    assert len(json.loads((out / "rescored_pad.json").read_text())["rows"]) == 1
