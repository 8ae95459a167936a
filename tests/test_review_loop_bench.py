"""bench/review_loop.py on a tiny synthetic set (one round, random backbone, one epoch): it runs
end to end and its table has the columns the README and RESULTS quote, so the bench cannot rot."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from ml.project.store import Project

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ["round", "arm", "decisions", "boxed_photos", "student", "binary_iou", "region_recall",
           "region_precision", "proposals", "queue_first100_real", "queue_holds_true",
           "missed_taught_background"]
LATER = {"queue_first100_real", "queue_holds_true", "missed_taught_background"}  # round 1 on


def test_one_round_on_a_tiny_set_writes_the_table_with_its_columns(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "bench"))
    import review_loop

    from ml.datasets.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", n=8, size=96, seed=1)
    out = tmp_path / "out"
    assert review_loop.main(["--data", str(data), "--photos", "8", "--rounds", "1", "--n", "3",
                             "--k", "1", "--epochs", "1", "--input-size", "28",
                             "--backbone-weights", "none", "--teacher", "box",
                             "--out", str(out)]) == 0
    result = json.loads((out / "review_loop.json").read_text())
    rows = result["rows"]
    assert [(r["round"], r["arm"]) for r in rows] == [(0, "queue"), (0, "file"), (1, "queue"),
                                                      (1, "file")]
    for r in rows:
        assert set(COLUMNS) - LATER <= set(r)
        assert 0.0 <= r["binary_iou"] <= 1.0 and 0.0 <= r["region_recall"] <= 1.0
    assert all(r["student"] == "28 px, 1 ep" for r in rows)
    first = [Project.open(out / "work" / arm).split for arm in ("arm_queue", "arm_file")]
    assert first[0]["val"] == first[1]["val"]  # one split: model 0 calibrated once, the same
    for r in rows[2:]:  # a later round: decisions taken, the queue scored
        assert r["decisions"] == r["accepted"] + r["rejected"] <= 3
        assert r["boxed_photos"] == rows[0]["boxed_photos"] + 1
        assert LATER | {"queue_length"} <= set(r)
        assert 0 <= r["missed_taught_background"] <= r["missed_on_reviewed"]
    table = (out / "review_loop.md").read_text().splitlines()
    header = next(line for line in table if line.startswith("| round"))
    assert [c.strip() for c in header.strip("|").split("|")] == COLUMNS
    assert sum(line.startswith("| 0 ") or line.startswith("| 1 ") for line in table) == 4
    assert "| round" in capsys.readouterr().out  # printed too
    # every row keeps its per-photo counts, and the differences carry their intervals
    test_photos = set(rows[0]["per_photo"])
    assert len(test_photos) == result["test"] and all(set(r["per_photo"]) == test_photos
                                                      for r in rows)
    assert [c["comparison"] for c in result["comparisons"]] == [
        "file: round 1 - round 0", "queue: round 1 - round 0", "round 1: queue - file"]
    for c in result["comparisons"]:
        assert c["low"] <= c["diff"] <= c["high"] and c["photos"] == result["test"]
    assert "| round 1: queue - file |" in "\n".join(table)


def test_the_arms_compared_are_chosen_and_an_unknown_one_is_named(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "bench"))
    import review_loop

    from ml.datasets.synthetic import write_dataset

    with pytest.raises(SystemExit):
        review_loop.main(["--data", "synthetic", "--arms", "queue,random"])
    assert "--arms takes some of queue, photo, file" in capsys.readouterr().err
    data = write_dataset(tmp_path / "data", n=6, size=96, seed=3)
    out = tmp_path / "out"
    assert review_loop.main(["--data", str(data), "--photos", "6", "--rounds", "1", "--n", "2",
                             "--k", "1", "--epochs", "1", "--input-size", "28",
                             "--backbone-weights", "none", "--teacher", "box", "--arms", "photo",
                             "--out", str(out)]) == 0
    rows = json.loads((out / "review_loop.json").read_text())["rows"]
    assert [(r["round"], r["arm"]) for r in rows] == [(0, "photo"), (1, "photo")]
    assert rows[1]["decisions"] <= 2 and rows[1]["boxed_photos"] == rows[0]["boxed_photos"] + 1


def test_queue_quality_scores_a_projects_stored_proposals(tmp_path, capsys):
    sys.path.insert(0, str(ROOT / "bench"))
    import queue_quality
    import review_loop

    from ml.datasets.synthetic import write_dataset

    data = write_dataset(tmp_path / "data", n=6, size=96, seed=2)
    out = tmp_path / "out"
    review_loop.main(["--data", str(data), "--photos", "6", "--rounds", "1", "--n", "2",
                      "--k", "1", "--epochs", "1", "--input-size", "28",
                      "--backbone-weights", "none", "--teacher", "box", "--out", str(out)])
    capsys.readouterr()
    # the queue arm's project holds the round's proposals on the photos nobody boxed
    assert queue_quality.main([str(out / "work" / "arm_queue"), "--gt", str(data / "masks"),
                               "--out", str(tmp_path / "q.json")]) == 0
    result = json.loads((tmp_path / "q.json").read_text())
    assert {"queue_first100_real", "queue_holds_true", "queue_length"} <= set(result)
    assert 0.0 <= result["queue_holds_true"] <= 1.0
    assert json.loads(capsys.readouterr().out) == result


def test_by_photo_keeps_each_photos_proposals_together_in_the_queues_order():
    sys.path.insert(0, str(ROOT / "bench"))
    from review_loop import by_photo

    from ml.findings.queue import QueueItem
    from ml.prediction.proposals import Proposal

    def item(key: str, pid: str) -> QueueItem:
        return QueueItem(key, Proposal(pid, 1, (0, 0, 4, 4), 16, 0.5, 0.5), "dirt", 0.5, 3, "")

    q = [item("b", "1"), item("a", "1"), item("b", "2"), item("c", "1"), item("a", "2")]
    assert [i.id for i in by_photo(q)] == ["b:1", "b:2", "a:1", "a:2", "c:1"]
    assert by_photo([]) == []


def test_taught_background_counts_the_missed_defects_a_reviewed_photo_teaches_as_background(
        tmp_path):
    sys.path.insert(0, str(ROOT / "bench"))
    import numpy as np
    import review_loop
    from PIL import Image

    from ml.findings import decisions as DEC
    from ml.prediction.proposals import record_proposals

    photos, masks = tmp_path / "photos", tmp_path / "masks"
    photos.mkdir()
    masks.mkdir()
    gt = np.zeros((64, 80), np.uint8)
    gt[10:20, 10:20] = 1  # found and accepted
    gt[40:55, 50:70] = 1  # missed by the model on one photo, found but undecided on the other
    for key in ("a.png", "b.png"):
        Image.fromarray(np.full((64, 80, 3), 90, np.uint8)).save(photos / key)
        Image.fromarray(gt).save(masks / key)
    proj = Project.create(tmp_path / "p", photos)
    for key, found in (("a.png", gt[:30]), ("b.png", gt)):
        label = np.zeros_like(gt)
        label[: len(found)] = found
        conf = np.full(gt.shape, 220, np.uint8)
        proj.save_student(key, label, model="m", confidence=conf)
        first = min(record_proposals(proj, key, label, conf, "m"), key=lambda p: p.box[1])
        DEC.decide(proj, key, first.id, DEC.ACCEPTED, cls=1)
    got = review_loop.taught_background(proj, masks, min_area=12)
    # a.png: the missed defect is the proposing model's background; b.png's stays IGNORE
    assert got == {"reviewed_only_photos": 2, "missed_on_reviewed": 2,
                   "missed_taught_background": 1}
