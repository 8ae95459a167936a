"""The blade map: one diagram per blade, root to tip, the four sides as lanes, findings as markers.

:func:`blade_maps` groups placed findings (:mod:`ml.findings.placement`) by turbine and blade,
numbers them by radius (the numbers of the table printed beside the map) and
:func:`shapes` lays one map out as plain primitives (polygons, lines, circles, text) in a
``width`` x :data:`HEIGHT` box; :func:`to_svg` writes them as SVG (the HTML report, the GUI) and
the PDF report draws the same primitives with reportlab. Markers are coloured by severity; a
horizontal bar shows the radius' uncertainty; a finding beyond the blade length is drawn at the
tip with a red ring and named in ``problems``.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field

from ml.findings.placement import PlacedFinding
from ml.findings.severity import SEVERITY_COLORS
from ml.metadata.position import BEYOND, ZONES
from ml.metadata.values import SHORT_SIDES, SIDES

HEIGHT = 206
LANE_H = 34
TOP = 42  # y of the first lane
LEFT, RIGHT = 46, 16
INK, MUTED, BODY, EDGE = "#1d2733", "#5f6b7a", "#e9eef3", "#8a97a6"


@dataclass(frozen=True)
class Marker:
    number: int
    finding: PlacedFinding
    radius_m: float
    uncertainty_m: float | None
    side: str
    severity: int
    beyond: bool = False


@dataclass
class BladeMap:
    turbine: str
    blade: str
    length_m: float  # the blade length, else the longest radius seen (rounded up)
    length_known: bool
    markers: list[Marker] = field(default_factory=list)
    no_radius: list[PlacedFinding] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.turbine} · blade {self.blade}"


@dataclass(frozen=True)
class Shape:
    """One drawing primitive; ``kind`` is poly | line | circle | text."""

    kind: str
    points: tuple[float, ...]  # poly/line: x0, y0, x1, y1...; circle: cx, cy, r; text: x, y
    fill: str | None = None
    stroke: str | None = None
    width: float = 1.0
    text: str = ""
    size: float = 10.0
    anchor: str = "middle"  # start | middle | end
    bold: bool = False
    dash: bool = False
    ref: str = ""  # marker: "KEY#REGION" (the GUI opens the photo there)


def _lanes(markers: list[Marker]) -> list[str]:
    lanes = list(SIDES)
    if any(m.side not in SIDES for m in markers):
        lanes.append("")
    return lanes


def blade_maps(found: list[PlacedFinding],
               blade_lengths: dict[str, float | None] | None = None) -> list[BladeMap]:
    """One map per (turbine, blade) of ``found``, markers numbered 1.. by radius then side."""
    groups: dict[tuple[str, str], list[PlacedFinding]] = {}
    for p in found:
        groups.setdefault((p.row.turbine, p.row.blade), []).append(p)
    out = []
    for (turbine, blade), items in sorted(groups.items()):
        length = (blade_lengths or {}).get(turbine)
        with_r = sorted((p for p in items if p.radius is not None),
                        key=lambda p: (p.radius, SIDES.index(p.row.side)
                                       if p.row.side in SIDES else 9, p.key))
        far = max((p.radius for p in with_r), default=0.0)
        bm = BladeMap(turbine, blade, float(length or max(10.0, -(-far * 1.1 // 5) * 5)),
                      bool(length), no_radius=[p for p in items if p.radius is None])
        for n, p in enumerate(with_r, start=1):
            beyond = p.position.zone == BEYOND or p.radius < 0 or bool(length and
                                                                        p.radius > length)
            bm.markers.append(Marker(n, p, float(p.radius), p.position.uncertainty_m,
                                     p.row.side, p.row.finding.severity, beyond))
            if beyond:
                bm.problems.append(f"#{n}: radius {p.radius:.1f} m is outside the blade "
                                   f"(0 to {bm.length_m:g} m): check the photo's radius and "
                                   f"the blade length")
        out.append(bm)
    return out


def _outline(x0: float, x1: float, yc: float, half: float) -> tuple[float, ...]:
    """A blade plan form: round root, widest a fifth along, tapering to a narrow tip."""
    along = [0.0, 0.02, 0.08, 0.2, 0.45, 0.75, 0.95, 1.0]
    chord = [0.55, 0.6, 0.8, 1.0, 0.8, 0.5, 0.3, 0.18]
    top = [(x0 + a * (x1 - x0), yc - c * half) for a, c in zip(along, chord, strict=True)]
    bottom = [(x0 + a * (x1 - x0), yc + c * half) for a, c in zip(along, chord, strict=True)]
    pts = top + bottom[::-1]
    return tuple(v for p in pts for v in p)


def shapes(bm: BladeMap, width: float = 900.0, highlight: str | None = None) -> list[Shape]:
    """The map of ``bm`` as primitives in a ``width`` x :data:`HEIGHT` box.

    ``highlight``: a photo key whose markers get a dark ring (the GUI's current photo).
    """
    lanes = _lanes(bm.markers)
    x0, x1 = LEFT, width - RIGHT
    scale = (x1 - x0) / bm.length_m
    y_end = TOP + LANE_H * len(lanes)
    yc = (TOP + y_end) / 2
    out = [Shape("text", (x0, 16), text=bm.title, size=13, anchor="start", bold=True,
                 fill=INK),
           Shape("poly", _outline(x0, x1, yc, (y_end - TOP) / 2 + 6), fill=BODY, stroke=EDGE)]
    if bm.length_known:
        for k in (1, 2):
            x = x0 + k * bm.length_m / 3 * scale
            out.append(Shape("line", (x, TOP - 12, x, y_end + 4), stroke=EDGE, dash=True))
        for k, name in enumerate(ZONES):
            out.append(Shape("text", (x0 + (k + 0.5) * bm.length_m / 3 * scale, TOP - 4),
                             text=name, size=9, fill=MUTED))
    for i, side in enumerate(lanes):
        y = TOP + LANE_H * i
        if i:
            out.append(Shape("line", (x0, y, x1, y), stroke="#c5ced8", width=0.6, dash=True))
        out.append(Shape("text", (x0 - 6, y + LANE_H / 2 + 3.5),
                         text=SHORT_SIDES.get(side, "?"), size=10, anchor="end", bold=True,
                         fill=MUTED))
    step = next((s for s in (1, 2, 5, 10, 20, 25, 50, 100) if bm.length_m / s <= 12),
                bm.length_m / 10)
    r = 0.0
    while r <= bm.length_m + 1e-6:
        x = x0 + r * scale
        out.append(Shape("line", (x, y_end + 6, x, y_end + 10), stroke=MUTED))
        out.append(Shape("text", (x, y_end + 21), text=f"{r:g} m", size=9, fill=MUTED))
        r += step
    if not bm.length_known:
        out.append(Shape("text", (x1, y_end + 36), text="blade length unknown: drawn to the "
                         "farthest finding", size=9, anchor="end", fill=MUTED))
    out += _markers(bm, lanes, x0, scale, highlight)
    return out


def _spread(xs: list[float], gap: float = 17.0) -> list[float]:
    """Marker x positions in number order: runs closer than ``gap`` fan out around their mean."""
    out = list(xs)
    order = sorted(range(len(xs)), key=lambda i: (xs[i], i))
    run: list[int] = []
    for i in order + [None]:
        if run and (i is None or xs[i] - xs[run[-1]] >= gap):
            centre = sum(xs[j] for j in run) / len(run)
            for k, j in enumerate(sorted(run)):
                out[j] = centre + (k - (len(run) - 1) / 2) * gap
            run = []
        if i is not None:
            run.append(i)
    return out


def _markers(bm: BladeMap, lanes: list[str], x0: float, scale: float,
             highlight: str | None) -> list[Shape]:
    out: list[Shape] = []
    under: list[Shape] = []  # uncertainty bars and leaders, drawn below every marker
    for side in {m.side for m in bm.markers}:
        ms = [m for m in bm.markers if m.side == side]
        lane = lanes.index(side) if side in lanes else len(lanes) - 1
        yc = TOP + LANE_H * lane + LANE_H / 2
        true = [x0 + min(max(m.radius_m, 0.0), bm.length_m) * scale for m in ms]
        for m, x_true, x in zip(ms, true, _spread(true), strict=True):
            if m.uncertainty_m:
                u = m.uncertainty_m * scale
                under.append(Shape("line", (x_true - u, yc, x_true + u, yc), stroke=INK,
                                   width=1.2))
            if abs(x - x_true) > 1:  # fanned out to stay readable: a leader to its radius
                under.append(Shape("line", (x_true, yc + 12, x, yc + 6), stroke=MUTED,
                                   width=0.8))
                under.append(Shape("circle", (x_true, yc + 12, 1.6), fill=INK))
            ring = "#c62828" if m.beyond else INK if highlight == m.finding.key else "#ffffff"
            ref = f"{m.finding.key}#{m.finding.row.region_id}"
            out.append(Shape("circle", (x, yc, 8.5), fill=SEVERITY_COLORS.get(m.severity,
                                                                               "#888"),
                             stroke=ring, width=2.2 if ring != "#ffffff" else 1.2, ref=ref))
            out.append(Shape("text", (x, yc + 3.4), text=str(m.number), size=9, bold=True,
                             fill="#ffffff"))
    return under + out


def _esc(v: object) -> str:
    return html.escape(str(v), quote=True)


def to_svg(bm: BladeMap, width: float = 900.0, highlight: str | None = None,
           standalone: bool = True) -> str:
    """The map as SVG (no external references; user text escaped); ``standalone=False``: an
    element for an HTML page, without the namespace declaration."""
    ns = ' xmlns="http://www.w3.org/2000/svg"' if standalone else ""
    parts = [f'<svg{ns} viewBox="0 0 {width:g} {HEIGHT}" '
             f'width="100%" role="img" aria-label="{_esc("blade map " + bm.title)}" '
             f'font-family="Helvetica,Arial,sans-serif">']
    for s in shapes(bm, width, highlight):
        stroke = (f' stroke="{s.stroke}" stroke-width="{s.width:g}"' if s.stroke else "") + \
            (' stroke-dasharray="4 3"' if s.dash else "")
        fill = f' fill="{s.fill}"' if s.fill else ' fill="none"'
        p = s.points
        if s.kind == "poly":
            pts = " ".join(f"{p[i]:.1f},{p[i + 1]:.1f}" for i in range(0, len(p), 2))
            parts.append(f'<polygon points="{pts}"{fill}{stroke}/>')
        elif s.kind == "line":
            parts.append(f'<line x1="{p[0]:.1f}" y1="{p[1]:.1f}" x2="{p[2]:.1f}" '
                         f'y2="{p[3]:.1f}"{stroke}/>')
        elif s.kind == "circle":
            ref = f' data-ref="{_esc(s.ref)}"' if s.ref else ""
            parts.append(f'<circle cx="{p[0]:.1f}" cy="{p[1]:.1f}" r="{p[2]:g}"{fill}{stroke}'
                         f'{ref}><title>{_esc(s.ref)}</title></circle>')
        else:
            weight = ' font-weight="bold"' if s.bold else ""
            parts.append(f'<text x="{p[0]:.1f}" y="{p[1]:.1f}" font-size="{s.size:g}" '
                         f'text-anchor="{s.anchor}"{fill}{weight}>{_esc(s.text)}</text>')
    parts.append("</svg>")
    return "".join(parts)
