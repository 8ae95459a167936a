"""Upgrade the records of an older project.json index, one schema step at a time.

Copy-first: mask files are *copied* to their new names and the old ones are left alone, so
the old index beside the new database (:mod:`ml.project.legacy`) still points at files that
are there. The records handed in are changed in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ml.common import images as _images
from ml.common.atomic import atomic_write_bytes
from ml.project.files import EXTRA_SUFFIXES, MASK_KINDS, mask_rel
from ml.project.records import ImageRecord

_User = tuple[ImageRecord, str]  # a record and which of its masks (teacher | student)


@dataclass
class _Old:
    """What the steps need of the project being upgraded."""

    root: Path
    images: dict[str, ImageRecord]


def upgrade(root: Path, images: dict[str, ImageRecord], schema: int) -> list[str]:
    """Bring ``images`` (read from an index of ``schema``) to schema 2; returns warnings."""
    project = _Old(Path(root), images)
    warnings: list[str] = []
    if schema < 2:
        warnings += _v1_to_v2(project)
    return warnings


def _v1_to_v2(project: _Old) -> list[str]:
    """Schema 1 joined key folders with "__", so ``a/b.png`` and ``a__b.png`` shared a file."""
    warnings = _resolve_shared(project)
    for rec in project.images.values():
        for kind in MASK_KINDS:
            m = getattr(rec, kind)
            if m is None:
                continue
            if not (project.root / m.path).is_file():
                setattr(rec, kind, None)
                warnings.append(f"{rec.key}: {kind} mask file {m.path} is missing; record dropped")
                continue
            m.path = _copy(project, m.path, mask_rel(kind, rec.key))
            for name, suffix in EXTRA_SUFFIXES.items():
                old = m.extra.get(name)
                if isinstance(old, str) and (project.root / old).is_file():
                    m.extra[name] = _copy(project, old, mask_rel(kind, rec.key, suffix))
                elif old is not None:
                    del m.extra[name]
                    warnings.append(f"{rec.key}: {kind} {name} map {old} is missing; dropped")
    return warnings


def _copy(project: _Old, old: str, new: str) -> str:
    if old != new:
        atomic_write_bytes(project.root / new, (project.root / old).read_bytes())
    return new


def _resolve_shared(project: _Old) -> list[str]:
    """Where records share one mask file, it holds only the last writer's mask: keep it for
    the one record it fits (size, then newest), drop it from the others, and say so."""
    users: dict[str, list[_User]] = {}
    for rec in project.images.values():
        for kind in ("teacher", "student"):
            m = getattr(rec, kind)
            if m is not None:
                users.setdefault(m.path, []).append((rec, kind))
    warnings = []
    for path, group in users.items():
        if len(group) < 2:
            continue
        owner = _owner(project, path, group)
        names = ", ".join(r.key for r, _ in group)
        for rec, kind in group:
            if owner is not None and rec is owner[0]:
                warnings.append(f"{rec.key}: {kind} mask {path} was shared by {names}; "
                                f"kept for this photo (the newest that fits it)")
                continue
            setattr(rec, kind, None)
            warnings.append(f"{rec.key}: {kind} mask {path} was shared by {names} and holds "
                            f"another photo's mask; dropped, make it again")
    return warnings


def _owner(project: _Old, path: str, group: list[_User]) -> _User | None:
    """The one record the shared file belongs to, or None when that cannot be told."""
    try:
        w, h = _images.image_size(project.root / path)
    except (OSError, _images.ImageError):
        return None
    fits = [u for u in group if not u[0].width or (u[0].width, u[0].height) == (w, h)]
    if len(fits) == 1:
        return fits[0]
    newest = max((getattr(r, k).created for r, k in fits), default=None)
    top = [u for u in fits if getattr(u[0], u[1]).created == newest]
    return top[0] if len(top) == 1 else None
