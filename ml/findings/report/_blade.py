"""What the report shows about position and history: blade maps and changes since last time."""

from __future__ import annotations

from dataclasses import dataclass, field

from ml.common.progress import StopFn
from ml.findings.blade_map import BladeMap, blade_maps
from ml.findings.history import Change, Comparison, project_history
from ml.findings.history_crops import side_by_side
from ml.findings.placement import on_a_blade, place_findings
from ml.metadata.position import turbines
from ml.project.store import Project, ProjectError


@dataclass
class ChangeEntry:
    change: Change
    crops: bytes  # JPEG: earlier | current


@dataclass
class BladeSection:
    maps: list[BladeMap] = field(default_factory=list)
    inspection: str = ""  # the date the maps show, when the project holds several
    unplaced: list[str] = field(default_factory=list)
    comparison: Comparison | None = None
    changes: dict[tuple[str, str], list[ChangeEntry]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # e.g. two inspections on one date

    @property
    def since(self) -> str:
        return self.comparison.earlier.name if self.comparison else ""


def blade_section(project: Project, source: str = "student",
                  should_stop: StopFn | None = None) -> BladeSection | None:
    """Maps of the latest inspection and its changes; None when no photo names a blade."""
    if not any(on_a_blade(rec.meta) for rec in project.records().values()):
        return None
    out = BladeSection()
    try:
        hist = project_history(project, source=source, should_stop=should_stop)
    except ProjectError as e:
        out.problems.append(str(e))
        hist = None
    latest = hist.inspections[-1] if hist is not None and hist.inspections else None
    if latest is not None and len(hist.inspections) > 1:
        out.inspection = latest.name
    if latest is not None and (len(hist.inspections) > 1
                               or set(latest.keys) == set(project.keys())):
        placed = hist.placements[latest.name]  # the history placed them: no mask read again
    else:
        placed = place_findings(project, None, source, should_stop=should_stop)
    lengths = {n: t.blade_length_m for n, t in turbines(project).items()}
    out.maps = blade_maps(placed.found, lengths)
    out.unplaced = placed.unplaced
    if not any(bm.markers for bm in out.maps) and (hist is None or hist.latest is None):
        return None  # no finding has a radius and there is nothing to compare: no section
    if hist is not None and hist.latest is not None:
        out.comparison = hist.latest
        for ch in hist.latest.changes:
            p = ch.place
            out.changes.setdefault((p.row.turbine, p.row.blade), []).append(
                ChangeEntry(ch, side_by_side(ch, hist.latest)))
    return out
