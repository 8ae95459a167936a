"""Upgrade an older project index in place, one schema step at a time.

Order matters for crash safety: mask files are *copied* to their new names first, then the
new index is written atomically, and only then are the old files removed. A crash before the
index write leaves the old index pointing at untouched old files; a crash after it leaves only
stale copies behind. The index is the truth throughout.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ml.common import images as _images
from ml.common.atomic import atomic_write_bytes
from ml.project.files import EXTRA_SUFFIXES, MASK_KINDS, ProjectError, mask_rel
from ml.project.records import ImageRecord

if TYPE_CHECKING:
    from ml.project.store import Project

_User = tuple[ImageRecord, str]  # a record and which of its masks (teacher | student)


def migrate(project: Project, schema: int) -> list[str]:
    """Bring ``project`` from ``schema`` to the current one and save it; returns warnings."""
    old_files = _referenced(project)
    warnings: list[str] = []
    try:
        if schema < 2:
            warnings += _v1_to_v2(project)
        project.save()
    except OSError as e:
        raise ProjectError(f"{project.root}: cannot upgrade the project from schema {schema} "
                           f"({e}); is the folder writable?") from e
    for rel in old_files - _referenced(project):
        try:
            (project.root / rel).unlink(missing_ok=True)
        except OSError:
            pass  # a stale copy costs disk space, never correctness
    return warnings


def _referenced(project: Project) -> set[str]:
    """Every file the index points at (masks and their extra maps)."""
    out: set[str] = set()
    for rec in project.images.values():
        for m in (getattr(rec, kind) for kind in MASK_KINDS):
            if m is not None:
                out.add(m.path)
                out.update(v for v in m.extra.values() if isinstance(v, str))
    return out


def _v1_to_v2(project: Project) -> list[str]:
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


def _copy(project: Project, old: str, new: str) -> str:
    if old != new:
        atomic_write_bytes(project.root / new, (project.root / old).read_bytes())
    return new


def _resolve_shared(project: Project) -> list[str]:
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


def _owner(project: Project, path: str, group: list[_User]) -> _User | None:
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
