"""Importing a folder of photos makes the next inspection; the ones already there stay."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.cli import main
from ml.findings.inspections import find_inspection, inspections, set_inspection
from ml.findings.photo_import import ALREADY, import_photos
from ml.metadata.values import guessed
from ml.project.store import Project, ProjectError
from tests._drone_photo import write_drone_photo


def _card(folder: Path, n: int = 3, taken: str | None = "2025:06:18 10:00:00",
          start: int = 0) -> Path:
    """``n`` photos in ``folder``: JPEGs with a capture time, or PNGs without any."""
    for i in range(start, start + n):
        if taken is None:
            folder.mkdir(parents=True, exist_ok=True)
            rng = np.random.default_rng(i)
            Image.fromarray(rng.integers(0, 255, (40, 60, 3), dtype=np.uint8)).save(
                folder / f"p{i}.png")
        else:
            write_drone_photo(folder / f"DJI_{i:04d}.jpg", taken=taken)
    return folder


@pytest.fixture
def project(tmp_path) -> Project:
    """A project over last year's photos, their inspection set by a person."""
    photos = _card(tmp_path / "photos" / "2024", taken="2024:06:10 09:00:00")
    proj = Project.create(tmp_path / "proj", photos.parent)
    set_inspection(proj, "2024-06-10", proj.keys())
    return proj


def test_a_new_folder_is_the_next_inspection_dated_by_its_capture_dates(project, tmp_path):
    before = project.keys()
    res = import_photos(project, _card(tmp_path / "card" / "2025"))
    assert res.new_inspection and res.inspection == "2025-06-18" and not res.again
    assert "capture dates" in res.dated_by and "3 of 3" in res.dated_by
    assert res.folder == "2025" and sorted(res.done) == [f"2025/DJI_{i:04d}.jpg" for i in range(3)]
    assert all(project.image_path(k).is_file() for k in res.done)  # linked or copied in
    assert res.placed in ("hard-linked", "copied")
    found, undated = inspections(project)
    assert [(i.name, i.guessed) for i in found] == [("2024-06-10", False), ("2025-06-18", True)]
    assert set(found[0].keys) == set(before) and not undated  # the old one is intact
    meta = project.record(res.done[0]).meta
    assert "capture dates" in guessed(meta)["inspection"]
    assert "new inspection 2025-06-18" in res.summary()


def test_importing_the_same_folder_again_makes_no_new_inspection(project, tmp_path):
    card = _card(tmp_path / "card" / "2025")
    first = import_photos(project, card)
    again = import_photos(project, card)
    assert again.again and not again.new_inspection and again.done == ()
    assert set(again.skipped) == set(first.done) and set(again.skipped.values()) == {ALREADY}
    assert len(inspections(project)[0]) == 2
    _card(card, n=1, start=7)  # one photo more on the card: it joins that inspection
    more = import_photos(project, card, date="2025-07-01")
    assert more.done == ("2025/DJI_0007.jpg",) and more.inspection == "2025-06-18"
    assert "no new inspection" in more.summary() and "--date 2025-07-01 not used" in \
        more.warnings[0]
    found, _ = inspections(project)
    assert [i.name for i in found] == ["2024-06-10", "2025-06-18"] and len(found[1].keys) == 4


def test_two_inspections_on_one_day_stay_distinct_and_are_told_apart(project, tmp_path):
    a = import_photos(project, _card(tmp_path / "morning" / "flight1"))
    b = import_photos(project, _card(tmp_path / "afternoon" / "flight2"))
    assert (a.inspection, b.inspection) == ("2025-06-18", "2025-06-18 #2")
    assert "another inspection is dated 2025-06-18" in b.dated_by
    found, _ = inspections(project)
    assert [i.name for i in found] == ["2024-06-10", "2025-06-18", "2025-06-18 #2"]
    assert set(found[1].keys) == set(a.done) and set(found[2].keys) == set(b.done)
    assert find_inspection(found, "2025-06-18 #2") is found[2]
    assert find_inspection(found, "2025-06-18") is found[1]
    set_inspection(project, "2025-06-18 #3", a.done)  # a person renames the first of the day
    found, _ = inspections(project)
    assert [i.name for i in found] == ["2024-06-10", "2025-06-18 #2", "2025-06-18 #3"]
    with pytest.raises(ProjectError, match="2 inspections on 2025-06-18: 2025-06-18 #2, "):
        find_inspection(found, "2025-06-18")  # which one is meant is refused, never guessed


def test_photos_without_a_capture_date_are_dated_today_and_it_is_said(project, tmp_path):
    res = import_photos(project, _card(tmp_path / "plain", taken=None))
    assert res.inspection == _dt.date.today().isoformat()
    assert res.dated_by.startswith("today's date: no photo recorded a capture date")
    given = import_photos(project, _card(tmp_path / "plain2", taken=None), date="2025-07-01")
    assert given.inspection == "2025-07-01" and given.dated_by == "the date given"
    assert "inspection" not in guessed(project.record(given.done[0]).meta)  # a person's date


def test_a_folder_inside_the_photo_folder_is_imported_where_it_lies(project):
    inside = _card(project.image_root / "2025", n=2)
    res = import_photos(project, inside)
    assert res.placed == "" and res.folder == "2025" and res.new_inspection
    assert sorted(res.done) == ["2025/DJI_0000.jpg", "2025/DJI_0001.jpg"]
    with pytest.raises(ProjectError, match="imported where it lies"):
        import_photos(project, inside, into="other")


def test_a_different_folder_of_the_same_name_is_refused_before_copying(project, tmp_path):
    ours = _card(project.image_root / "2025", n=1)
    project.scan()
    theirs = _card(tmp_path / "elsewhere" / "2025", n=2, taken="2025:06:19 10:00:00")
    (theirs / "DJI_0000.jpg").write_bytes((theirs / "DJI_0000.jpg").read_bytes() + b"\0" * 9)
    with pytest.raises(ProjectError, match="--into NAME"):
        import_photos(project, theirs)
    assert not (ours / "DJI_0001.jpg").exists()  # nothing copied
    res = import_photos(project, theirs, into="2025b")
    assert res.folder == "2025b" and res.inspection == "2025-06-19" and len(res.done) == 2


def test_bad_folders_are_refused(project, tmp_path):
    with pytest.raises(ProjectError, match="not found"):
        import_photos(project, tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ProjectError, match="no photos"):
        import_photos(project, tmp_path / "empty")
    with pytest.raises(ProjectError, match="holds the project's photo folder"):
        import_photos(project, tmp_path)
    (project.root / "masks" / "teacher").mkdir(parents=True, exist_ok=True)
    _card(project.root / "masks" / "teacher", n=1)
    with pytest.raises(ProjectError, match="the project's own folders"):
        import_photos(project, project.root / "masks" / "teacher")
    again = import_photos(project, project.image_root)  # the whole photo folder: known
    assert again.again and again.folder == "" and not again.new_inspection


def test_b2p_import_photos(project, tmp_path, capsys):
    card = _card(tmp_path / "card" / "2025")
    assert main(["import", str(project.root), "--photos", str(card)]) == 0
    out = capsys.readouterr().out
    assert "3 new photo(s) in 2025/" in out and "new inspection 2025-06-18, dated by the " \
        "photos' capture dates" in out
    assert main(["import", str(project.root), "--photos", str(card)]) == 0
    assert "imported before: no new inspection" in capsys.readouterr().out
    assert main(["import", str(project.root), "--yolo", str(card), "--date", "2025-01-01"]) == 1
