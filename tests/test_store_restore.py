"""b2p restore of a project on PostgreSQL: its pg_dump put back whole, or nothing changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.project.store import Box, Project
from tests._backends import postgres_url


@pytest.fixture
def pg_project(tmp_path, photo_dir):
    """A project in a schema of its own on the test server; its schemas dropped after."""
    from ml.project.pg_backup import project_schema

    proj = Project.create(tmp_path / "team", photo_dir, db=postgres_url())
    schema = project_schema(proj.db)
    yield proj
    for (name,) in proj.db.q("SELECT nspname FROM pg_namespace WHERE nspname LIKE ?",
                             (f"{schema}%",)):
        proj.db.q(f'DROP SCHEMA "{name}" CASCADE')
    proj.close()


def _boxes(root: Path, key: str = "a.png") -> list[tuple]:
    return [b.xyxy for b in Project.open(root).record(key).boxes]


def test_restore_puts_a_postgresql_dump_back_and_keeps_what_it_replaced(pg_project, tmp_path,
                                                                        capsys):
    from app.cli import main

    proj = pg_project
    proj.set_boxes("a.png", [Box(1, 1, 5, 5, 1)])
    proj.set_reviewed("b.jpg")
    assert main(["backup", str(proj.root)]) == 0
    dump = next((proj.root / "backups").glob("project-*.sql"))
    assert "dump complete" in dump.read_text()
    proj.set_boxes("a.png", [Box(2, 2, 6, 6, 1)])  # after the backup: undone by the restore
    proj.set_reviewed("b.jpg", False)
    gui = Project.open(proj.root)  # a window left open: its poll sees the restore
    gui.changed_elsewhere()
    capsys.readouterr()
    assert main(["restore", str(proj.root)]) == 0  # the newest backup
    assert "restored" in capsys.readouterr().out
    assert _boxes(proj.root) == [(1, 1, 5, 5)]
    again = Project.open(proj.root)
    assert again.record("b.jpg").reviewed and len(again.images) == 3
    assert gui.changed_elsewhere() and gui.record("a.png").boxes[0].xyxy == (1, 1, 5, 5)
    again.set_boxes("a.png", [Box(3, 3, 9, 9, 2)])  # ids and the write lock work on
    assert _boxes(proj.root) == [(3, 3, 9, 9)]
    assert again.audit("a.png")[0]["action"] == "boxes"
    kept = [r[0] for r in again.db.q("SELECT table_schema FROM information_schema.tables "
                                     "WHERE table_name = 'images' AND table_schema LIKE ?",
                                     ("%_replaced_%",))]
    assert len(kept) == 1  # the tables replaced are kept aside, as SQLite keeps the file
    old = again.db.q(f'SELECT x0 FROM "{kept[0]}".boxes')
    assert old == [(2.0,)]


def _damaged(dump: Path, out: Path) -> Path:
    """``dump`` with a broken row in the middle of its boxes' data (its ending intact)."""
    lines = dump.read_text().splitlines(keepends=True)
    at = next(i for i, line in enumerate(lines) if line.startswith("COPY ")
              and ".boxes " in line)
    lines.insert(at + 1, "not\ta\tbox\n")
    out.write_text("".join(lines))
    return out


def test_a_failed_restore_leaves_the_project_as_it_was_and_says_why(pg_project, tmp_path,
                                                                    capsys):
    from app.cli import main

    proj = pg_project
    proj.set_boxes("a.png", [Box(1, 1, 5, 5, 1)])
    dump = proj.backup(tmp_path / "good.sql")
    proj.set_boxes("a.png", [Box(2, 2, 6, 6, 1)])
    schemas = proj.db.q("SELECT count(*) FROM pg_namespace")[0][0]
    cut = tmp_path / "cut.sql"
    cut.write_text(dump.read_text()[: len(dump.read_text()) // 2])
    sqlite = proj.root / "other.sqlite"
    sqlite.write_bytes(b"SQLite format 3\0" + bytes(200))
    for bad, why in ((_damaged(dump, tmp_path / "bad.sql"), "nothing was changed"),
                     (cut, "incomplete"), (sqlite, "SQLite backup"),
                     (tmp_path / "absent.sql", "cannot read")):
        capsys.readouterr()
        assert main(["restore", str(proj.root), str(bad)]) == 1
        err = capsys.readouterr().err
        assert str(bad) in err and why in err and "Traceback" not in err, err
        assert _boxes(proj.root) == [(2, 2, 6, 6)]  # the data as it was
        assert proj.db.q("SELECT count(*) FROM pg_namespace")[0][0] == schemas  # none left


def test_a_dump_of_another_schema_restores_only_where_that_project_is_gone(pg_project, tmp_path,
                                                                          photo_dir, capsys):
    from app.cli import main
    from ml.project.pg_backup import project_schema

    lost = pg_project  # the project whose schema a server move lost
    lost.set_boxes("a.png", [Box(1, 1, 5, 5, 1)])
    dump = lost.backup(tmp_path / "lost.sql")
    home = Project.create(tmp_path / "home", photo_dir, db=postgres_url())
    try:
        assert main(["restore", str(home.root), str(dump)]) == 1  # its schema is in use
        assert "holds another project" in capsys.readouterr().err
        assert home.record("a.png").boxes == []
        gone = project_schema(lost.db)
        home.db.q(f'DROP SCHEMA "{gone}" CASCADE')
        assert main(["restore", str(home.root), str(dump)]) == 0
        assert _boxes(home.root) == [(1, 1, 5, 5)]
        assert not home.db.q("SELECT 1 FROM pg_namespace WHERE nspname = ?", (gone,))
    finally:
        schema = project_schema(home.db)
        for (name,) in home.db.q("SELECT nspname FROM pg_namespace WHERE nspname LIKE ?",
                                 (f"{schema}%",)):
            home.db.q(f'DROP SCHEMA "{name}" CASCADE')
        home.close()


def test_a_project_whose_tables_are_gone_says_how_to_restore_and_restore_brings_it_back(
        pg_project, capsys):
    from app.cli import main
    from ml.project.pg_backup import project_schema

    proj = pg_project
    proj.set_boxes("a.png", [Box(1, 1, 5, 5, 1)])
    assert main(["backup", str(proj.root)]) == 0
    proj.db.q(f'DROP SCHEMA "{project_schema(proj.db)}" CASCADE')  # a server lost it
    capsys.readouterr()
    assert main(["status", str(proj.root)]) == 1
    err = capsys.readouterr().err
    assert "tables are not there" in err and "b2p restore" in err and "Traceback" not in err
    assert main(["restore", str(proj.root)]) == 0
    assert _boxes(proj.root) == [(1, 1, 5, 5)]
