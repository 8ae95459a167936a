"""bench/quality.py's interface on a tiny synthetic dataset (random backbone, one epoch)."""

from __future__ import annotations

import json
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


def test_quick_run_writes_the_documented_json_split_and_figure(tmp_path, quality):
    from ml.synthetic import write_dataset

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
        assert all(0.0 <= row[k] <= 1.0 for k in KEYS - {"name", "teacher"})
    trained = [r for r in result["rows"] if r["name"].startswith("b2p")]
    assert all(r["trainable_params"] > 0 and r["train_seconds"] > 0 for r in trained)
    split = json.loads((out / "split.json").read_text())
    assert split["test"] == result["split"]["test"] and not set(split["test"]) & set(
        split["train"])
    assert (out / "examples_synthetic_blades.png").stat().st_size > 10_000
    assert "| b2p | box |" in (out / "quality.md").read_text()


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
    from ml.synthetic import write_dataset

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
        assert all(0.0 <= row[k] <= 1.0 for k in KEYS - {"name", "teacher"})
    assert (out / "work" / "models" / "box_b2p_2_rounds" / "round2" / "config.json").is_file()
