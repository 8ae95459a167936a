"""The findings review: every defect region of a photo or a project, as a customer gets it.

A finding is one region (:mod:`ml.project.regions`) of the mask a report reads (``source``, default
the student's prediction, else the teacher's mask) with its size, the suggested severity and
the rule that gave it, a reviewer's severity, note and "accepted" flag
(:mod:`ml.findings.severity`), the repair action of the severity that counts, and the photo's
turbine / blade / side.

* :func:`list_findings` lists them for one photo or the whole project, filtered
  (:class:`FindingFilter`);
* :func:`set_review` (from :mod:`ml.findings.severity`) records a person's decisions, saved in the
  project at once, and returns the previous ones for :func:`restore_review` (undo);
  :func:`with_reviews` updates listed rows after one without reading the masks again;
* :func:`findings_csv` writes them, one row per finding (``findings.csv`` of a report), with
  each finding's radius (± uncertainty) and zone where the listing worked them out
  (:mod:`ml.findings.locate`).

Length is :meth:`ml.project.regions.RegionSet.length_px`: the longer side of the smallest rotated
rectangle around the region, so a curved crack counts its chord, not its path.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from ml.common import images as _images
from ml.common.images import fit_to_record
from ml.common.progress import ProgressFn, Reporter, StopFn
from ml.findings.locate import UNPLACED, finding_positions, on_a_blade
from ml.findings.severity import (
    LEVELS,
    Finding,
    RegionReview,
    SeveritySettings,
    assess,
    load_settings,
    restore_review,
    reviews,
    set_review,
)
from ml.metadata.position import FindingPosition, turbines
from ml.project.masks import SourceMask, check_source, mask_for
from ml.project.records import ImageRecord
from ml.project.regions import RegionSet, find_regions
from ml.project.store import Project, ProjectError

__all__ = ["CSV_COLUMNS", "FindingFilter", "FindingList", "FindingRow", "RegionReview",
           "find_finding", "findings_csv", "list_findings", "photo_findings", "photo_regions",
           "restore_review", "set_review", "with_reviews"]


@dataclass(frozen=True)
class FindingRow:
    """A finding with what the list shows about its photo."""

    finding: Finding
    turbine: str
    blade: str
    side: str
    mask: str  # the mask it was found in: teacher | edited | student
    photo_reviewed: bool  # the photo's mask is marked reviewed (``ImageRecord.reviewed``)
    position: FindingPosition | None = None  # radius and zone; None: not worked out

    @classmethod
    def of(cls, finding: Finding, record: ImageRecord, mask: str,
           position: FindingPosition | None = None) -> FindingRow:
        meta = record.meta
        return cls(finding, *(str(meta.get(k, "") or "") for k in ("turbine", "blade", "side")),
                   mask, record.reviewed, position)

    @property
    def zone(self) -> str:
        """root / mid / tip, 'beyond blade length', 'unplaced' (no turbine or blade), or ''."""
        if self.position is not None:
            return self.position.zone
        return "" if on_a_blade({"turbine": self.turbine, "blade": self.blade}) else UNPLACED

    @property
    def key(self) -> str:
        return self.finding.key

    @property
    def region_id(self) -> str:
        return self.finding.region.id


@dataclass(frozen=True)
class FindingFilter:
    """Which findings to list; every field left empty lets all through."""

    severity: int | None = None  # the severity that counts (a reviewer's, else suggested)
    at_least: bool = False  # ``severity`` and above
    class_name: str | None = None
    turbine: str | None = None
    blade: str | None = None
    unreviewed: bool = False  # only findings nobody has accepted yet

    def __post_init__(self) -> None:
        if self.severity is not None and self.severity not in LEVELS:
            raise ProjectError(f"severity filter must be 1-5, got {self.severity}")

    def matches(self, row: FindingRow) -> bool:
        f = row.finding
        if self.severity is not None and not (
                f.severity >= self.severity if self.at_least else f.severity == self.severity):
            return False
        return ((self.class_name is None or f.class_name == self.class_name)
                and (self.turbine is None or row.turbine == self.turbine)
                and (self.blade is None or row.blade == self.blade)
                and not (self.unreviewed and f.accepted))


@dataclass
class FindingList:
    """What :func:`list_findings` found."""

    rows: list[FindingRow] = field(default_factory=list)
    not_inspected: list[str] = field(default_factory=list)  # photos without a mask to read
    failed: dict[str, str] = field(default_factory=dict)  # key -> why its mask is unreadable
    source: str = "student"

    def summary(self) -> str:
        photos = len({r.key for r in self.rows})
        accepted = sum(r.finding.accepted for r in self.rows)
        text = (f"{len(self.rows)} finding(s) on {photos} photo(s), {accepted} accepted, "
                f"{len(self.rows) - accepted} to review")
        if self.not_inspected:
            text += f"; {len(self.not_inspected)} photo(s) have no mask"
        return text


def photo_regions(project: Project, key: str,
                  source: str = "student") -> tuple[SourceMask, np.ndarray, RegionSet] | None:
    """The mask a report reads for ``key`` (at the photo's size) and its regions, or None.

    ``student`` falls back to the teacher's mask where the photo has no prediction, holds the
    proposals found under its threshold (a report lists those a person accepted) and says what
    a person decided about them: an accepted one in the person's class, a rejected one gone.
    """
    sm = mask_for(project, key, source, fallback=(source == "student"), proposals=True,
                  decisions=True)
    if sm is None:
        return None
    rec = project.record(key)
    label = fit_to_record(sm.label, rec.width, rec.height)
    conf = (fit_to_record(sm.confidence, rec.width, rec.height)
            if sm.confidence is not None else None)
    return sm, label, find_regions(label, conf)


def photo_findings(project: Project, key: str, source: str = "student",
                   settings: SeveritySettings | None = None, gsd: float | None = None,
                   blade_lengths: Mapping[str, float | None] | None = None,
                   ) -> list[FindingRow] | None:
    """The findings of one photo, most severe first; None when it has no mask of ``source``.

    With ``blade_lengths`` (turbine -> blade length) each row carries its radius and zone
    (:func:`ml.findings.locate.finding_positions`).
    """
    found = photo_regions(project, key, source)
    if found is None:
        return None
    sm, _, regions = found
    settings = settings or load_settings(project)
    rec = project.record(key)
    findings = assess(project, key, regions, settings, gsd)
    where = finding_positions(project, key, regions, (f.region for f in findings),
                              blade_lengths, gsd) if blade_lengths is not None else {}
    return [FindingRow.of(f, rec, sm.origin, where.get(f.region.id)) for f in findings]


def list_findings(project: Project, key: str | None = None, source: str = "student",
                  where: FindingFilter | None = None, gsd: float | None = None,
                  settings: SeveritySettings | None = None, progress: ProgressFn | None = None,
                  should_stop: StopFn | None = None, positions: bool = True) -> FindingList:
    """Findings of photo ``key`` or, without one, of every photo in project order.

    Within a photo the most severe (then largest) come first. A photo whose mask cannot be
    read is named in ``failed`` and the rest are listed. ``positions``: each row's radius and
    zone (a photo with a radius and a GSD but no roll in its metadata is read for its axis).
    """
    check_source(source)
    if gsd is not None and not gsd > 0:
        raise ProjectError(f"GSD must be a positive number of mm per pixel, got {gsd}")
    keys = [key] if key is not None else project.keys()
    if key is not None:
        project.record(key)  # names an unknown photo
    settings = settings or load_settings(project)
    where = where or FindingFilter()
    lengths = {n: t.blade_length_m for n, t in turbines(project).items()} if positions else None
    out = FindingList(source=source)
    rep = Reporter(len(keys), progress, should_stop)
    for k in keys:
        rep.check()
        try:
            rows = photo_findings(project, k, source, settings, gsd, lengths)
        except _images.ImageError as e:  # a damaged mask file: named, the others go on
            out.failed[k] = str(e)
            rep.step(message=k, error=str(e))
            continue
        if rows is None:
            out.not_inspected.append(k)
        else:
            out.rows.extend(r for r in rows if where.matches(r))
        rep.step(message=k)
    return out


def with_reviews(project: Project, rows: list[FindingRow],
                 settings: SeveritySettings | None = None) -> list[FindingRow]:
    """``rows`` with the decisions stored now (after :func:`set_review`), in the same order.

    Regions and sizes are kept, not read again: a decision does not change the mask.
    """
    settings = settings or load_settings(project)
    decided = {k: reviews(project.record(k)) for k in {r.key for r in rows}}
    out = []
    for row in rows:
        f = row.finding
        rev = decided[f.key].get(f.region.id, RegionReview())
        level = f.suggested if rev.level is None else rev.level
        out.append(replace(row, finding=replace(
            f, severity=level, overridden=rev.level is not None,
            category=settings.category(level), note=rev.note, accepted=rev.accepted)))
    return out


def find_finding(project: Project, key: str, region_id: str,
                 source: str = "student") -> FindingRow:
    """The finding ``region_id`` of photo ``key``; a clear error naming the ones there are."""
    rows = photo_findings(project, key, source)
    if rows is None:
        raise ProjectError(f"{key}: no {source} mask, so no findings to review")
    for r in rows:
        if r.region_id == region_id:
            return r
    have = ", ".join(r.region_id for r in rows) or "none"
    raise ProjectError(f"{key}: no region '{region_id}' in the {source} mask (regions: {have})")


# ----------------------------------------------------------------- findings.csv
CSV_COLUMNS = ("image", "turbine", "blade", "side", "radius_m", "radius_uncertainty_m", "zone",
               "region_id", "class", "severity", "severity_name", "suggested_severity",
               "override", "area_px", "area_pct", "area_mm2", "bbox", "confidence", "mask",
               "reviewed", "action", "time_frame", "length_px", "length_mm", "accepted", "note",
               "severity_rule", "position_note")


def _cell(v: object) -> str:
    s = "" if v is None else str(v)
    # a spreadsheet would run a cell starting with these as a formula
    return "'" + s if s[:1] in ("=", "+", "-", "@") else s


def _radius(p: FindingPosition | None) -> tuple[str, str, str]:
    """(radius to 0.1 m, its uncertainty, what is wrong or doubtful about it)."""
    if p is None or p.radius_m is None:
        return "", "", p.problem if p is not None else ""
    unc = "" if p.uncertainty_m is None else f"{p.uncertainty_m:.1f}"
    return f"{p.radius_m:.1f}", unc, p.problem


def findings_csv(rows: Iterable[FindingRow]) -> str:
    """One CSV row per finding (``reviewed``: the photo's mask; ``accepted``: the finding;
    ``zone``: root / mid / tip, 'beyond blade length', or 'unplaced' without turbine or
    blade)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for row in rows:
        f, r = row.finding, row.finding.region
        radius, unc, problem = _radius(row.position)
        w.writerow([_cell(v) for v in (
            f.key, row.turbine, row.blade, row.side, radius, unc, row.zone, r.id, f.class_name,
            f.severity,
            f.category.name, f.suggested, "yes" if f.overridden else "no", r.area,
            f"{f.area_pct:.4f}", "" if f.area_mm2 is None else f"{f.area_mm2:.1f}",
            " ".join(map(str, r.bbox)), "" if r.confidence is None else f"{r.confidence:.3f}",
            row.mask, "yes" if row.photo_reviewed else "no", f.category.action,
            f.category.time_frame, f"{f.length_px:.1f}",
            "" if f.length_mm is None else f"{f.length_mm:.1f}",
            "yes" if f.accepted else "no", f.note, f.rule, problem)])
    return buf.getvalue()
