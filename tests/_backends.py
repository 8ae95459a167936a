"""The store's tests run on both backends: SQLite (always) and PostgreSQL (a server's URL).

``.ci/run`` starts a throw-away server and exports ``B2P_TEST_POSTGRES_URL``; without it the
PostgreSQL half skips with the reason, except under CI, where it fails.
"""

from __future__ import annotations

import os
import uuid

import pytest

URL_VAR = "B2P_TEST_POSTGRES_URL"


def postgres_url() -> str:
    """A fresh schema on the test server, or a skip (a failure under CI) saying why not."""
    url = os.environ.get(URL_VAR)
    why = None
    if not url:
        why = (f"no PostgreSQL server: set {URL_VAR} (.ci/postgres.sh starts a throw-away one; "
               f"apt-get install postgresql)")
    else:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            why = "psycopg is not installed (pip install 'boxes2pixels[postgresql]')"
    if why is not None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must run the PostgreSQL store tests: {why}")
        pytest.skip(why)
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}options=-csearch_path%3Dt{uuid.uuid4().hex[:12]}"


@pytest.fixture(params=["sqlite", "postgresql"])
def backend(request) -> str | None:
    """None for SQLite, else the URL of a schema of its own on the test server."""
    return None if request.param == "sqlite" else postgres_url()


@pytest.fixture
def project(tmp_path, photo_dir, backend):
    """The conftest's project, on each backend."""
    from ml.project.store import Project

    proj = Project.create(tmp_path / "proj", photo_dir, db=backend)
    yield proj
    proj.close()


def sqlite_only(project) -> None:
    """Skip where the test is about SQLite's own file (backups, damage, migration)."""
    from ml.project.pg import PgDatabase

    if isinstance(project.db, PgDatabase):
        pytest.skip("about the SQLite file itself")
