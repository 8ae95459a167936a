"""Inspections: a date and a set of photos. A project holds several, or links to an older one.

A photo's inspection is its ``meta["inspection"]``: the inspection's name, its date or, for
the n-th inspection of one day, ``DATE #n`` (:func:`ml.metadata.values.inspection_name`),
written through :mod:`ml.metadata.values` (:func:`set_inspection`; importing a folder of photos
names a new one, :mod:`ml.findings.photo_import`). Two inspections of one day stay distinct
and are ordered by ``n``. Photos without one are grouped by their capture date: dates less than
:data:`GAP_DAYS` apart form one inspection, dated by its first day, marked guessed. Photos with
neither are listed as undated and compared with nothing.

An older inspection may live in another project (:func:`all_inspections` with ``previous``);
two of the same name are refused, naming both.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from ml.metadata.values import guessed, inspection_name, parse_inspection, set_values
from ml.project.store import Project, ProjectError

GAP_DAYS = 60


@dataclass(frozen=True)
class Inspection:
    date: str  # ISO date
    keys: tuple[str, ...]
    project: Project = field(compare=False, repr=False)
    guessed: bool = False  # grouped from capture dates or dated by software, not by a person
    seq: int = 1  # the n-th inspection of its day

    @property
    def name(self) -> str:
        """The date, with ' #n' for the n-th inspection of that day: what tells them apart."""
        return inspection_name(self.date, self.seq)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.project.name})"


def _day(text: object) -> _dt.date | None:
    try:
        return _dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


def inspections(project: Project, gap_days: int = GAP_DAYS) -> tuple[list[Inspection], list[str]]:
    """(the project's inspections oldest first, photos without any date)."""
    explicit: dict[tuple[_dt.date, int], list[str]] = {}
    all_guessed: dict[tuple[_dt.date, int], bool] = {}
    dated: list[tuple[_dt.date, str]] = []
    undated: list[str] = []
    for key, rec in project.records().items():
        meta = rec.meta
        name = parse_inspection(meta["inspection"]) if meta.get("inspection") else None
        if name is not None:
            explicit.setdefault(name, []).append(key)
            all_guessed[name] = all_guessed.get(name, True) and "inspection" in guessed(meta)
            continue
        d = _day(meta.get("date")) if meta.get("date") else None
        (dated.append((d, key)) if d is not None else undated.append(key))
    found = [Inspection(d.isoformat(), tuple(ks), project, all_guessed[(d, n)], n)
             for (d, n), ks in explicit.items()]
    group: list[tuple[_dt.date, str]] = []
    for d, key in sorted(dated) + [(None, "")]:
        if group and (d is None or (d - group[-1][0]).days > gap_days):
            first = group[0][0].isoformat()
            same = next((i for i in found if i.name == first), None)
            if same is not None:  # the person's inspection of that day takes them in
                found.remove(same)
                found.append(Inspection(first, same.keys + tuple(k for _, k in group), project,
                                        same.guessed))
            else:
                found.append(Inspection(first, tuple(k for _, k in group), project, True))
            group = []
        if d is not None:
            group.append((d, key))
    return sorted(found, key=lambda i: (i.date, i.seq)), undated


def set_inspection(project: Project, date: str, keys: Iterable[str]) -> int:
    """A person says photos ``keys`` belong to the inspection ``date`` (or 'DATE #n')."""
    keys = list(keys)
    if not keys:
        raise ProjectError("no photos given for the inspection")
    set_values(project, keys, inspection=date)
    return len(keys)


def all_inspections(project: Project, previous: Iterable[Project] = (),
                    gap_days: int = GAP_DAYS) -> tuple[list[Inspection], list[str]]:
    """This project's inspections and those of linked older projects, oldest first.

    Raises ProjectError when two of them share a name (two projects each with an inspection
    of one day): which came first would be a guess.
    """
    found, undated = inspections(project, gap_days)
    for other in previous:
        more, _ = inspections(other, gap_days)
        found += more
    by_name: dict[str, Inspection] = {}
    for i in found:
        if i.name in by_name:
            raise ProjectError(f"two inspections dated {i.name}: {by_name[i.name].label} and "
                               f"{i.label}; give one of them another date or 'DATE #2' "
                               f"(b2p history --set-inspection DATE --where GLOB)")
        by_name[i.name] = i
    return sorted(found, key=lambda i: (i.date, i.seq)), undated


def find_inspection(found: list[Inspection], text: str) -> Inspection:
    """The inspection named ``text`` ('DATE' or 'DATE #n'); a date two share is refused."""
    hits = [i for i in found if i.name == text] or [i for i in found if i.date == text]
    if not hits:
        raise ProjectError(f"no inspection dated {text} (there are: "
                           f"{', '.join(i.name for i in found) or 'none'})")
    if len(hits) > 1:
        raise ProjectError(f"{len(hits)} inspections on {text}: "
                           f"{', '.join(i.name for i in hits)}; give one of them")
    return hits[0]


def latest_keys(project: Project) -> list[str] | None:
    """The photos of the latest inspection when the project holds several, else None (all)."""
    found, _ = inspections(project)
    return list(found[-1].keys) if len(found) > 1 else None
