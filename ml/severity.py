"""Suggested severity (1-5) per defect region, and a reviewer's overrides of it.

The rule and the five categories live in one JSON settings file: the default ships as
``ml/severity_default.json``; a project may override it with ``PROJECT/severity.json``
("categories" there replaces the list, each class under "rules" replaces that class's rule).

Rule, per class (classes without one use ``default``)::

    level = min(max, base + number of thresholds the region's size reaches)

Size is the area in mm^2 when the ground sample distance (GSD, mm per pixel) is known, else
the area in percent of the image. The GSD is the ``gsd`` argument or, per image,
``record.meta["gsd_mm"]``.

A reviewer's decision is stored in ``record.findings["severity_overrides"][region_id]`` (see
:mod:`ml.regions` for how ids stay stable) and is used as is, never recomputed.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .regions import Region, RegionSet
from .store import ImageRecord, Project, ProjectError

DEFAULT_PATH = Path(__file__).with_name("severity_default.json")
PROJECT_FILE = "severity.json"
OVERRIDES_KEY = "severity_overrides"
LEVELS = (1, 2, 3, 4, 5)


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


# ----------------------------------------------------------------- reviewer overrides
def overrides(record: ImageRecord) -> dict[str, int]:
    """region id -> level a person chose (stored as {"level": n, ...} or a bare int)."""
    out = {}
    for rid, v in dict(record.findings.get(OVERRIDES_KEY, {})).items():
        level = v.get("level") if isinstance(v, dict) else v
        if isinstance(level, int) and level in LEVELS:
            out[str(rid)] = level
    return out


def set_override(project: Project, key: str, region_id: str, level: int | None,
                 by: str = "", note: str = "") -> None:
    """Record a person's severity for a region; ``level=None`` removes the override."""
    if level is not None and level not in LEVELS:
        raise ProjectError(f"severity must be 1-5, got {level}")
    findings = dict(project.record(key).findings)
    ovr = dict(findings.get(OVERRIDES_KEY, {}))
    if level is None:
        ovr.pop(region_id, None)
    else:
        now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
        ovr[region_id] = {"level": int(level), "by": by, "note": note, "at": now}
    findings[OVERRIDES_KEY] = ovr
    project.update(key, findings=findings)


# ----------------------------------------------------------------- findings
@dataclass(frozen=True)
class Finding:
    """One defect region with its size and severity (a person's override where there is one)."""

    key: str
    region: Region
    class_name: str
    area_pct: float
    area_mm2: float | None
    suggested: int
    severity: int
    overridden: bool
    category: Category


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
    ovr = overrides(rec)
    out = []
    for r in regions:
        name = names.get(r.cls, f"class {r.cls}")
        suggested = settings.suggest(name, r.area, h * w, g)
        level = ovr.get(r.id, suggested)
        out.append(Finding(key, r, name, 100.0 * r.area / max(h * w, 1),
                           r.area * g * g if g else None, suggested, level, r.id in ovr,
                           settings.category(level)))
    out.sort(key=lambda f: (-f.severity, -f.region.area))
    return out
