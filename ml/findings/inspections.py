"""Inspections: a date and a set of photos. A project holds several, or links to an older one.

A photo's inspection is its ``meta["inspection"]`` (the inspection's date, written through
:mod:`ml.metadata.values`; :func:`set_inspection`). Photos without one are grouped by their
capture date: dates less than :data:`GAP_DAYS` apart form one inspection, dated by its first
day, marked guessed. Photos with neither are listed as undated and compared with nothing.

An older inspection may live in another project (:func:`all_inspections` with ``previous``);
two inspections on the same date are refused, naming both.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass, field

from ml.metadata.values import set_values
from ml.project.store import Project, ProjectError

GAP_DAYS = 60


@dataclass(frozen=True)
class Inspection:
    date: str  # ISO date
    keys: tuple[str, ...]
    project: Project = field(compare=False, repr=False)
    guessed: bool = False  # grouped from capture dates, not set by a person

    @property
    def label(self) -> str:
        return f"{self.date} ({self.project.name})"


def _day(text: object) -> _dt.date | None:
    try:
        return _dt.date.fromisoformat(str(text)[:10])
    except ValueError:
        return None


def inspections(project: Project, gap_days: int = GAP_DAYS) -> tuple[list[Inspection], list[str]]:
    """(the project's inspections oldest first, photos without any date)."""
    explicit: dict[str, list[str]] = {}
    dated: list[tuple[_dt.date, str]] = []
    undated: list[str] = []
    for key in project.keys():
        meta = project.record(key).meta
        d = _day(meta.get("inspection")) if meta.get("inspection") else None
        if d is not None:
            explicit.setdefault(d.isoformat(), []).append(key)
            continue
        d = _day(meta.get("date")) if meta.get("date") else None
        (dated.append((d, key)) if d is not None else undated.append(key))
    found = [Inspection(d, tuple(ks), project) for d, ks in explicit.items()]
    group: list[tuple[_dt.date, str]] = []
    for d, key in sorted(dated) + [(None, "")]:
        if group and (d is None or (d - group[-1][0]).days > gap_days):
            first = group[0][0].isoformat()
            same = next((i for i in found if i.date == first), None)
            if same is not None:  # the person's inspection of that day takes them in
                found.remove(same)
                found.append(Inspection(first, same.keys + tuple(k for _, k in group), project,
                                        same.guessed))
            else:
                found.append(Inspection(first, tuple(k for _, k in group), project, True))
            group = []
        if d is not None:
            group.append((d, key))
    return sorted(found, key=lambda i: i.date), undated


def set_inspection(project: Project, date: str, keys: Iterable[str]) -> int:
    """A person says photos ``keys`` belong to the inspection of ``date``."""
    keys = list(keys)
    if not keys:
        raise ProjectError("no photos given for the inspection")
    set_values(project, keys, inspection=date)
    return len(keys)


def all_inspections(project: Project, previous: Iterable[Project] = (),
                    gap_days: int = GAP_DAYS) -> tuple[list[Inspection], list[str]]:
    """This project's inspections and those of linked older projects, oldest first.

    Raises ProjectError when two of them share a date: which photos belong where would be a
    guess.
    """
    found, undated = inspections(project, gap_days)
    for other in previous:
        more, _ = inspections(other, gap_days)
        found += more
    by_date: dict[str, Inspection] = {}
    for i in found:
        if i.date in by_date:
            raise ProjectError(f"two inspections dated {i.date}: {by_date[i.date].label} and "
                               f"{i.label}; give one of them another date "
                               f"(b2p history --set-inspection DATE --where GLOB)")
        by_date[i.date] = i
    return sorted(found, key=lambda i: i.date), undated


def latest_keys(project: Project) -> list[str] | None:
    """The photos of the latest inspection when the project holds several, else None (all)."""
    found, _ = inspections(project)
    return list(found[-1].keys) if len(found) > 1 else None
