"""The findings review: listing, filters, a reviewer's decisions with undo, CSV and the CLI."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from ml.findings.report import collect, write_report
from ml.findings.review import (
    CSV_COLUMNS,
    FindingFilter,
    find_finding,
    findings_csv,
    list_findings,
    restore_review,
    set_review,
    with_reviews,
)
from ml.findings.severity import RegionReview, overrides, set_override
from ml.project.regions import find_regions
from ml.project.store import Project, ProjectError
from tests.conftest import write_photo

NAMES = ["T1/A/LE/p1.png", "T1/B/PS/p2.png", "T2/A/TE/p3.png", "clean.png"]


def _label(i: int) -> np.ndarray:
    lab = np.zeros((48, 64), np.uint8)
    lab[4:12, 4 + i:20 + i] = 2  # 8 x 16 px of damage: 128 px, 16 px long
    lab[30:34, 40:50] = 1  # 4 x 10 px of dirt
    return lab


@pytest.fixture
def inspected(tmp_path) -> Project:
    """Three photos with two regions each (GSD known on the first), one without a mask."""
    from ml.metadata.values import from_folders

    for i, n in enumerate(NAMES):
        write_photo(tmp_path / "photos" / n, 64, 48, i)
    proj = Project.create(tmp_path / "proj", tmp_path / "photos")
    from_folders(proj)
    for i, key in enumerate(proj.keys()):
        if key != "clean.png":
            proj.save_teacher_mask(key, _label(i), "grabcut")
    proj.set_meta("T1/A/LE/p1.png", gsd_mm=2.0)
    return proj


def _damage(rows, key):
    return next(r for r in rows if r.key == key and r.finding.class_name == "damage")


def test_project_list_has_size_length_rule_action_and_place(inspected):
    found = list_findings(inspected)
    assert len(found.rows) == 6 and found.not_inspected == ["clean.png"] and not found.failed
    assert [r.key for r in found.rows][::2] == NAMES[:3]  # project order, worst first in each
    row = _damage(found.rows, "T1/A/LE/p1.png")
    f = row.finding
    assert (row.turbine, row.blade, row.side, row.mask) == ("T1", "A", "leading_edge", "teacher")
    assert f.region.area == 128 and f.area_mm2 == pytest.approx(128 * 4.0)
    assert f.length_px == pytest.approx(16.0) and f.length_mm == pytest.approx(32.0)
    # 512 mm^2 reaches the first damage step (100 mm^2): 2 + 1
    assert f.suggested == 3 and f.reviewer is None and not f.accepted and f.note == ""
    assert "damage: 2 + 1 per size step reached (100, 2500, 40000 mm²)" in f.rule
    assert f.rule.endswith("512 mm² reaches 1 -> 3")
    assert f.category.name == "Moderate" and "Plan a repair" in f.category.action
    other = _damage(found.rows, "T2/A/TE/p3.png").finding  # no GSD: sizes relative
    assert other.area_mm2 is None and other.length_mm is None and "% of the image" in other.rule
    one = list_findings(inspected, key="T1/B/PS/p2.png")
    assert {r.key for r in one.rows} == {"T1/B/PS/p2.png"} and len(one.rows) == 2
    with pytest.raises(ProjectError, match="no image 'nope.png'"):
        list_findings(inspected, key="nope.png")


def test_filters_by_severity_class_place_and_review_state(inspected):
    def keys(**kw):
        return sorted((r.key, r.finding.class_name)
                      for r in list_findings(inspected, where=FindingFilter(**kw)).rows)

    assert keys(class_name="dirt") == [(k, "dirt") for k in NAMES[:3]]
    assert keys(turbine="T1", blade="B") == [("T1/B/PS/p2.png", "damage"),
                                             ("T1/B/PS/p2.png", "dirt")]
    levels = {(r.key, r.finding.class_name): r.finding.severity
              for r in list_findings(inspected).rows}
    top = max(levels.values())
    assert keys(severity=top) == sorted(k for k, v in levels.items() if v == top)
    assert keys(severity=1, at_least=True) == sorted(levels)
    rid = _damage(list_findings(inspected).rows, "T1/A/LE/p1.png").region_id
    set_review(inspected, "T1/A/LE/p1.png", rid, accepted=True)
    assert ("T1/A/LE/p1.png", "damage") not in keys(unreviewed=True)
    assert len(keys(unreviewed=True)) == 5
    with pytest.raises(ProjectError, match="1-5"):
        FindingFilter(severity=6)


def test_review_is_saved_at_once_and_undone_exactly(inspected):
    key = "T1/A/LE/p1.png"
    rid = _damage(list_findings(inspected).rows, key).region_id
    prev = set_review(inspected, key, rid, level=5, by="ana")
    assert prev == RegionReview()
    prev2 = set_review(inspected, key, rid, note="  crack at the root, 30 mm ")
    assert prev2.level == 5 and prev2.note == ""
    set_review(inspected, key, rid, accepted=True)
    reopened = Project.open(inspected.root)  # saved in the index, not only in memory
    f = find_finding(reopened, key, rid).finding
    assert (f.severity, f.reviewer, f.suggested) == (5, 5, 3)
    assert f.note == "crack at the root, 30 mm" and f.accepted
    assert f.category.name == "Critical"
    assert overrides(reopened.record(key)) == {rid: 5}
    # undo the note (the accept stays), then clear the level: note and accept are kept
    restore_review(inspected, key, rid, prev2)
    r = find_finding(inspected, key, rid).finding
    assert r.note == "" and r.severity == 5 and not r.accepted
    set_review(inspected, key, rid, level=None, note="check again")
    r = find_finding(inspected, key, rid).finding
    assert r.reviewer is None and r.severity == r.suggested and r.note == "check again"
    restore_review(inspected, key, rid, prev)  # back to nothing: the entry goes away
    assert rid not in Project.open(inspected.root).record(key).findings["severity_overrides"]
    with pytest.raises(ProjectError, match="1-5"):
        set_review(inspected, key, rid, level=0)


def test_rows_take_new_decisions_without_reading_masks_again(inspected, monkeypatch):
    rows = list_findings(inspected).rows
    dirt = next(r for r in rows if r.key == "T1/A/LE/p1.png" and r.finding.class_name == "dirt")
    set_review(inspected, dirt.key, dirt.region_id, level=5, note="n", accepted=True)
    monkeypatch.setattr("ml.findings.review.find_regions", None)  # any mask read would fail
    fresh = with_reviews(inspected, rows)
    assert [r.region_id for r in fresh] == [r.region_id for r in rows]  # order kept
    f = next(r for r in fresh if r.region_id == dirt.region_id and r.key == dirt.key).finding
    assert (f.severity, f.reviewer, f.note, f.accepted) == (5, 5, "n", True)
    assert f.category.name == "Critical" and f.suggested == dirt.finding.suggested
    assert sum(r.finding.overridden for r in fresh) == 1


def test_set_override_keeps_working_beside_notes(inspected):
    key = "T1/B/PS/p2.png"
    rid = find_regions(inspected.load_mask(key, "teacher")).regions[0].id
    set_override(inspected, key, rid, 4, by="bo", note="old style")
    set_review(inspected, key, rid, accepted=True)
    set_override(inspected, key, rid, None)
    f = find_finding(inspected, key, rid).finding
    assert not f.overridden and f.note == "old style" and f.accepted


def test_report_and_csv_carry_reviewer_severity_note_and_accept(inspected, tmp_path):
    key = "T1/A/LE/p1.png"
    rid = _damage(list_findings(inspected).rows, key).region_id
    set_review(inspected, key, rid, level=4, note="=HYPERLINK(evil) <b>", accepted=True)
    paths = write_report(inspected, tmp_path / "rep")
    with open(paths["csv"], newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS and len(rows) == 6
    row = next(r for r in rows if r["region_id"] == rid)
    assert (row["severity"], row["suggested_severity"], row["override"]) == ("4", "3", "yes")
    assert row["note"] == "'=HYPERLINK(evil) <b>"  # never run as a spreadsheet formula
    assert row["accepted"] == "yes" and row["length_mm"] == "32.0"
    assert row["severity_rule"].endswith("-> 3")
    assert {r["accepted"] for r in rows if r["region_id"] != rid} == {"no"}
    html = paths["html"].read_text(encoding="utf-8")
    assert "<li>#1: =HYPERLINK(evil) &lt;b&gt;</li>" in html
    data = collect(inspected)
    f = next(f for f in data.findings if f.region.id == rid)
    assert f.severity == 4 and f.accepted and f.note.startswith("=HYPERLINK")
    # the list writes the same CSV as the report
    listed = findings_csv(list_findings(inspected).rows)
    assert list(csv.reader(io.StringIO(listed))) == list(
        csv.reader(io.StringIO(paths["csv"].read_text(encoding="utf-8"))))


def test_a_damaged_mask_is_named_and_the_rest_listed(inspected):
    (inspected.root / inspected.record("T1/B/PS/p2.png").teacher.path).write_bytes(b"junk")
    found = list_findings(inspected)
    assert list(found.failed) == ["T1/B/PS/p2.png"] and len(found.rows) == 4


# ----------------------------------------------------------------- CLI
def test_cli_lists_filters_and_writes_csv(inspected, tmp_path, capsys):
    from app.cli import main

    root = str(inspected.root)
    assert main(["findings", root]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split()[:6] == ["PHOTO", "REGION", "CLASS", "SEV", "SUGG",
                                               "REVIEWER"]
    assert "T1/A/LE/p1.png" in out and "Moderate: Plan a repair" in out and "T1/A/leading_edge" \
        in out
    assert "6 finding(s) on 3 photo(s), 0 accepted, 6 to review; 1 photo(s) have no mask" in out
    assert main(["findings", root, "--class", "dirt", "--turbine", "T1", "--csv",
                 str(tmp_path / "f.csv")]) == 0
    out = capsys.readouterr().out
    assert "2 finding(s) on 2 photo(s)" in out
    with open(tmp_path / "f.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert {(r["class"], r["turbine"]) for r in rows} == {("dirt", "T1")} and len(rows) == 2
    assert main(["findings", root, "--severity", "4"]) == 0  # levels here: 1, 3 and 5
    assert "no findings" in capsys.readouterr().out
    assert main(["findings", root, "--severity", "3+"]) == 0
    assert "3 finding(s) on 3 photo(s)" in capsys.readouterr().out
    for bad, msg in ((["--severity", "7"], "--severity must be 1-5"),
                     (["--class", "rust"], "unknown class 'rust'"),
                     (["--accept"], "--accept only go with 'b2p findings set")):
        assert main(["findings", root, *bad]) == 1
        assert msg in capsys.readouterr().err


def test_cli_set_records_decisions_and_names_wrong_regions(inspected, capsys):
    from app.cli import main

    root = str(inspected.root)
    key = "T1/A/LE/p1.png"
    rid = _damage(list_findings(inspected).rows, key).region_id
    assert main(["findings", "set", root, "p1", rid, "--severity", "2", "--note", "ok",
                 "--accept", "--by", "cli"]) == 0
    assert rid in capsys.readouterr().out
    f = find_finding(Project.open(root), key, rid).finding
    assert (f.severity, f.note, f.accepted) == (2, "ok", True)
    assert main(["findings", root, "--unreviewed"]) == 0
    assert "5 finding(s)" in capsys.readouterr().out
    assert main(["findings", "set", root, key, rid, "--clear", "--unaccept"]) == 0
    f = find_finding(Project.open(root), key, rid).finding
    assert (f.reviewer, f.note, f.accepted) == (None, "ok", False)
    for bad, msg in (([key, "2@0,0,1,1", "--accept"], "no region '2@0,0,1,1'"),
                     (["nope.png", rid, "--accept"], "no photo 'nope.png'"),
                     ([key, rid], "nothing to set"),
                     ([key, rid, "--severity", "3+"], "one level 1-5"),
                     ([key, rid, "--severity", "3", "--clear"], "not both"),
                     ([key, rid, "--accept", "--csv", "x.csv"], "--csv only go with listing")):
        assert main(["findings", "set", root, *bad]) == 1
        assert msg in capsys.readouterr().err
