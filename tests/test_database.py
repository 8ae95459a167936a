"""The project database: what round-trips, many writers, kills, backups and damage."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from ml.project.store import (
    DB_NAME,
    INDEX_NAME,
    Box,
    ChangedElsewhere,
    ImageRecord,
    Project,
    ProjectError,
)
from tests import _backends
from tests._backends import sqlite_only
from tests.conftest import write_photo

REPO = Path(__file__).resolve().parents[1]

backend, project = _backends.backend, _backends.project  # the store on both backends


def test_open_ended_fields_round_trip_and_edits_write_only_their_field(project):
    findings = {"overrides": {"r1": {"level": 3, "note": "é ✓", "by": "ann"}}, "x": [1, 2.5]}
    project.update("a.png", findings=findings, all_defects_boxed=True)
    project.set_meta("a.png", turbine="T07", blade="B")
    stale = Project.open(project.root)  # another writer, which read the record before
    assert stale.record("a.png").meta == {"turbine": "T07", "blade": "B"}
    project.set_meta("a.png", side="LE")
    stale.set_boxes("a.png", [Box(1, 2, 10, 12, 2)])  # writes the boxes only, not its meta
    again = Project.open(project.root).record("a.png")
    assert again.meta == {"turbine": "T07", "blade": "B", "side": "LE"}
    assert again.findings == findings and again.all_defects_boxed is True
    assert [b.xyxy for b in again.boxes] == [(1, 2, 10, 12)]


@dataclass
class _Later(ImageRecord):
    """ImageRecord as another engineer may grow it: a field the store has never heard of."""

    history: list = field(default_factory=list)

    def to_json(self) -> dict:
        return {**super().to_json(), "history": self.history}

    @classmethod
    def from_json(cls, key: str, d: dict) -> _Later:
        base = ImageRecord.from_json(key, d)
        return cls(**{f: getattr(base, f) for f in ImageRecord.__dataclass_fields__},
                   history=list(d.get("history", [])))


def test_a_field_added_to_the_record_round_trips_through_update(project, monkeypatch):
    from ml.project import rows, store

    monkeypatch.setattr(rows, "ImageRecord", _Later)
    monkeypatch.setattr(store, "ImageRecord", _Later)
    project.update("a.png", history=[{"at": "2026-01-01", "what": "repaired"}])
    project.set_boxes("a.png", [Box(0, 0, 3, 3, 1)])  # other writes keep it
    again = Project.open(project.root).record("a.png")
    assert again.history == [{"at": "2026-01-01", "what": "repaired"}]
    with pytest.raises(ProjectError, match="cannot be set"):
        project.update("a.png", width=3)


def test_status_counts_and_filters_are_queries_that_agree_with_the_records(project):
    project.set_boxes("a.png", [Box(0, 0, 3, 3, 1)])
    project.save_teacher_mask("b.jpg", np.zeros((40, 80), np.uint8), "box")
    project.set_reviewed("T01/A/LE/c.png")
    counts = project.status_counts()
    by_record: dict[str, int] = {}
    for rec in project.images.values():
        by_record[rec.status] = by_record.get(rec.status, 0) + 1
    assert counts == by_record == {"boxed": 1, "pseudo-labelled": 1, "reviewed": 1}
    project.save_student("a.png", np.zeros((48, 64), np.uint8), "m1")
    project.save_edited_mask("b.jpg", np.ones((40, 80), np.uint8))
    project.set_reviewed("T01/A/LE/c.png", False)
    by_record = {rec.status: 1 for rec in project.images.values()}
    assert project.status_counts() == by_record == {"predicted": 1, "edited": 1, "no boxes": 1}
    assert project.box_count() == 1 and len(project.images) == 3
    assert project.find_key("c") == "T01/A/LE/c.png" and project.find_key("zz") is None
    assert "a.png" in project.images and "zz.png" not in project.images


def test_an_unchanged_record_is_handed_out_as_the_same_object(project):
    first = project.record("a.png")
    assert project.record("a.png") is first  # the GUI tells changes apart by identity
    Project.open(project.root).set_meta("a.png", turbine="T1")  # another writer
    assert project.record("a.png") is not first
    assert project.record("a.png").meta == {"turbine": "T1"}


def test_export_project_json_is_the_interchange_form_and_opens_again(project, tmp_path):
    from app.cli import main

    project.set_boxes("a.png", [Box(1, 2, 10, 12, 2)])
    project.update("b.jpg", findings={"overrides": {"1": {"level": 2}}})
    out = tmp_path / "moved"
    out.mkdir()
    assert main(["export", str(project.root), "--format", "project-json",
                 "--out", str(out)]) == 0
    data = json.loads((out / INDEX_NAME).read_text())
    assert data["schema"] == 2 and set(data["images"]) == set(project.keys())
    data["image_root"] = str(project.image_root)
    (out / INDEX_NAME).write_text(json.dumps(data))
    moved = Project.open(out)  # an old-style project: migrated into a database
    assert (out / DB_NAME).is_file()
    assert moved.records() == project.records()


# ------------------------------------------------------------------ many writers
WRITER = """
import sys
from app.cli import main
root, writer, keys = sys.argv[1], sys.argv[2], sys.argv[3:]
for key in keys:
    assert main(["meta", root, "--set", f"turbine=W{writer}", "--where", key]) == 0
"""


def test_four_concurrent_cli_writers_keep_all_sixty_edits(tmp_path, backend):
    photos = tmp_path / "photos"
    for i in range(60):
        write_photo(photos / f"p{i:02d}.png", 16, 12, i)
    proj = Project.create(tmp_path / "p", photos, db=backend)
    keys = proj.keys()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(proj.root), str(w),
                               *keys[w::4]], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE) for w in range(4)]
    for p in procs:
        assert p.wait(timeout=120) == 0, p.stderr.read().decode()
        p.stderr.close()
    kept = {k: r.meta.get("turbine") for k, r in Project.open(proj.root).images.items()}
    assert kept == {k: f"W{i % 4}" for i, k in enumerate(keys)}  # 60 of 60


def test_the_later_of_two_decisions_wins_and_both_writers_are_told(project):
    from ml.findings.severity import RegionReview, reviews, set_review

    gui_a, gui_b = Project.open(project.root), Project.open(project.root)
    seen = reviews(gui_b.record("a.png")).get("r1", RegionReview())  # both see no decision
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fresh decision raises no warning
        set_review(gui_a, "a.png", "r1", level=2, by="ann", seen=seen)
    assert gui_b.changed_elsewhere()  # the other GUI's poll sees it...
    assert not gui_b.changed_elsewhere()  # ...once
    with pytest.warns(ChangedElsewhere, match=r"level changed elsewhere \(by ann"):
        set_review(gui_b, "a.png", "r1", level=4, by="bob", seen=seen)  # decided on stale
    stored = reviews(Project.open(project.root).record("a.png"))["r1"]
    assert (stored.level, stored.by) == (4, "bob")  # the later decision wins
    assert gui_a.changed_elsewhere()  # and the earlier writer is told at its next poll
    trail = project.audit("a.png")
    assert [e["by"] for e in trail[:2]] == [gui_b.user, gui_a.user] and trail[0]["at"]


KILLED_IMPORT = """
import sys
from ml.datasets.importers import import_yolo
from ml.project.store import Project
p = Project.open(sys.argv[1])
print("ready", flush=True)
i = 0
while True:
    i += 1
    import_yolo(p, sys.argv[2 + i % 2])
"""


def test_an_import_killed_at_any_moment_lands_whole_or_not_at_all(tmp_path, backend):
    photos = tmp_path / "photos"
    for i in range(100):
        write_photo(photos / f"p{i:03d}.png", 32, 24, i)
    proj = Project.create(tmp_path / "p", photos, db=backend)
    for n, folder in ((2, tmp_path / "two"), (5, tmp_path / "five")):
        folder.mkdir()
        for k in proj.keys():
            lines = [f"0 {0.1 + j * 0.15:.2f} 0.5 0.1 0.2" for j in range(n)]
            (folder / Path(k).with_suffix(".txt")).write_text("\n".join(lines))
    rng = random.Random(3)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for _ in range(4):
        proc = subprocess.Popen([sys.executable, "-c", KILLED_IMPORT, str(proj.root),
                                 str(tmp_path / "two"), str(tmp_path / "five")], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.2, 1.0))
        proc.kill()  # SIGKILL, mid-import most of the time
        proc.wait()
        proc.stdout.close()
        counts = {len(r.boxes) for r in Project.open(proj.root).images.values()}
        assert counts in ({0}, {2}, {5}), counts  # 100 photos' boxes landed together or not


# ------------------------------------------------------------------ backups and damage
def test_a_damaged_database_is_refused_naming_the_newest_backup_and_restore_brings_it_back(
        project, capsys):
    sqlite_only(project)
    from app.cli import main

    project.set_boxes("a.png", [Box(1, 1, 5, 5, 1)])
    assert main(["backup", str(project.root)]) == 0
    newest = sorted((project.root / "backups").glob("*.sqlite"))[-1]
    project.set_boxes("a.png", [Box(2, 2, 6, 6, 1)])  # after the backup: lost with the file
    project.close()
    db = project.root / DB_NAME
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    db.write_bytes(b"\0garbage from a sync tool" * 100)
    capsys.readouterr()
    assert main(["status", str(project.root)]) == 1
    err = capsys.readouterr().err
    assert str(db) in err and "damaged" in err and str(newest) in err
    assert "Traceback" not in err
    assert main(["restore", str(project.root)]) == 0
    again = Project.open(project.root)
    assert [b.xyxy for b in again.record("a.png").boxes] == [(1, 1, 5, 5)]
    assert again.db.one("PRAGMA journal_mode")[0] == "wal"  # many writers again
    assert list(project.root.glob(f"{DB_NAME}.replaced-*"))  # the damaged one is kept aside


def test_backups_are_consistent_while_another_writer_goes_on(project, tmp_path):
    sqlite_only(project)
    other = Project.open(project.root)
    with other.batch():  # a transaction in flight is not in the copy
        other.set_boxes("a.png", [Box(0, 0, 3, 3, 1)])
        out = project.backup(tmp_path / "copy.sqlite")
    copy = tmp_path / "copyproj"
    copy.mkdir()
    (copy / DB_NAME).write_bytes(out.read_bytes())
    assert Project.open(copy).record("a.png").boxes == []
    assert project.record("a.png").boxes  # landed after


def test_automatic_backups_before_an_import_keep_the_last_few(project, tmp_path):
    sqlite_only(project)
    from ml.datasets.importers import import_yolo
    from ml.project.backups import KEEP

    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    for _ in range(KEEP + 2):
        import_yolo(project, labels)
    autos = sorted((project.root / "backups").glob("auto-*-import.sqlite"))
    assert len(autos) == KEEP


def test_a_read_only_database_is_told_clearly(project, monkeypatch):
    sqlite_only(project)
    import sqlite3

    from ml.project import db as _db

    real = sqlite3.connect

    def read_only(path, **kw):  # as a read-only folder or file (root ignores chmod)
        return real(f"file:{path}?mode=ro", uri=True, **kw)

    ro = Project.open(project.root)
    monkeypatch.setattr(_db.sqlite3, "connect", read_only)
    ro.close()
    with pytest.raises(ProjectError, match="cannot write the project database.*writable"):
        ro.set_boxes("a.png", [Box(0, 0, 3, 3, 1)])
    assert ro.record("a.png").boxes == []  # reads still work


# ------------------------------------------------------------------ PostgreSQL
def test_migrate_moves_a_project_to_postgresql_and_init_db_starts_one_there(
        tmp_path, photo_dir, capsys):
    from app.cli import main
    from ml.project.pg import PgDatabase
    from tests._backends import postgres_url

    url = postgres_url()
    proj = Project.create(tmp_path / "p", photo_dir)
    proj.set_boxes("a.png", [Box(1, 2, 10, 12, 2)])
    proj.set_reviewed("b.jpg")
    before, trail = proj.records(), proj.audit()
    proj.close()
    assert main(["migrate", str(proj.root), "--to", url]) == 0
    moved = Project.open(proj.root)
    assert isinstance(moved.db, PgDatabase) and moved.records() == before
    assert [e["action"] for e in moved.audit()] == [e["action"] for e in trail]
    assert list(proj.root.glob(f"{DB_NAME}.moved-*")) and not (proj.root / DB_NAME).exists()
    # a new project on a server: the folder keeps a pointer, never the password
    other = postgres_url().replace("b2p@", "b2p:secret@")
    assert main(["init", str(tmp_path / "team"), "--images", str(photo_dir), "--db",
                 other]) == 0
    pointer = (tmp_path / "team" / "project.postgresql").read_text()
    assert "secret" not in pointer and "b2p@" in pointer
    assert len(Project.open(tmp_path / "team").images) == 3
    capsys.readouterr()
