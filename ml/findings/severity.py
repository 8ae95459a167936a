"""Suggested severity (1-5) per defect region, and a reviewer's overrides of it.

The rule and the five categories live in one JSON settings file: the default ships as
``ml/findings/severity_default.json``; a project may override it with ``PROJECT/severity.json``
("categories" there replaces the list, each class under "rules" replaces that class's rule).

Rule, per class (classes without one use ``default``)::

    level = min(max, base + number of thresholds the region's size reaches)

Size is the area in mm^2 when the ground sample distance (GSD, mm per pixel) is known, else
the area in percent of the image. The GSD is the ``gsd`` argument or, per image,
``record.meta["gsd_mm"]``.

A reviewer's decisions about a region (a severity, a note, "accepted") are stored in
``record.findings["severity_overrides"][region_id]`` as ``{"level": n or null, "note": ...,
"accepted": bool, "by": ..., "at": ...}`` (see :mod:`ml.project.regions` for how ids stay stable); a
chosen level is used as is, never recomputed. :func:`set_review` changes them and returns
what they were, so a caller can undo.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ml.project.records import now
from ml.project.regions import Region, RegionSet
from ml.project.store import ChangedElsewhere, ImageRecord, Project, ProjectError

DEFAULT_PATH = Path(__file__).with_name("severity_default.json")
PROJECT_FILE = "severity.json"
OVERRIDES_KEY = "severity_overrides"
LEVELS = (1, 2, 3, 4, 5)
SEVERITY_COLORS = {1: "#2e7d32", 2: "#7cb342", 3: "#f9a825", 4: "#ef6c00", 5: "#c62828"}


@dataclass(frozen=True)
class Category:
    level: int
    name: str
    action: str
    time_frame: str


@dataclass(frozen=True)
class Rule:
    """Severity of a class: ``base`` plus one per reached threshold, at most ``max``."""

    base: int
    max: int
    mm2: tuple[float, ...]
    percent: tuple[float, ...]

    def level(self, area_pct: float, area_mm2: float | None) -> int:
        size, steps = (area_pct, self.percent) if area_mm2 is None else (area_mm2, self.mm2)
        return max(1, min(self.max, self.base + sum(size >= t for t in steps)))


@dataclass
class SeveritySettings:
    categories: dict[int, Category]
    rules: dict[str, Rule]
    source: str  # which file(s) the settings came from

    def rule_for(self, class_name: str) -> Rule:
        return self.rules.get(class_name, self.rules["default"])

    def category(self, level: int) -> Category:
        return self.categories[level]

    def suggest(self, class_name: str, area_px: int, image_area: int,
                gsd_mm: float | None = None) -> int:
        """Suggested level of a region of ``area_px`` pixels on an image of ``image_area``."""
        pct = 100.0 * area_px / max(image_area, 1)
        mm2 = area_px * gsd_mm * gsd_mm if gsd_mm else None
        return self.rule_for(class_name).level(pct, mm2)

    def explain(self, class_name: str, area_pct: float, area_mm2: float | None) -> str:
        """The rule as applied to one region, in words (shown beside its suggested level)."""
        rule = self.rule_for(class_name)
        size, steps, unit = ((area_pct, rule.percent, "% of the image") if area_mm2 is None
                             else (area_mm2, rule.mm2, "mm²"))
        name = class_name if class_name in self.rules else f"default rule ({class_name})"
        steps_text = ", ".join(f"{t:g}" for t in steps) or "none"
        reached = sum(size >= t for t in steps)
        return (f"{name}: {rule.base} + 1 per size step reached ({steps_text} {unit}), at most "
                f"{rule.max}; {_num(size)} {unit} reaches {reached} -> "
                f"{rule.level(area_pct, area_mm2)}")


def _num(v: float) -> str:
    return f"{v:,.0f}" if v >= 100 else f"{v:.3g}"


def _parse_rule(name: str, d: Any, where: str) -> Rule:
    try:
        base, top = int(d["base"]), int(d.get("max", 5))
        mm2 = tuple(float(v) for v in d.get("mm2", []))
        pct = tuple(float(v) for v in d.get("percent", []))
    except (KeyError, TypeError, ValueError) as e:
        raise ProjectError(f"{where}: rule '{name}' needs base (1-5), optional max, mm2 and "
                           f"percent threshold lists ({e})") from e
    if base not in LEVELS or top not in LEVELS or top < base:
        raise ProjectError(f"{where}: rule '{name}': need 1 <= base <= max <= 5")
    for steps in (mm2, pct):
        if list(steps) != sorted(steps) or any(t < 0 for t in steps):
            raise ProjectError(f"{where}: rule '{name}': thresholds must be ascending and >= 0")
    return Rule(base, top, mm2, pct)


def _parse_categories(items: Any, where: str) -> dict[int, Category]:
    try:
        cats = {int(c["level"]): Category(int(c["level"]), str(c["name"]), str(c["action"]),
                                          str(c["time_frame"])) for c in items}
    except (KeyError, TypeError, ValueError) as e:
        raise ProjectError(f"{where}: each category needs level, name, action and time_frame "
                           f"({e})") from e
    if sorted(cats) != list(LEVELS):
        raise ProjectError(f"{where}: categories must cover levels 1-5 exactly once")
    return cats


def _read(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise ProjectError(f"{path}: unreadable severity settings ({e})") from e
    if not isinstance(data, dict):
        raise ProjectError(f"{path}: severity settings must be a JSON object")
    return data


def load_settings(project: Project | None = None,
                  path: str | Path | None = None) -> SeveritySettings:
    """The shipped defaults, overlaid by ``path`` or else by ``PROJECT/severity.json``."""
    base = _read(DEFAULT_PATH)
    cats = _parse_categories(base["categories"], str(DEFAULT_PATH))
    rules = {k: _parse_rule(k, v, str(DEFAULT_PATH)) for k, v in base["rules"].items()}
    sources = ["shipped default"]
    user = Path(path) if path else (project.root / PROJECT_FILE if project else None)
    if user is not None and (path or user.is_file()):
        data = _read(user)
        if "categories" in data:
            cats = _parse_categories(data["categories"], str(user))
        rules.update({k: _parse_rule(k, v, str(user))
                      for k, v in dict(data.get("rules", {})).items()})
        sources.append(str(user))
    return SeveritySettings(cats, rules, " + ".join(sources))


# ----------------------------------------------------------------- reviewer decisions
@dataclass(frozen=True)
class RegionReview:
    """A person's decisions about one region; ``level`` None: the suggestion stands."""

    level: int | None = None
    note: str = ""
    accepted: bool = False  # a reviewer looked at this finding and agreed with it as shown
    by: str = ""
    at: str = ""

    def is_empty(self) -> bool:
        return self.level is None and not self.note and not self.accepted

    def to_json(self) -> dict:
        return {"level": self.level, "note": self.note, "accepted": self.accepted,
                "by": self.by, "at": self.at}

    @classmethod
    def from_json(cls, v: Any) -> RegionReview:
        """An index entry: {"level": n, "note": ..., "accepted": ...} or a bare level."""
        d = v if isinstance(v, dict) else {"level": v}
        level = d.get("level")
        return cls(level if isinstance(level, int) and level in LEVELS else None,
                   str(d.get("note") or ""), bool(d.get("accepted", False)),
                   str(d.get("by") or ""), str(d.get("at") or ""))


def reviews(record: ImageRecord) -> dict[str, RegionReview]:
    """region id -> a person's decisions, for every region that has any."""
    return {str(rid): RegionReview.from_json(v)
            for rid, v in dict(record.findings.get(OVERRIDES_KEY, {})).items()}


def overrides(record: ImageRecord) -> dict[str, int]:
    """region id -> level a person chose."""
    return {rid: r.level for rid, r in reviews(record).items() if r.level is not None}


_KEEP: Any = object()  # set_review: leave this field as it is


def set_review(project: Project, key: str, region_id: str, *, level: int | None = _KEEP,
               note: str = _KEEP, accepted: bool = _KEEP, by: str = "",
               seen: RegionReview | None = None) -> RegionReview:
    """Change a person's decisions about a region (fields not given stay); saved at once.

    ``level=None`` drops the reviewer's severity (the suggestion stands again). Returns the
    decisions as they were, for :func:`restore_review` (undo). ``by`` defaults to the
    project's user, so every decision says who made it, and when.

    ``seen``: the decisions as this writer last read them. Where a field being set has been
    changed by another writer since, this (later) decision still wins, and a
    :class:`ChangedElsewhere` warning says whose value it replaced: never a silent overwrite.
    """
    if level is not _KEEP and level is not None and level not in LEVELS:
        raise ProjectError(f"severity must be 1-5, got {level}")
    with project.batch():  # one transaction: read, change and write as one step
        prev = RegionReview.from_json(
            project.record(key).findings.get(OVERRIDES_KEY, {}).get(region_id, {}))
        new = RegionReview(prev.level if level is _KEEP else level,
                           prev.note if note is _KEEP else str(note).strip(),
                           prev.accepted if accepted is _KEEP else bool(accepted),
                           by or getattr(project, "user", "") or prev.by, now())
        _write_review(project, key, region_id, new)
    if seen is not None:
        clash = [f for f, v in (("level", level), ("note", note), ("accepted", accepted))
                 if v is not _KEEP and getattr(prev, f) != getattr(seen, f)]
        if clash:
            warnings.warn(ChangedElsewhere(
                f"{key}, region {region_id}: {', '.join(clash)} changed elsewhere (by "
                f"{prev.by or 'another writer'} at {prev.at or 'an unknown time'}) since it "
                f"was read; this decision replaced it"), stacklevel=2)
    return prev


def restore_review(project: Project, key: str, region_id: str, review: RegionReview) -> None:
    """Put back decisions exactly as :func:`set_review` returned them (undo)."""
    with project.batch():
        _write_review(project, key, region_id, review)


def _write_review(project: Project, key: str, region_id: str, review: RegionReview) -> None:
    findings = dict(project.record(key).findings)
    entries = dict(findings.get(OVERRIDES_KEY, {}))
    if review.is_empty():
        entries.pop(region_id, None)
    else:
        entries[region_id] = review.to_json()
    findings[OVERRIDES_KEY] = entries
    project.update(key, findings=findings)


def set_override(project: Project, key: str, region_id: str, level: int | None,
                 by: str = "", note: str = "") -> None:
    """Record a person's severity for a region; ``level=None`` removes the override."""
    set_review(project, key, region_id, level=level, by=by, **({"note": note} if note else {}))


# ----------------------------------------------------------------- findings
@dataclass(frozen=True)
class Finding:
    """One defect region with its size and severity (a person's override where there is one).

    ``length_px`` is :meth:`ml.project.regions.RegionSet.length_px` (the longer side of the smallest
    rotated rectangle around the region); ``length_mm`` is it times the GSD, None without one.
    """

    key: str
    region: Region
    class_name: str
    area_pct: float
    area_mm2: float | None
    suggested: int
    severity: int
    overridden: bool
    category: Category  # of ``severity``: the repair action and its time frame
    length_px: float = 0.0
    length_mm: float | None = None
    rule: str = ""  # how ``suggested`` came about, in words
    note: str = ""
    accepted: bool = False

    @property
    def reviewer(self) -> int | None:
        """The level a person chose, None where the suggestion stands."""
        return self.severity if self.overridden else None


def image_gsd(record: ImageRecord, gsd: float | None) -> float | None:
    """The GSD to use for an image: the explicit one, else ``meta["gsd_mm"]``, else None."""
    if gsd:
        return float(gsd)
    v = record.meta.get("gsd_mm")
    try:
        return float(v) if v not in (None, "") and float(v) > 0 else None
    except (TypeError, ValueError):
        return None


def assess(project: Project, key: str, regions: RegionSet, settings: SeveritySettings,
           gsd: float | None = None) -> list[Finding]:
    """Findings for the regions of one image, most severe (then largest) first."""
    rec = project.record(key)
    names = dict(enumerate(project.class_names()))
    h, w = regions.shape
    g = image_gsd(rec, gsd)
    decided = reviews(rec)
    out = []
    for r in regions:
        name = names.get(r.cls, f"class {r.cls}")
        pct, mm2 = 100.0 * r.area / max(h * w, 1), (r.area * g * g if g else None)
        suggested = settings.suggest(name, r.area, h * w, g)
        review = decided.get(r.id, RegionReview())
        level = suggested if review.level is None else review.level
        length = regions.length_px(r)
        out.append(Finding(key, r, name, pct, mm2, suggested, level, review.level is not None,
                           settings.category(level), length, length * g if g else None,
                           settings.explain(name, pct, mm2), review.note, review.accepted))
    out.sort(key=lambda f: (-f.severity, -f.region.area))
    return out
