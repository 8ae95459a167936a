"""Findings at their place on the blade: turbine, blade, side, radius (± uncertainty) and zone.

:func:`place_findings` lists a project's findings (as :func:`ml.findings.review.photo_findings`
does) with each region's centre and its :class:`ml.metadata.position.FindingPosition`, by the
rules of :mod:`ml.findings.locate`. A photo without a turbine or a blade is listed in
``unplaced`` and its findings are never put on a blade; a radius beyond the blade length is
kept and its problem stated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ml.common import images as _images
from ml.common.progress import ProgressFn, Reporter, StopFn
from ml.findings.locate import on_a_blade, photo_axis, region_outline
from ml.findings.review import FindingRow, photo_regions
from ml.findings.severity import SeveritySettings, assess, load_settings
from ml.metadata.position import Axis, FindingPosition, finding_position, turbines
from ml.project.store import Project

__all__ = ["PlacedFinding", "Placement", "on_a_blade", "photo_axis", "place_findings",
           "region_outline"]


@dataclass(frozen=True)
class PlacedFinding:
    """A finding of one photo with where it lies on the blade."""

    row: FindingRow
    number: int  # 1-based position in its photo's findings (the report's #n)
    centre: tuple[float, float]  # region centre in the photo, px (x, y)
    shape: tuple[int, int]  # the photo's (H, W)
    position: FindingPosition
    axis: Axis
    outline: np.ndarray  # (N, 2) float32 contour of the region, photo px
    inspection: str = ""  # the inspection's date, when known

    @property
    def key(self) -> str:
        return self.row.key

    @property
    def radius(self) -> float | None:
        return self.position.radius_m


@dataclass
class Placement:
    found: list[PlacedFinding] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)  # photos without turbine or blade
    not_inspected: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def place_findings(project: Project, keys: Iterable[str] | None = None,
                   source: str = "student", settings: SeveritySettings | None = None,
                   inspection: str = "", progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None) -> Placement:
    """Every finding of ``keys`` (default: all photos) with its place on the blade."""
    settings = settings or load_settings(project)
    sizes = turbines(project)
    keys = list(project.keys() if keys is None else keys)
    out = Placement()
    rep = Reporter(len(keys), progress, should_stop)
    for key in keys:
        rep.check()
        rec = project.record(key)
        if not on_a_blade(rec.meta):
            out.unplaced.append(key)
            rep.step(message=key)
            continue
        try:
            found = photo_regions(project, key, source)
        except _images.ImageError as e:
            out.failed[key] = str(e)
            rep.step(message=key, error=str(e))
            continue
        if found is None:
            out.not_inspected.append(key)
            rep.step(message=key)
            continue
        sm, _, regions = found
        findings = assess(project, key, regions, settings)
        axis = photo_axis(project, key) if findings else Axis()
        t = sizes.get(str(rec.meta.get("turbine")))
        for n, f in enumerate(findings, start=1):
            centre, outline = region_outline(regions, f.region)
            pos = finding_position(rec.meta, regions.shape, centre, axis,
                                   t.blade_length_m if t else None)
            out.found.append(PlacedFinding(FindingRow.of(f, rec, sm.origin), n, centre,
                                           regions.shape, pos, axis, outline, inspection))
        rep.step(message=key)
    return out
