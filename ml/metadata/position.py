"""Where a photo, and a defect in it, lies along the blade: radius from the root, and zone.

Fields (``record.meta``, written through :mod:`ml.metadata.values`, guesses marked):

* ``radius_m``: distance from the blade root to the point at the photo's centre, metres;
* ``hub_height_m`` and ``blade_length_m``: the turbine's, set on every photo of that turbine
  (:func:`set_turbine`); :func:`turbines` reads them back and names photos that disagree.

Guesses for ``radius_m`` (:func:`radius_guesses`, :func:`along`), never over a person's value:

* a folder or file name ``.../B/PS/12.5m/...`` or ``DJI_0042_12.5m.jpg``;
* a drone photo with the blade pointing down (6 o'clock): hub height minus the height the
  camera looks at, which is the drone's height above the tower base (XMP RelativeAltitude, or
  GPS altitude minus the take-off altitude) plus distance × sin(gimbal pitch);
* a sequence of photos along one blade side with a known step (:func:`along`).

A finding's radius (:func:`finding_position`) is the photo's radius plus the offset of the
region's centre along the blade axis × GSD. The axis is the photo's direction from root to
tip: from the gimbal roll (blade hanging straight down, image turned by the roll), else from
the blade's edges in the photo (:func:`ml.metadata.blade_axis.axis_from_edges`), else assumed
straight down. The uncertainty combines the photo radius', the GSD's and the axis' (see
:data:`RADIUS_SIGMA`); values are reported to 0.1 m.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.metadata.values import (
    CAPTURE,
    RADIUS_FOLDER,
    apply_guesses,
    guessed,
    normalize_blade,
    normalize_side,
    set_values,
)
from ml.project.store import Project, ProjectError

ZONES = ("root", "mid", "tip")
BEYOND = "beyond blade length"
DOWN_DEG = 90.0  # image angle (x right, y down) of root -> tip for a blade hanging straight down
# one standard deviation of a photo radius by where it came from (m): a person's, a folder
# station, a sequence step, the drone's altitude (barometric, a few metres)
RADIUS_SIGMA = {"person": 0.1, "folder": 0.25, "sequence": 0.5, "altitude": 2.0, "other": 1.0}
GSD_SIGMA = {"person": 0.03, "guessed": 0.15}  # relative
AXIS_SIGMA_DEG = {"roll": 3.0, "edges": 4.0, "assumed": 20.0}
_NAME_RADIUS = re.compile(r"(?i)(?:^|[_\-\s])r?(\d+(?:[.,]\d+)?)m(?:$|[_\-\s])")


# ----------------------------------------------------------------- turbines
@dataclass(frozen=True)
class Turbine:
    name: str
    hub_height_m: float | None = None
    blade_length_m: float | None = None
    photos: int = 0
    conflicts: tuple[str, ...] = ()  # "hub_height_m: 100 on 3 photos, 105 on 1"


def _number(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def turbines(project: Project) -> dict[str, Turbine]:
    """Every turbine named in the photos' meta, with the sizes its photos hold (most common)."""
    seen: dict[str, dict[str, dict[float, int]]] = {}
    count: dict[str, int] = {}
    for key in project.keys():
        meta = project.record(key).meta
        name = str(meta.get("turbine") or "")
        if not name:
            continue
        count[name] = count.get(name, 0) + 1
        for f in ("hub_height_m", "blade_length_m"):
            v = _number(meta.get(f))
            if v is not None:
                seen.setdefault(name, {}).setdefault(f, {})
                seen[name][f][v] = seen[name][f].get(v, 0) + 1
    out = {}
    for name, n in count.items():
        vals, conflicts = {}, []
        for f, votes in seen.get(name, {}).items():
            vals[f] = max(votes, key=lambda v: (votes[v], -v))
            if len(votes) > 1:
                conflicts.append(f"{f}: " + ", ".join(f"{v:g} on {c} photo(s)"
                                                      for v, c in sorted(votes.items())))
        out[name] = Turbine(name, vals.get("hub_height_m"), vals.get("blade_length_m"), n,
                            tuple(conflicts))
    return out


def set_turbine(project: Project, turbine: str, hub_height_m: float | None = None,
                blade_length_m: float | None = None) -> int:
    """A person's hub height and blade length for ``turbine``: stored on each of its photos."""
    keys = [k for k in project.keys() if project.record(k).meta.get("turbine") == turbine]
    if not keys:
        raise ProjectError(f"no photo of turbine '{turbine}' (set the photos' turbine first)")
    values = {k: v for k, v in (("hub_height_m", hub_height_m),
                                ("blade_length_m", blade_length_m)) if v is not None}
    if not values:
        raise ProjectError("give a hub height, a blade length or both")
    set_values(project, keys, **values)
    return len(keys)


def zone(radius_m: float | None, blade_length_m: float | None) -> str:
    """'root' / 'mid' / 'tip' (thirds of the blade), :data:`BEYOND`, or '' when unknown."""
    if radius_m is None or not blade_length_m:
        return ""
    if radius_m > blade_length_m or radius_m < 0:
        return BEYOND
    return ZONES[min(2, int(3 * radius_m / blade_length_m))]


# ----------------------------------------------------------------- guesses
def radius_from_name(key: str) -> float | None:
    """12.5 from '.../B/PS/12.5m/x.jpg' or 'x_12.5m.jpg'; None when the path names none."""
    parts = Path(key).parts
    for folder in reversed(parts[:-1]):
        m = RADIUS_FOLDER.fullmatch(folder.strip())
        if m:
            return float(m[1].replace(",", "."))
    m = _NAME_RADIUS.search(Path(key).stem)
    return float(m[1].replace(",", ".")) if m else None


def radius_from_altitude(capture: Mapping, hub_height_m: float | None,
                         distance_m: float | None = None,
                         takeoff_alt_m: float | None = None) -> tuple[float, str] | None:
    """Radius at the photo's centre for a blade hanging down, and how; None without inputs.

    Height of the drone above the tower base: XMP RelativeAltitude (take-off at the tower
    base), else GPS altitude minus ``takeoff_alt_m``. The camera looks at the blade
    ``distance`` away (laser rangefinder, else ``distance_m``) tilted by the gimbal pitch, so
    it sees the blade at height + distance × sin(pitch).
    """
    if not hub_height_m:
        return None
    rel, alt = _number(capture.get("relative_alt_m")), _number(capture.get("alt_m"))
    if rel is not None:
        height, how = rel, "hub height − drone height (XMP RelativeAltitude)"
    elif alt is not None and takeoff_alt_m is not None:
        height, how = alt - takeoff_alt_m, "hub height − (GPS altitude − take-off altitude)"
    else:
        return None
    pitch = _number(capture.get("gimbal_pitch_deg"))
    dist = _number(capture.get("laser_distance_m")) or distance_m
    if pitch and dist:
        height += dist * math.sin(math.radians(pitch))
        how += f", gimbal pitch {pitch:g}° at {dist:g} m"
    elif pitch:
        how += f"; gimbal pitch {pitch:g}° not corrected (no distance)"
    return hub_height_m - height, how


def radius_guesses(key: str, meta: Mapping, takeoff_alt_m: float | None = None,
                   ) -> dict[str, tuple[Any, str]]:
    """``{"radius_m": (value, how)}`` from the file's name, else the drone's altitude."""
    r = radius_from_name(key)
    if r is not None:
        return {"radius_m": (r, "folder name")}
    cap = meta.get(CAPTURE)
    if isinstance(cap, Mapping):
        found = radius_from_altitude(cap, _number(meta.get("hub_height_m")),
                                     _number(meta.get("distance_m")), takeoff_alt_m)
        if found is not None and found[0] >= 0:  # above the hub: not a blade hanging down
            return {"radius_m": (round(found[0], 2), f"altitude: {found[1]}")}
    return {}


@dataclass
class PositionFill:
    filled: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # a person's radius, left alone
    without: list[str] = field(default_factory=list)  # nothing to guess from
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"radius guessed on {len(self.filled)} photo(s); {len(self.kept)} kept "
                f"(set by a person); {len(self.without)} without a clue")
        return "\n".join([text, *self.warnings])


def fill_radius(project: Project, keys: Iterable[str] | None = None,
                takeoff_alt_m: float | None = None) -> PositionFill:
    """Guess ``radius_m`` from names and stored capture facts (run ``b2p meta --auto`` first)."""
    out = PositionFill()
    with project.batch():
        for key in list(project.keys() if keys is None else keys):
            meta = project.record(key).meta
            g = radius_guesses(key, meta, takeoff_alt_m)
            if not g:
                out.without.append(key)
                continue
            new, kept = apply_guesses(project, key, g)
            (out.filled if new else out.kept).append(key)
    out.warnings = beyond_blade(project, keys)
    return out


def along(project: Project, blade_side: str, start_m: float, step_m: float,
          keys: Iterable[str] | None = None) -> PositionFill:
    """Radius guesses for a sequence along one blade side: ``start + i × step`` in capture order.

    ``blade_side`` is 'B/PS' (any spelling :func:`normalize_blade`/:func:`normalize_side`
    read). Photos of each turbine form their own sequence, ordered by capture time, then key.
    """
    b, _, s = blade_side.partition("/")
    blade, side = normalize_blade(b), normalize_side(s)
    if blade is None or side is None:
        raise ProjectError(f"--along '{blade_side}': want BLADE/SIDE, e.g. B/PS")
    if not (math.isfinite(start_m) and math.isfinite(step_m)) or start_m < 0 or step_m == 0:
        raise ProjectError(f"--from must be >= 0 and --step not 0 (got {start_m}, {step_m})")
    pool = list(project.keys() if keys is None else keys)
    chosen = [k for k in pool if project.record(k).meta.get("blade") == blade
              and project.record(k).meta.get("side") == side]
    if not chosen:
        raise ProjectError(f"no photo of blade {blade}, side {side} (set blade and side first)")
    groups: dict[str, list[str]] = {}
    for k in chosen:
        groups.setdefault(str(project.record(k).meta.get("turbine") or ""), []).append(k)
    out = PositionFill()
    with project.batch():
        for _, ks in sorted(groups.items()):
            ks.sort(key=lambda k: (_taken(project.record(k).meta), k))
            for i, k in enumerate(ks):
                r = start_m + i * step_m
                if r < 0:
                    out.warnings.append(f"{k}: the sequence reaches {r:g} m, below the root; "
                                        f"left without a radius")
                    continue
                how = f"sequence along {blade}/{side}: {start_m:g} m + {i} × {step_m:g} m"
                new, kept = apply_guesses(project, k, {"radius_m": (round(r, 3), how)})
                (out.filled if new else out.kept).append(k)
    out.warnings += beyond_blade(project, chosen)
    return out


def _taken(meta: Mapping) -> str:
    cap = meta.get(CAPTURE)
    return str(cap.get("taken") or "") if isinstance(cap, Mapping) else ""


def beyond_blade(project: Project, keys: Iterable[str] | None = None) -> list[str]:
    """One line per photo whose radius lies beyond its turbine's blade length."""
    sizes = turbines(project)
    out = []
    for k in list(project.keys() if keys is None else keys):
        meta = project.record(k).meta
        r, t = _number(meta.get("radius_m")), sizes.get(str(meta.get("turbine") or ""))
        if r is not None and t and t.blade_length_m and r > t.blade_length_m:
            out.append(f"{k}: radius {r:g} m is beyond the blade length {t.blade_length_m:g} m "
                       f"of {t.name}; check both")
    return out


# ----------------------------------------------------------------- a finding's radius
@dataclass(frozen=True)
class Axis:
    """Root-to-tip direction in the image (degrees; x right, y down) and its uncertainty."""

    angle_deg: float = DOWN_DEG
    sigma_deg: float = AXIS_SIGMA_DEG["assumed"]
    how: str = "assumed: blade pointing down in the photo"


def axis_from_meta(meta: Mapping) -> Axis | None:
    """The axis a level camera's roll implies for a blade hanging straight down, or None."""
    cap = meta.get(CAPTURE)
    roll = _number(cap.get("gimbal_roll_deg")) if isinstance(cap, Mapping) else None
    if roll is None:
        return None
    return Axis(DOWN_DEG - roll, AXIS_SIGMA_DEG["roll"], f"gimbal roll {roll:g}°")


@dataclass(frozen=True)
class FindingPosition:
    radius_m: float | None  # to 0.1 m
    uncertainty_m: float | None  # one standard deviation, to 0.1 m; None: cannot be bounded
    zone: str
    how: str
    problem: str = ""  # why the radius is missing or doubtful

    def text(self) -> str:
        """'23.5 ± 0.4 m (mid)', or '–'."""
        if self.radius_m is None:
            return "–"
        unc = f" ± {self.uncertainty_m:.1f}" if self.uncertainty_m is not None else ""
        return f"{self.radius_m:.1f}{unc} m" + (f" ({self.zone})" if self.zone else "")


def _radius_source(meta: Mapping) -> str:
    how = guessed(meta).get("radius_m")
    if how is None:
        return "person"
    for src in ("folder", "sequence", "altitude"):
        if how.startswith(src):
            return src
    return "other"


def finding_position(meta: Mapping, shape: tuple[int, int], centre_xy: tuple[float, float],
                     axis: Axis, blade_length_m: float | None = None) -> FindingPosition:
    """The radius of a region centred at ``centre_xy`` in a photo of ``shape`` (H, W)."""
    r0 = _number(meta.get("radius_m"))
    if r0 is None:
        return FindingPosition(None, None, "", "", "the photo has no radius")
    src = _radius_source(meta)
    sigma_r = RADIUS_SIGMA[src]
    mark = "" if src == "person" else "*"
    gsd = _number(meta.get("gsd_mm"))
    if not gsd or gsd <= 0:
        return _checked(FindingPosition(
            round(r0, 1), None, "", f"photo radius {r0:g} m{mark}; no GSD, so the offset "
            f"within the photo is unknown", "no GSD: the photo's radius only"), blade_length_m)
    h, w = shape
    dx, dy = centre_xy[0] - (w - 1) / 2, centre_xy[1] - (h - 1) / 2
    a = math.radians(axis.angle_deg)
    along_px = dx * math.cos(a) + dy * math.sin(a)
    across_px = -dx * math.sin(a) + dy * math.cos(a)
    off = along_px * gsd / 1000.0
    sigma_g = GSD_SIGMA["guessed" if "gsd_mm" in guessed(meta) else "person"]
    sigma = math.sqrt(sigma_r ** 2 + (off * sigma_g) ** 2
                      + (across_px * gsd / 1000.0 * math.radians(axis.sigma_deg)) ** 2)
    how = (f"photo radius {r0:g} m{mark} {'+' if off >= 0 else '−'} {abs(off):.2f} m along "
           f"the blade ({axis.how})")
    return _checked(FindingPosition(round(r0 + off, 1), max(0.1, round(sigma, 1)), "", how),
                    blade_length_m)


def _checked(p: FindingPosition, blade_length_m: float | None) -> FindingPosition:
    z = zone(p.radius_m, blade_length_m)
    problem = p.problem
    if p.radius_m is not None and p.radius_m < 0:
        problem = (f"radius {p.radius_m:.1f} m is before the root: check the photo's radius")
    elif z == BEYOND:
        problem = (f"radius {p.radius_m:.1f} m is beyond the blade length "
                   f"{blade_length_m:g} m: check the photo's radius and the blade length")
    return FindingPosition(p.radius_m, p.uncertainty_m, z, p.how, problem)
