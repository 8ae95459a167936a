"""The project-wide half of :class:`ml.project.store.Project`: classes, the train/val split,
settings, and the audit trail of decisions (who, when, what)."""

from __future__ import annotations

import getpass
import json
import os
import threading
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from ml.common.classes import ClassInfo, palette
from ml.project import rows
from ml.project.db import Database
from ml.project.files import ProjectError
from ml.project.records import now


def default_user() -> str:
    """Who decisions are recorded as: $B2P_USER, else the login name."""
    try:
        return os.environ.get("B2P_USER") or getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


class ProjectSettings:
    """Project-wide values, each read from the database when asked."""

    if TYPE_CHECKING:  # what ml.project.store.Project provides
        db: Database
        user: str
        _lock: threading.RLock

        def _write(self) -> AbstractContextManager[None]: ...

    # ----------------------------------------------------------------- project settings
    def _setting(self, name: str, default: Any) -> Any:
        row = self.db.one("SELECT value FROM settings WHERE name = ?", (name,))
        return default if row is None else json.loads(row[0])

    def _put_setting(self, name: str, value: Any, action: str) -> None:
        with self._write():
            self.db.q("INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) "
                      "DO UPDATE SET value = excluded.value", (name, rows.dumps(value)))
            self.db.q("INSERT INTO audit (at, who, image, action, detail) VALUES (?, ?, NULL, "
                      "?, ?)", (now(), self.user, action, rows.dumps(value)))

    @property
    def split(self) -> dict:
        return dict(self._setting("split", {}) or {})

    @property
    def settings(self) -> dict:
        return dict(self._setting("settings", {}) or {})

    def set_split(self, split: dict) -> None:
        self._put_setting("split", dict(split), "split")

    # ----------------------------------------------------------------- classes
    @property
    def classes(self) -> list[ClassInfo]:
        return [ClassInfo.from_json(json.loads(r[0]))
                for r in self.db.q("SELECT info FROM classes ORDER BY id")]

    @property
    def num_classes(self) -> int:
        return max(c.id for c in self.classes) + 1

    def class_id(self, name: str) -> int:
        for c in self.classes:
            if c.name == name:
                return c.id
        raise ProjectError(f"unknown class '{name}' (known: {', '.join(self.class_names())})")

    def class_names(self) -> list[str]:
        return [c.name for c in self.classes]

    def palette(self) -> list[tuple[int, int, int]]:
        return palette(self.classes)

    def set_classes(self, classes: list[ClassInfo]) -> None:
        ids = sorted(c.id for c in classes)
        if ids != list(range(len(ids))) or classes[0].id != 0:
            raise ProjectError("class ids must be 0..N-1 with 0 = background")
        with self._write():
            self.db.q("DELETE FROM classes")
            self.db.many("INSERT INTO classes (id, info) VALUES (?, ?)",
                         [(c.id, rows.dumps(c.to_json())) for c in classes])
            self.db.q("INSERT INTO audit (at, who, image, action, detail) VALUES (?, ?, NULL, "
                      "'classes', ?)", (now(), self.user, rows.dumps([c.name for c in classes])))

    def audit(self, key: str | None = None, limit: int = 1000) -> list[dict]:
        """The latest decisions (who, when, what), newest first; ``key``: of one photo."""
        sql = "SELECT at, who, image, action, detail FROM audit"
        found = self.db.q(f"{sql} WHERE image = ? ORDER BY id DESC LIMIT ?", (key, limit)) \
            if key is not None else self.db.q(f"{sql} ORDER BY id DESC LIMIT ?", (limit,))
        return [{"at": a, "by": b, "key": k, "action": act, "detail": json.loads(d)}
                for a, b, k, act, d in found]
