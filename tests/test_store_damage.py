"""The bad cases of the project store: a full disk, a read-only project folder, a missing photo
folder. Each is told in words (never a traceback) and leaves nothing written half.

(A damaged database, b2p restore and an import killed with kill -9 are in test_database.py.)
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import pytest

from ml.project.store import DB_NAME, Box, Project
from tests import _backends
from tests._backends import sqlite_only
from tests.conftest import write_photo

backend, project = _backends.backend, _backends.project  # the store on both backends


def _run(capsys, *argv: str) -> tuple[int, str]:
    """``b2p ARGV`` in this process: its exit code and everything it printed."""
    from app.cli import main

    capsys.readouterr()
    rc = main(list(argv))
    out = capsys.readouterr()
    assert "Traceback" not in out.err + out.out
    return rc, out.out + out.err


def _temps(root: Path) -> list[Path]:
    """Temp files of atomic writes left anywhere in the project."""
    return [p for p in root.rglob(".*") if p.name.endswith((".tmp", ".part", ".restoring"))]


def _snapshot(root: Path) -> tuple[dict, dict]:
    """What a fresh reader finds: every record, and every mask file's bytes."""
    files = {p.relative_to(root): p.read_bytes() for p in (root / "masks").rglob("*")
             if p.is_file()}
    return Project.open(root).records(), files


# ------------------------------------------------------------------ a full disk
def _disk_full(_fd: int) -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_stops_a_mask_write_whole_and_says_so(project, monkeypatch, capsys):
    label = np.zeros((48, 64), np.uint8)
    label[5:20, 5:20] = 1
    project.save_teacher_mask("a.png", label, "box")
    project.set_boxes("b.jpg", [Box(2, 2, 30, 20, 1)])
    before = _snapshot(project.root)
    monkeypatch.setattr(os, "fsync", _disk_full)  # the data never reaches the disk
    mask = project.root / "masks" / "teacher" / "a.png.png"
    with pytest.raises(OSError) as raised:  # overwriting a mask: the old one stays whole
        project.save_teacher_mask("a.png", np.ones((48, 64), np.uint8), "box", force=True)
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(mask)
    rc, said = _run(capsys, "pseudo-label", str(project.root), "--teacher", "box")
    monkeypatch.undo()
    assert rc == 1 and "the disk is full" in said and "b.jpg" in said and "Free some space" \
        in said
    assert _snapshot(project.root) == before and not _temps(project.root)


def _capped_connect(real=sqlite3.connect):
    """sqlite3.connect whose database cannot grow: SQLite's own 'database or disk is full'."""
    def connect(path, *args, **kw):
        conn = real(path, *args, **kw)
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        conn.execute(f"PRAGMA max_page_count = {pages}")
        return conn
    return connect


def test_a_full_disk_under_the_database_keeps_a_500_box_import_out_whole(project, tmp_path,
                                                                          monkeypatch, capsys):
    sqlite_only(project)
    from ml.project import db as _db

    photos = tmp_path / "many"
    for i in range(100):
        write_photo(photos / f"p{i:03d}.png", 16, 12, i)
    proj = Project.create(tmp_path / "big", photos)
    labels = tmp_path / "labels"
    labels.mkdir()
    for key in proj.keys():  # 5 boxes a photo: 500 in all
        (labels / Path(key).with_suffix(".txt")).write_text(
            "\n".join(f"0 {0.1 + j * 0.15:.2f} 0.5 0.1 0.2" for j in range(5)))
    proj.close()
    monkeypatch.setattr(_db.sqlite3, "connect", _capped_connect())
    rc, said = _run(capsys, "import", str(proj.root), "--yolo", str(labels))
    monkeypatch.undo()
    db = proj.root / DB_NAME
    assert rc == 1 and str(db) in said and "disk is full" in said
    assert "nothing of this change was written" in said
    again = Project.open(proj.root)
    assert again.box_count() == 0 and len(again.images) == 100  # none of the 500, all photos
    assert _run(capsys, "import", str(proj.root), "--yolo", str(labels))[0] == 0  # space again
    assert Project.open(proj.root).box_count() == 500


# ------------------------------------------------------------------ a read-only folder
def _read_only(root: Path, monkeypatch) -> None:
    """Make ``root`` refuse every write: chmod where that binds, else (root ignores chmod) the
    same refusals from the OS calls that write (SQLite's open, temp files, new folders)."""
    if os.geteuid() != 0:
        for p in [root, *root.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)
        return
    from ml.project import db as _db

    real_connect, real_mkstemp, real_mkdir = sqlite3.connect, tempfile.mkstemp, Path.mkdir

    def inside(p) -> bool:
        return Path(p).resolve().is_relative_to(root)

    def connect(path, *args, **kw):
        if inside(path):
            return real_connect(f"file:{path}?mode=ro", *args, uri=True, **kw)
        return real_connect(path, *args, **kw)

    def mkstemp(suffix=None, prefix=None, dir=None, text=False):
        if dir is not None and inside(dir):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES),
                                  os.path.join(dir, f"{prefix}XXXX{suffix}"))
        return real_mkstemp(suffix, prefix, dir, text)

    def mkdir(self, mode=0o777, parents=False, exist_ok=False):
        if inside(self) and not (exist_ok and self.is_dir()):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(self))
        return real_mkdir(self, mode, parents, exist_ok)

    monkeypatch.setattr(_db.sqlite3, "connect", connect)
    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    monkeypatch.setattr(Path, "mkdir", mkdir)


def _writable_again(root: Path, monkeypatch) -> None:
    monkeypatch.undo()
    if os.geteuid() != 0:
        for p in [root, *root.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)


def test_a_read_only_project_folder_is_told_and_nothing_is_written(project, tmp_path,
                                                                    monkeypatch, capsys):
    sqlite_only(project)
    root = project.root
    project.set_boxes("b.jpg", [Box(2, 2, 30, 20, 1)])
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    project.close()
    before = _snapshot(root)
    _read_only(root, monkeypatch)
    try:
        for argv, where in ((["meta", str(root), "--set", "turbine=T1", "--where", "a.png"],
                             str(root / DB_NAME)),
                            (["import", str(root), "--yolo", str(tmp_path / "labels")],
                             str(root / DB_NAME)),
                            (["pseudo-label", str(root), "--teacher", "box"],
                             str(root / "masks"))):
            rc, said = _run(capsys, *argv)
            assert rc == 1 and where in said and "writable" in said, (argv, said)
    finally:
        _writable_again(root, monkeypatch)
    assert _snapshot(root) == before and not _temps(root)
    assert not any((root / "backups").glob("*.sqlite"))  # no automatic backup half made


# ------------------------------------------------------------------ a missing photo folder
def test_a_missing_photo_folder_is_named_and_nothing_is_written(project, capsys):
    project.set_boxes("a.png", [Box(2, 2, 30, 20, 1)])
    project.set_boxes("T01/A/LE/c.png", [Box(2, 2, 20, 20, 2)])
    before = _snapshot(project.root)
    photos = project.image_root
    photos.rename(photos.with_name("unplugged"))
    try:
        rc, said = _run(capsys, "status", str(project.root))
        assert rc == 0 and f"the photo folder {photos} is not there" in said
        rc, said = _run(capsys, "pseudo-label", str(project.root), "--teacher", "box")
        assert rc != 0 and f"its folder {photos} is not there" in said
        assert said.count("is not there") == 2  # each photo named, with the reason
        assert _snapshot(project.root) == before and not _temps(project.root)
    finally:
        photos.with_name("unplugged").rename(photos)
    rc, said = _run(capsys, "pseudo-label", str(project.root), "--teacher", "box")
    assert rc == 0 and project.record("a.png").teacher is not None  # back: it all works
