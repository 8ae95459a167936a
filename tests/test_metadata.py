"""Inspection metadata from folder names and from CSV."""

from __future__ import annotations

import pytest

from ml.metadata.values import (
    from_csv,
    from_folders,
    meta_from_path,
    normalize_blade,
    normalize_side,
)
from ml.project.store import ProjectError


def test_spellings_are_normalised():
    assert normalize_side("LE") == normalize_side("Leading-Edge") == "leading_edge"
    assert normalize_side("ss") == normalize_side("suction side") == "suction_side"
    assert normalize_side("tip") is None
    assert normalize_blade("Blade 2") == normalize_blade("b") == "B"
    assert normalize_blade("D") is None


def test_folder_convention_reads_upwards_from_the_photo():
    assert meta_from_path("WTG07/C/TE/x.jpg") == {
        "turbine": "WTG07", "blade": "C", "side": "trailing_edge"}
    assert meta_from_path("site/WTG07/blade_1/x.jpg") == {"turbine": "WTG07", "blade": "A"}
    assert meta_from_path("x.jpg") == {}


def test_from_folders_sets_meta_on_matching_images(project):
    s = from_folders(project)
    assert s.updated == 1 and sorted(s.skipped) == ["a.png", "b.jpg"]
    reopened = type(project).open(project.root)
    assert reopened.record("T01/A/LE/c.png").meta == {
        "turbine": "T01", "blade": "A", "side": "leading_edge",
        "_guessed": {"turbine": "folder name", "blade": "folder name", "side": "folder name"}}


def test_from_folders_never_overwrites_a_persons_value(project):
    project.set_meta("T01/A/LE/c.png", turbine="WTG99")  # no provenance: a person's value
    from_folders(project)
    meta = project.record("T01/A/LE/c.png").meta
    assert meta["turbine"] == "WTG99" and set(meta["_guessed"]) == {"blade", "side"}


def test_from_csv_sets_every_column(project, tmp_path):
    csv = tmp_path / "meta.csv"
    csv.write_text("image,turbine,blade,side,distance_m,date\n"
                   "a.png,WTG01,2,PS,12.5,2025-06-01\n"
                   "c,WTG02,C,suction_side,,\n")
    s = from_csv(project, csv)
    assert s.updated == 2 and s.skipped == ["b.jpg"]
    assert project.record("a.png").meta == {"turbine": "WTG01", "blade": "B",
                                             "side": "pressure_side", "distance_m": 12.5,
                                             "date": "2025-06-01"}
    assert project.record("T01/A/LE/c.png").meta["side"] == "suction_side"


@pytest.mark.parametrize("row, message", [
    ("a.png,W,Z,LE,1,2025-01-01", "line 3: blade 'Z'"),
    ("a.png,W,A,LE,far,2025-01-01", "line 3: distance_m 'far'"),
    ("a.png,W,A,nose,1,2025-01-01", "line 3: side 'nose'"),
    ("a.png,W,A,LE,1,01/02/2025", "line 3: date '01/02/2025'"),
    ("nope.png,W,A,LE,1,2025-01-01", "line 3: no image 'nope.png'"),
    ("a.png,W,A", "line 3: expected 6 cells"),
])
def test_malformed_csv_names_the_line_and_stores_nothing(project, tmp_path, row, message):
    csv = tmp_path / "bad.csv"
    csv.write_text("image,turbine,blade,side,distance_m,date\n"
                   f"b.jpg,W,A,LE,1,2025-01-01\n{row}\n")
    with pytest.raises(ProjectError, match=message):
        from_csv(project, csv)
    assert project.record("b.jpg").meta == {}


def test_csv_without_the_columns_is_rejected(project, tmp_path):
    csv = tmp_path / "bad.csv"
    csv.write_text("file,turbine\na.png,W\n")
    with pytest.raises(ProjectError, match=r"bad.csv, line 1: missing column\(s\) image, blade"):
        from_csv(project, csv)


def test_cli_meta(project, tmp_path, capsys):
    from app.cli import main

    assert main(["meta", str(project.root), "--from-folders"]) == 0
    assert "metadata set on 1 images" in capsys.readouterr().out
    bad = tmp_path / "m.csv"
    bad.write_text("image,turbine,blade,side,distance_m,date\na.png,W,Q,LE,,\n")
    assert main(["meta", str(project.root), "--csv", str(bad)]) == 1
    assert "line 2: blade 'Q'" in capsys.readouterr().err
