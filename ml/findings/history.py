"""Each defect's history across inspections: matched, new, grown, stable, shrunk or gone.

:func:`compare` matches the findings of an earlier inspection to the current one's:

1. candidates lie on the same turbine, blade and side within a radius tolerance
   (``tolerance_m`` plus twice the two radii's combined uncertainty);
2. where both photos show the spot, the earlier photo is registered onto the current one
   (:func:`ml.findings.registration.register`) and the earlier region, carried over, must
   overlap the current one (a registered pair that does not overlap is no match, however
   close the radii); a region seen in view of a registered photo and overlapping nothing
   there is new (or gone) for certain;
3. what is left is matched by position only, nearest radius first, and marked so. A
   registration that fails (too few matches, a different blade) or a missing photo is
   reported per photo pair.

A match keeps one identity (``TURBINE/BLADE/SIDE#n``) through every inspection. Its status
follows the change in area (mm²): ``grown`` / ``shrunk`` beyond :data:`STABLE_BAND`, else
``stable``; ``matched`` when the sizes cannot be compared (no GSD in one photo), which the note
says. Unmatched current findings are ``new``; unmatched earlier ones ``gone`` (repaired).
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from ml.common import images as _images
from ml.common.progress import ProgressFn, Reporter, StopFn
from ml.findings.inspections import Inspection, all_inspections, find_inspection
from ml.findings.placement import PlacedFinding, Placement, place_findings
from ml.findings.registration import Features, Registration, features, register, warp_points
from ml.metadata.values import SHORT_SIDES
from ml.project.store import Project

STABLE_BAND = 0.15  # |area ratio - 1| below this is stable
MIN_OVERLAP = 0.2  # intersection over the smaller region, after registration
STATUSES = ("new", "grown", "stable", "shrunk", "matched", "gone")
ORDER = {s: i for i, s in enumerate(STATUSES)}  # grown and new first, as the report lists them


@dataclass(frozen=True)
class Change:
    ident: str
    status: str
    current: PlacedFinding | None
    earlier: PlacedFinding | None
    how: str = ""  # "registered, overlap 0.83" | "by position only: ..." | why new/gone
    certain: bool = False  # False: matched by position only, or status from position only
    years: float | None = None
    area_mm2: tuple[float | None, float | None] = (None, None)  # earlier, current
    length_mm: tuple[float | None, float | None] = (None, None)
    note: str = ""

    @property
    def area_change_mm2(self) -> float | None:
        a, b = self.area_mm2
        return None if a is None or b is None else b - a

    @property
    def length_change_mm(self) -> float | None:
        a, b = self.length_mm
        return None if a is None or b is None else b - a

    @property
    def area_ratio(self) -> float | None:
        a, b = self.area_mm2
        return None if a is None or b is None or a <= 0 else b / a

    @property
    def growth_pct_per_year(self) -> float | None:
        r = self.area_ratio
        return None if r is None or not self.years else 100.0 * (r - 1.0) / self.years

    @property
    def growth_mm2_per_year(self) -> float | None:
        d = self.area_change_mm2
        return None if d is None or not self.years else d / self.years

    @property
    def place(self) -> PlacedFinding:
        return self.current or self.earlier  # type: ignore[return-value]


@dataclass
class Comparison:
    """One inspection against the one before."""

    earlier: Inspection
    current: Inspection
    changes: list[Change] = field(default_factory=list)
    registrations: dict[tuple[str, str], Registration] = field(default_factory=dict)
    missing_photos: list[str] = field(default_factory=list)  # earlier photos gone from disk

    def failed_registrations(self) -> dict[tuple[str, str], str]:
        return {k: r.reason for k, r in self.registrations.items() if not r.ok}


@dataclass
class History:
    inspections: list[Inspection]
    comparisons: list[Comparison] = field(default_factory=list)
    unplaced: list[str] = field(default_factory=list)  # photos without turbine or blade
    placements: dict[str, Placement] = field(default_factory=dict)  # by inspection name
    undated: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def latest(self) -> Comparison | None:
        return self.comparisons[-1] if self.comparisons else None

    def summary(self) -> str:
        lines = [f"{len(self.inspections)} inspection(s): "
                 + ", ".join(i.name + ("*" if i.guessed else "") for i in self.inspections)]
        for c in self.comparisons:
            counts = {s: sum(ch.status == s for ch in c.changes) for s in STATUSES}
            lines.append(f"{c.current.name} since {c.earlier.name}: " + ", ".join(
                f"{n} {s}" for s, n in counts.items() if n))
            bad = c.failed_registrations()
            if bad:
                lines.append(f"  {len(bad)} photo pair(s) not registered (matched by position "
                             f"only)")
        if self.unplaced:
            lines.append(f"{len(self.unplaced)} photo(s) without turbine or blade: not placed "
                         f"on any blade")
        if self.undated:
            lines.append(f"{len(self.undated)} photo(s) without a date or inspection")
        return "\n".join(lines)


def _years(a: str, b: str) -> float:
    return (_dt.date.fromisoformat(b) - _dt.date.fromisoformat(a)).days / 365.25


def _where(p: PlacedFinding) -> tuple[str, str, str]:
    return p.row.turbine, p.row.blade, p.row.side


def _near(e: PlacedFinding, c: PlacedFinding, tol: float) -> float | None:
    """|Δradius| when within tolerance, else None; 0 when a radius is unknown (no constraint)."""
    if e.radius is None or c.radius is None:
        return None
    ue, uc = e.position.uncertainty_m or 1.0, c.position.uncertainty_m or 1.0
    d = abs(e.radius - c.radius)
    return d if d <= tol + 2 * math.hypot(ue, uc) else None


def _mask(shape: tuple[int, int], outline: np.ndarray) -> np.ndarray:
    import cv2

    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(outline).astype(np.int32)], 1)
    return m.astype(bool)


def _inside(pt: np.ndarray, shape: tuple[int, int]) -> bool:
    return 0 <= pt[0] < shape[1] and 0 <= pt[1] < shape[0]


class _Images:
    """Photos' registration features, computed once per comparison; None for a missing one."""

    def __init__(self) -> None:
        self.cache: dict[tuple[int, str], Features | None] = {}

    def get(self, project: Project, key: str) -> Features | None:
        k = (id(project), key)
        if k not in self.cache:
            try:
                self.cache[k] = features(project.load_image(key))
            except _images.ImageError:
                self.cache[k] = None
        return self.cache[k]


@dataclass
class _Evidence:
    """What registered photo pairs say: overlapping pairs, regions seen, pairs ruled out."""

    overlaps: list[tuple[float, int, int]] = field(default_factory=list)
    seen_old: set[int] = field(default_factory=set)  # in view of a registered current photo
    seen_new: set[int] = field(default_factory=set)
    vetoed: set[tuple[int, int]] = field(default_factory=set)


def _by_photo(found: list[PlacedFinding]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, f in enumerate(found):
        out.setdefault(f.key, []).append(i)
    return out


def _worth_registering(old: list[PlacedFinding], new: list[PlacedFinding], ids_old: list[int],
                       ids_new: list[int], tolerance_m: float) -> bool:
    if _where(old[ids_old[0]]) != _where(new[ids_new[0]]):
        return False
    return any(old[i].radius is None or new[j].radius is None
               or _near(old[i], new[j], tolerance_m + 2.0) is not None
               for i in ids_old for j in ids_new)


def _overlaps(ev: _Evidence, reg: Registration, old: list[PlacedFinding],
              new: list[PlacedFinding], ids_old: list[int], ids_new: list[int]) -> None:
    """Carry the earlier regions into the current photo and note which overlap."""
    shape = new[ids_new[0]].shape
    current = {j: _mask(shape, new[j].outline) for j in ids_new}
    for i in ids_old:
        centre = warp_points(reg.homography, np.array([old[i].centre]))[0]
        if not _inside(centre, shape):
            continue
        ev.seen_old.add(i)
        warped = _mask(shape, warp_points(reg.homography, old[i].outline))
        for j, cm in current.items():
            ov = np.logical_and(warped, cm).sum() / max(1, min(warped.sum(), cm.sum()))
            if ov >= MIN_OVERLAP:
                ev.overlaps.append((float(ov), i, j))
            else:
                ev.vetoed.add((i, j))
    hinv = np.linalg.inv(reg.homography)
    for j in ids_new:
        if _inside(warp_points(hinv, np.array([new[j].centre]))[0], old[ids_old[0]].shape):
            ev.seen_new.add(j)


def compare(earlier: Inspection, current: Inspection, old: list[PlacedFinding],
            new: list[PlacedFinding], tolerance_m: float = 1.0,
            should_stop: StopFn | None = None) -> Comparison:
    """Match ``old`` findings (of ``earlier``) to ``new`` ones (see the module's rules)."""
    out = Comparison(earlier, current)
    years = _years(earlier.date, current.date)
    photos = _Images()
    ev = _Evidence()
    for pk_old, ids_old in _by_photo(old).items():
        for pk_new, ids_new in _by_photo(new).items():
            if not _worth_registering(old, new, ids_old, ids_new, tolerance_m):
                continue
            if should_stop and should_stop():
                return out
            reg = _register(photos, earlier.project, pk_old, current.project, pk_new, out)
            if reg.ok:
                _overlaps(ev, reg, old, new, ids_old, ids_new)
    used_old: set[int] = set()
    used_new: set[int] = set()
    pairs: list[tuple[int, int, str, bool]] = []
    for ov, i, j in sorted(ev.overlaps, reverse=True):
        if i not in used_old and j not in used_new:
            used_old.add(i)
            used_new.add(j)
            pairs.append((i, j, f"registered, overlap {ov:.2f}", True))
    for _, i, j in _position_candidates(old, new, ev, used_old, used_new, tolerance_m):
        if i not in used_old and j not in used_new:
            used_old.add(i)
            used_new.add(j)
            why = _position_reason(out, old[i], new[j])
            pairs.append((i, j, f"by position only (Δr {abs(old[i].radius - new[j].radius):.1f}"
                                f" m; {why})", False))
    for i, j, how, certain in pairs:
        out.changes.append(_matched(old[i], new[j], how, certain, years))
    out.changes += _unmatched(old, new, ev, used_old, used_new, years)
    return out


def _position_candidates(old: list[PlacedFinding], new: list[PlacedFinding], ev: _Evidence,
                         used_old: set[int], used_new: set[int],
                         tolerance_m: float) -> list[tuple[float, int, int]]:
    """(Δradius, old, new) for pairs no registration spoke about, nearest first."""
    out = []
    for i, e in enumerate(old):
        if i in used_old or i in ev.seen_old:
            continue
        for j, c in enumerate(new):
            if j in used_new or j in ev.seen_new or (i, j) in ev.vetoed or _where(e) != _where(c):
                continue
            d = _near(e, c, tolerance_m)
            if d is not None:  # the same class first
                same = e.row.finding.class_name == c.row.finding.class_name
                out.append((d + (0.0 if same else 0.5), i, j))
    return sorted(out)


def _unmatched(old: list[PlacedFinding], new: list[PlacedFinding], ev: _Evidence,
               used_old: set[int], used_new: set[int], years: float) -> list[Change]:
    out = []
    for j, c in enumerate(new):
        if j not in used_new:
            seen = j in ev.seen_new
            why = "not in the earlier photo of this spot" if seen else \
                "no earlier finding near this radius"
            out.append(Change("", "new", c, None, why, seen, years,
                              (None, c.row.finding.area_mm2), (None, c.row.finding.length_mm)))
    for i, e in enumerate(old):
        if i not in used_old:
            seen = i in ev.seen_old
            why = "not in this inspection's photo of the spot" if seen else \
                "no finding near this radius now"
            out.append(Change("", "gone", None, e, why, seen, years,
                              (e.row.finding.area_mm2, None), (e.row.finding.length_mm, None)))
    return out


def _register(photos: _Images, p_old: Project, k_old: str, p_new: Project, k_new: str,
              out: Comparison) -> Registration:
    a, b = photos.get(p_old, k_old), photos.get(p_new, k_new)
    if a is None or b is None:
        if a is None and k_old not in out.missing_photos:
            out.missing_photos.append(k_old)
        reg = Registration(False, None, reason="earlier photo missing" if a is None
                           else "current photo missing")
    else:
        reg = register(a, b)
    out.registrations[(k_old, k_new)] = reg
    return reg


def _position_reason(out: Comparison, e: PlacedFinding, c: PlacedFinding) -> str:
    reg = out.registrations.get((e.key, c.key))
    return f"registration failed: {reg.reason}" if reg is not None else \
        "no photo pair shows both"


def _matched(e: PlacedFinding, c: PlacedFinding, how: str, certain: bool,
             years: float) -> Change:
    fe, fc = e.row.finding, c.row.finding
    area, length = (fe.area_mm2, fc.area_mm2), (fe.length_mm, fc.length_mm)
    note = ""
    if None in area:
        status = "matched"
        which = " and ".join(n for n, v in (("earlier", fe.area_mm2), ("current", fc.area_mm2))
                             if v is None)
        note = f"sizes not comparable: no GSD in the {which} photo"
    else:
        r = area[1] / max(area[0], 1e-9)
        status = "grown" if r > 1 + STABLE_BAND else "shrunk" if r < 1 - STABLE_BAND \
            else "stable"
    return Change("", status, c, e, how, certain, years, area, length, note)


def _identities(comparisons: list[Comparison]) -> None:
    """Name each defect once (TURBINE/BLADE/SIDE#n, by radius) and carry the name forward."""
    names: dict[tuple[str, str], str] = {}  # (inspection name, key#region) -> ident
    counters: dict[tuple[str, str, str], int] = {}

    def fresh(p: PlacedFinding) -> str:
        t, b, s = _where(p)
        n = counters.get((t, b, s), 0) + 1
        counters[(t, b, s)] = n
        return f"{t}/{b}/{SHORT_SIDES.get(s, s) or '?'}#{n}"

    for comp in comparisons:
        order = sorted(comp.changes, key=lambda ch: (_where(ch.place), ch.earlier is None,
                                                     ch.place.radius or 0.0))
        for k, ch in enumerate(order):
            if ch.earlier is not None:
                ek = (comp.earlier.name, f"{ch.earlier.key}#{ch.earlier.row.region_id}")
                ident = names.get(ek) or fresh(ch.earlier)
                names[ek] = ident
            else:
                ident = fresh(ch.current)
            if ch.current is not None:
                names[(comp.current.name, f"{ch.current.key}#{ch.current.row.region_id}")] = ident
            order[k] = Change(ident, *[getattr(ch, f) for f in (
                "status", "current", "earlier", "how", "certain", "years", "area_mm2",
                "length_mm", "note")])
        comp.changes = sorted(order, key=lambda ch: (_where(ch.place), ORDER[ch.status],
                                                     ch.place.radius or 0.0))


def project_history(project: Project, previous: Iterable[Project] = (), source: str = "student",
                    tolerance_m: float = 1.0, since: str | None = None,
                    progress: ProgressFn | None = None,
                    should_stop: StopFn | None = None) -> History:
    """Every inspection of ``project`` (and linked older projects) compared with the one before.

    ``since``: compare the latest inspection with the one of this name (or date) only.
    """
    found, undated = all_inspections(project, list(previous))
    hist = History(found, undated=undated)
    rep = Reporter(sum(len(i.keys) for i in found), progress, should_stop)
    for insp in found:
        pl = place_findings(insp.project, insp.keys, source, inspection=insp.name,
                            progress=lambda p: rep.step(message=p.message), should_stop=should_stop)
        hist.placements[insp.name] = pl  # placed once: the report's blade maps reuse them
        hist.unplaced += pl.unplaced
        hist.failed.update(pl.failed)
    pairs = list(zip(found, found[1:], strict=False))
    if since is not None:
        earlier = find_inspection(found, since)
        pairs = [(earlier, found[-1])] if earlier is not found[-1] else []
    for a, b in pairs:
        hist.comparisons.append(compare(a, b, hist.placements[a.name].found,
                                        hist.placements[b.name].found, tolerance_m, should_stop))
    _identities(hist.comparisons)
    return hist
