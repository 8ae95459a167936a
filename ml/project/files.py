"""Where a project keeps its files, and the errors a project raises.

Shared by :mod:`ml.project.store` (which re-exports all of it) and the schema migration
(:mod:`ml.project.migrate`), which must name files exactly as the store does.
"""

from __future__ import annotations

from pathlib import PurePosixPath

INDEX_NAME = "project.json"
STORE_DIRS = ("masks", "models", "exports", "reports", "runs")  # runs: ml.campaign.client
MASK_KINDS = ("teacher", "student", "previous")  # previous: the model before's student mask
# the masks an export, the findings or a report can read (ml.project.masks.mask_for)
SOURCES = ("teacher", "student", "reviewed")
EXTRA_SUFFIXES = {"confidence": "_conf", "corrections": "_corr"}  # maps beside a mask


class ProjectError(RuntimeError):
    """A project that cannot be created, opened or changed as asked."""


class ProjectWarning(UserWarning):
    """Something opening a project had to repair; also kept in ``Project.warnings``."""


def mask_rel(kind: str, key: str, suffix: str = "") -> str:
    """Where ``key``'s mask of ``kind`` lives, relative to the project folder.

    The key keeps its folders and its extension, so distinct keys give distinct files; an
    extra map's name (``KEY_conf.png``) never equals a mask's (``KEY.png``) because keys end
    in an image extension, never in ``_conf``.
    """
    parts = PurePosixPath(key).parts
    if not parts or key.startswith("/") or any(p in ("..", ".") for p in parts):
        raise ProjectError(f"'{key}' is not a photo key a mask can be named after")
    return f"masks/{kind}/{key}{suffix}.png"
