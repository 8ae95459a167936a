"""What a report shows: the per-image entries, their groupings and the findings CSV."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from ..findings import FindingRow
from ..findings import findings_csv as _findings_csv
from ..records import ImageRecord
from ..severity import Finding, SeveritySettings


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

    @property
    def findings(self) -> list[Finding]:
        return [f for e in self.entries for f in e.findings]

    def entry(self, key: str) -> ImageEntry:
        return next(e for e in self.entries if e.key == key)


# ----------------------------------------------------------------- aggregation
def meta_of(entry: ImageEntry, name: str) -> str:
    return str(entry.record.meta.get(name, "") or "")


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
    """One row per finding (columns: :data:`ml.findings.CSV_COLUMNS`)."""
    return _findings_csv(FindingRow.of(f, e.record, e.origin)
                         for e in data.entries for f in e.findings)
