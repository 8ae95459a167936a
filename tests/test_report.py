"""Inspection reports: HTML (self-contained, escaped), PDF pages, findings.csv, metrics."""

from __future__ import annotations

import csv
import re

import numpy as np
import pytest

from ml.common.progress import Cancelled
from ml.findings.report import write_report
from ml.findings.severity import set_override
from ml.project.regions import find_regions
from ml.project.store import Box, Project
from tests.conftest import write_photo

NAMES = ["WTG01/A/LE/p1.png", "WTG01/B/PS/p2.png", "WTG02/C/TE/<script>.png", "clean.png"]


def _label(h: int, w: int, i: int) -> np.ndarray:
    lab = np.zeros((h, w), np.uint8)
    lab[4:12, 4 + i:20 + i] = 2
    lab[30:34, 40:50] = 1
    return lab


@pytest.fixture
def inspected(tmp_path) -> Project:
    """Three images with defects (student on one), one clean, metadata from folders."""
    from ml.metadata.values import from_folders

    for i, n in enumerate(NAMES):
        write_photo(tmp_path / "photos" / n, 64, 48, i)
    proj = Project.create(tmp_path / "proj", tmp_path / "photos")
    from_folders(proj)
    for i, key in enumerate(proj.keys()):
        lab = np.zeros((48, 64), np.uint8) if key == "clean.png" else _label(48, 64, i)
        proj.set_boxes(key, [Box(3, 3, 30, 14, 2)] if lab.any() else [])
        proj.save_teacher_mask(key, lab, "grabcut", {"iters": 5})
    key = "WTG01/A/LE/p1.png"
    proj.save_student(key, _label(48, 64, 0), "abc123def456",
                      confidence=np.full((48, 64), 204, np.uint8))
    proj.set_reviewed(key)
    return proj


def _csv_rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_html_is_self_contained_and_escapes_file_names(inspected, tmp_path):
    paths = write_report(inspected, tmp_path / "rep")
    text = paths["html"].read_text(encoding="utf-8")
    assert not re.search(r"https?://", text)
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", text)
    assert "<script" not in text.lower()
    assert "&lt;script&gt;.png" in text
    assert text.count("data:image/jpeg;base64,") == 3  # one overlay per image with findings
    assert "reviewed by a person" in text and "Stop the turbine" in text


def test_pdf_has_summary_overview_image_and_provenance_pages(inspected, tmp_path):
    from pypdf import PdfReader

    paths = write_report(inspected, tmp_path / "rep", pdf=True)
    reader = PdfReader(str(paths["pdf"]))
    # summary + (turbines, priority, clean list) + 3 images with findings + provenance
    assert len(reader.pages) == 1 + 1 + 3 + 1
    page3 = reader.pages[2].extract_text()
    assert "WTG01/A/LE/p1.png" in page3 and "Reviewed by a person" in page3
    assert "page 6 of 6" in reader.pages[5].extract_text()


def test_findings_csv_has_one_row_per_region_with_fallback_and_override(inspected, tmp_path):
    key = "WTG01/B/PS/p2.png"
    rid = find_regions(inspected.load_mask(key, "teacher")).regions[0].id
    set_override(inspected, key, rid, 5)
    paths = write_report(inspected, tmp_path / "rep", gsd=2.0)
    rows = _csv_rows(paths["csv"])
    assert len(rows) == 6  # two regions on each of three images
    by_key = {(r["image"], r["region_id"]): r for r in rows}
    over = by_key[(key, rid)]
    assert over["severity"] == "5" and over["override"] == "yes"
    assert over["turbine"] == "WTG01" and over["blade"] == "B" and over["side"] == "pressure_side"
    # student where predicted, the teacher's mask elsewhere
    assert {r["mask"] for r in rows if r["image"] == "WTG01/A/LE/p1.png"} == {"student"}
    assert {r["mask"] for r in rows if r["image"] == key} == {"teacher"}
    for r in rows:
        assert float(r["area_mm2"]) == pytest.approx(int(r["area_px"]) * 4.0)
        assert float(r["area_pct"]) == pytest.approx(100 * int(r["area_px"]) / (48 * 64),
                                                     abs=1e-3)
    student = [r for r in rows if r["mask"] == "student"]
    assert all(float(r["confidence"]) == pytest.approx(0.8) for r in student)
    text = paths["html"].read_text(encoding="utf-8")
    assert "set by reviewer" in text and "mm²" in text


def test_teacher_source_report_and_metrics_against_ground_truth(inspected, tmp_path):
    from ml.common.images import save_label

    gt = tmp_path / "gt"
    for key in inspected.keys():  # ground truth = the teacher masks: perfect scores
        rel = key.rsplit(".", 1)[0] + ".png"
        save_label(gt / rel, inspected.load_mask(key, "teacher"))
    paths = write_report(inspected, tmp_path / "rep", source="teacher", gt_dir=gt)
    text = paths["html"].read_text(encoding="utf-8")
    m = re.search(r"<td>mIoU</td><td class=\"n\">([0-9.]+)</td>", text)
    assert m and float(m.group(1)) == pytest.approx(1.0)
    assert {r["mask"] for r in _csv_rows(paths["csv"])} == {"teacher"}


def test_stopping_writes_nothing(inspected, tmp_path):
    seen = []
    with pytest.raises(Cancelled):
        write_report(inspected, tmp_path / "rep", progress=seen.append,
                     should_stop=lambda: len(seen) >= 2)
    assert not (tmp_path / "rep").exists()


def test_cli_report_and_export(inspected, tmp_path, capsys):
    from app.cli import main

    assert main(["report", str(inspected.root), "--out", str(tmp_path / "r")]) == 0
    assert (tmp_path / "r" / "report.html").is_file()
    assert main(["export", str(inspected.root), "--format", "coco", "--source", "teacher",
                 "--out", str(tmp_path / "c.json")]) == 0
    assert "4 images, 6 regions exported as coco" in capsys.readouterr().out
    assert main(["report", str(inspected.root), "--out", str(tmp_path / "r"),
                 "--gsd", "-1"]) == 1
    assert "--gsd must be a positive" in capsys.readouterr().err


def test_provenance_names_the_student_model_from_its_folder(inspected, tmp_path):
    import hashlib
    import json

    d = inspected.models_dir() / "run1"
    d.mkdir(parents=True)
    (d / "model.safetensors").write_bytes(b"weights")
    (d / "config.json").write_text(json.dumps({
        "student": {"arch": "b2p", "backbone": "vit_small_patch14_dinov2", "mode": "bitfit"},
        "backbone_source": "offline DINOv2-derived", "app_version": "0.1.0"}))
    mid = hashlib.sha256(b"weights").hexdigest()[:12]
    key = "WTG01/B/PS/p2.png"
    inspected.save_student(key, inspected.load_mask(key, "teacher"), mid)
    text = write_report(inspected, tmp_path / "rep")["html"].read_text(encoding="utf-8")
    assert f"{mid} (1 images)" in text
    assert "offline DINOv2-derived" in text and "b2p vit_small_patch14_dinov2 bitfit" in text
    assert hashlib.sha256(b"weights").hexdigest() in text
    assert "grabcut {&quot;iters&quot;: 5}" in text


def test_pdf_severity_badges_are_not_painted_over_by_the_row_stripes():
    from reportlab.lib import colors

    from ml.findings.report._pdf import SEVERITY_COLORS, _table

    table = _table(["Severity"], [1.0], [[5], [4], [3], [2]], sev_col=0)
    for row, level in enumerate([5, 4, 3, 2], start=1):
        # reportlab paints BACKGROUND commands in order: the last one covering a cell shows
        last = [c[3] for c in table._bkgrndcmds
                if c[0] == "BACKGROUND" and c[1][1] <= row <= c[2][1] and c[1][0] <= 0]
        assert last[-1] == colors.HexColor(SEVERITY_COLORS[level]), row


def test_report_orders_by_turbine_blade_side_and_marks_guessed_metadata(inspected, tmp_path):
    from ml.findings.report import collect
    from ml.metadata.values import confirm, set_values

    # folder guesses everywhere; a person moves one photo to an earlier turbine and sets GSDs
    set_values(inspected, ["WTG02/C/TE/<script>.png"], turbine="WTG00")
    set_values(inspected, ["WTG01/A/LE/p1.png"], gsd_mm=2.5)
    confirm(inspected, ["WTG01/B/PS/p2.png"])
    data = collect(inspected)
    assert [e.key for e in data.entries] == [
        "WTG02/C/TE/<script>.png", "WTG01/A/LE/p1.png", "WTG01/B/PS/p2.png", "clean.png"]
    text = write_report(inspected, tmp_path / "rep", pdf=True)["html"].read_text("utf-8")
    assert "WTG01* / A* / leading edge*" in text and "· GSD: 2.5 mm/px<" in text
    assert "WTG00 / C* / trailing edge*" in text  # the person's turbine carries no mark
    assert "WTG01 / B / pressure side" in text  # all confirmed
    assert "guessed from folder names" in text and "Guessed metadata" in text
