"""What a report shows: the per-image entries, their groupings and the findings CSV."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ml.findings.review import FindingRow
from ml.findings.review import findings_csv as _findings_csv
from ml.findings.severity import Finding, SeveritySettings
from ml.metadata.position import FindingPosition
from ml.metadata.values import SHORT_SIDES, SIDES, guessed
from ml.project.records import ImageRecord

GUESS_MARK = "*"
GUESS_NOTE = (f"{GUESS_MARK} guessed from folder names, the photo's EXIF/XMP or a GSD estimate; "
              f"not confirmed by a person")


@dataclass
class ImageEntry:
    """One inspected image: its findings (most severe first) and overlay thumbnail."""

    key: str
    record: ImageRecord
    origin: str  # teacher | edited | student
    model: str
    findings: list[Finding]
    shape: tuple[int, int]
    gsd: float | None
    thumbnail: bytes  # JPEG
    photo_missing: bool = False
    positions: dict[str, FindingPosition] = field(default_factory=dict)  # region id -> place


@dataclass
class ReportData:
    project: str
    created: str
    source: str
    settings: SeveritySettings
    class_colors: dict[str, str]
    entries: list[ImageEntry] = field(default_factory=list)
    not_inspected: list[str] = field(default_factory=list)  # images without any mask
    failed: dict[str, str] = field(default_factory=dict)  # key -> why it could not be read
    provenance: list[tuple[str, str]] = field(default_factory=list)
    metrics: dict | None = None
    blade: Any = None  # ml.findings.report._blade.BladeSection: maps and changes, if placed

    @property
    def findings(self) -> list[Finding]:
        return [f for e in self.entries for f in e.findings]

    def entry(self, key: str) -> ImageEntry:
        return next(e for e in self.entries if e.key == key)


# ----------------------------------------------------------------- aggregation
def meta_of(entry: ImageEntry, name: str) -> str:
    return str(entry.record.meta.get(name, "") or "")


def marked(entry: ImageEntry, name: str, text: str | None = None) -> str:
    """``text`` (default: the value) with :data:`GUESS_MARK` when the value is a guess."""
    text = meta_of(entry, name) if text is None else text
    return text + GUESS_MARK if text and name in guessed(entry.record.meta) else text


def where(entry: ImageEntry, short: bool = False) -> str:
    """'WTG07 / B / leading edge' (``short``: 'LE'), guessed parts marked; '–' if unknown."""
    side = meta_of(entry, "side")
    side = SHORT_SIDES.get(side, side) if short else side.replace("_", " ")
    parts = [marked(entry, "turbine"), marked(entry, "blade"), marked(entry, "side", side)]
    return " / ".join(p for p in parts if p) or "–"


def details(entry: ImageEntry) -> list[str]:
    """Date, distance and GSD of an image, as far as known, guessed ones marked."""
    meta = entry.record.meta
    out = []
    for name, label, fmt in (("date", "date", "{}"), ("distance_m", "distance", "{:g} m"),
                             ("gsd_mm", "GSD", "{:.3g} mm/px")):
        v = meta.get(name)
        if v not in (None, ""):
            try:
                text = fmt.format(v)
            except (TypeError, ValueError):
                text = str(v)
            out.append(f"{label}: {marked(entry, name, text)}")
    return out


def entry_order(entry: ImageEntry) -> tuple:
    """Sort key: turbine, blade, side (LE, TE, PS, SS), then key; unknown parts last."""
    side = meta_of(entry, "side")
    return (not meta_of(entry, "turbine"), meta_of(entry, "turbine"),
            not meta_of(entry, "blade"), meta_of(entry, "blade"),
            SIDES.index(side) if side in SIDES else len(SIDES), entry.key)


def any_guessed(data: ReportData) -> bool:
    return any(guessed(e.record.meta) for e in data.entries)


def by_turbine_blade(data: ReportData) -> list[dict]:
    """Rows per (turbine, blade): images, regions, highest severity, count per level."""
    groups: dict[tuple[str, str], list[ImageEntry]] = {}
    for e in data.entries:
        groups.setdefault((meta_of(e, "turbine") or "-", meta_of(e, "blade") or "-"),
                          []).append(e)
    rows = []
    for (turbine, blade), entries in sorted(groups.items()):
        fs = [f for e in entries for f in e.findings]
        rows.append({"turbine": turbine, "blade": blade, "images": len(entries),
                     "regions": len(fs), "max": max((f.severity for f in fs), default=0),
                     "levels": Counter(f.severity for f in fs)})
    return rows


def by_class(data: ReportData) -> list[dict]:
    """Rows per defect class: count, total area in px and mm^2 (mm^2 only if all known)."""
    rows = []
    for name in data.class_colors:
        fs = [f for f in data.findings if f.class_name == name]
        mm2 = [f.area_mm2 for f in fs]
        rows.append({"class": name, "count": len(fs), "area_px": sum(f.region.area for f in fs),
                     "area_mm2": sum(mm2) if fs and None not in mm2 else None})
    return rows


def by_severity(data: ReportData) -> list[dict]:
    rows = []
    for level in range(5, 0, -1):
        fs = [f for f in data.findings if f.severity == level]
        mm2 = [f.area_mm2 for f in fs]
        rows.append({"level": level, "category": data.settings.category(level),
                     "count": len(fs), "area_px": sum(f.region.area for f in fs),
                     "area_mm2": sum(mm2) if fs and None not in mm2 else None})
    return rows


def priority(data: ReportData) -> list[Finding]:
    """All findings, highest severity first, then largest."""
    return sorted(data.findings, key=lambda f: (-f.severity, -f.region.area, f.key))


# ----------------------------------------------------------------- findings.csv
def findings_csv(data: ReportData) -> str:
    """One row per finding (columns: :data:`ml.findings.review.CSV_COLUMNS`)."""
    return _findings_csv(FindingRow.of(f, e.record, e.origin, e.positions.get(f.region.id))
                         for e in data.entries for f in e.findings)
