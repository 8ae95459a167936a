"""The report's blade maps and "Changes since DATE" as HTML (SVG maps, crops embedded)."""

from __future__ import annotations

import base64
import html

from ml.findings.blade_map import to_svg
from ml.findings.history import ORDER
from ml.findings.report._blade import BladeSection
from ml.findings.report._figures import SEVERITY_COLORS
from ml.metadata.values import SHORT_SIDES

CSS = """
.bmap{border:1px solid var(--line);border-radius:6px;padding:8px 10px;margin:10px 0}
.status{display:inline-block;border-radius:10px;padding:0 8px;font-size:12px;font-weight:600}
.st-new{background:#fdecea;color:#8e2420}.st-grown{background:#fff3e0;color:#9a4a00}
.st-stable,.st-matched{background:#eef1f4;color:#37474f}.st-shrunk{background:#e3f2e5;color:#1b5e20}
.st-gone{background:#e3f2fd;color:#0d47a1}
.change{display:grid;grid-template-columns:minmax(0,5fr) minmax(0,6fr);gap:16px;
 border-top:1px solid var(--line);padding:12px 0;break-inside:avoid}
.change img{width:100%;height:auto;border:1px solid var(--line)}
"""


def e(v: object) -> str:
    return html.escape("" if v is None else str(v), quote=True)


def _sev(level: int) -> str:
    return (f'<span class="sev" style="background:{SEVERITY_COLORS.get(level, "#888")}">'
            f"{level}</span>")


def _table(head: list[str], rows: list[list[str]]) -> str:
    th = "".join(f"<th>{h}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def maps_html(section: BladeSection) -> str:
    """One map per blade with the table its numbers refer to."""
    out = ["<h2>Where on the blade" + (f" ({e(section.inspection)} inspection)"
                                      if section.inspection else "") + "</h2>"]
    out += [f'<p class="muted">{e(p)}</p>' for p in section.problems]
    for bm in section.maps:
        rows = []
        for m in bm.markers:
            f = m.finding
            pos = f.position
            rows.append([str(m.number), f"{pos.radius_m:.1f} m" + (
                f" ± {pos.uncertainty_m:.1f}" if pos.uncertainty_m is not None else ""),
                e(pos.zone), e(SHORT_SIDES.get(m.side, m.side or "?")),
                e(f.row.finding.class_name), _sev(m.severity),
                f'<a href="#img-{e(f.key)}">{e(f.key)}</a> #{f.number}', e(pos.problem)])
        out.append(f'<div class="bmap">{to_svg(bm, standalone=False)}</div>')
        if rows:
            out.append(_table(["#", "Radius", "Zone", "Side", "Class", "Sev.", "Image",
                               "Note"], rows))
        if bm.no_radius:
            out.append(f'<p class="muted">{len(bm.no_radius)} finding(s) of this blade are on '
                       f"photos without a radius: "
                       f"{e(', '.join(sorted({p.key for p in bm.no_radius})))}.</p>")
    if section.unplaced:
        out.append(f'<p class="muted">Unplaced: {len(section.unplaced)} photo(s) name no '
                   f"turbine or blade and are on no map: {e(', '.join(section.unplaced))}.</p>")
    return "".join(out)


def _change(entry) -> str:
    ch = entry.change
    p = ch.place
    b64 = base64.b64encode(entry.crops).decode("ascii")
    area = " → ".join("–" if a is None else f"{a:,.0f} mm²" for a in ch.area_mm2)
    lines = [f"Radius {p.position.text()}, {SHORT_SIDES.get(p.row.side, p.row.side or '?')}, "
             f"{p.row.finding.class_name}, severity {p.row.finding.severity}", f"Area {area}"]
    if ch.area_change_mm2 is not None:
        lines.append(f"Change {ch.area_change_mm2:+,.0f} mm²"
                     + (f" ({ch.growth_pct_per_year:+.0f} % per year)"
                        if ch.growth_pct_per_year is not None else ""))
    if ch.length_change_mm is not None:
        lines.append(f"Length {ch.length_mm[0]:,.0f} → {ch.length_mm[1]:,.0f} mm")
    lines.append(("" if ch.certain else "Uncertain: ") + ch.how)
    if ch.note:
        lines.append(ch.note)
    body = "".join(f"<div>{e(t)}</div>" for t in lines)
    return (f'<div class="change"><div><img alt="{e(ch.ident)}" src="data:image/jpeg;base64,'
            f'{b64}"></div><div><h3>{e(ch.ident)} <span class="status st-{e(ch.status)}">'
            f"{e(ch.status)}{'' if ch.certain else '?'}</span></h3>"
            f'<div class="meta">{body}</div></div></div>')


def changes_html(section: BladeSection) -> str:
    """Per blade, grown and new first, each with the spot in both inspections."""
    comp = section.comparison
    if comp is None:
        return ""
    out = [f"<h2>Changes since {e(comp.earlier.name)}</h2>",
           f'<p class="muted">Inspection of {e(comp.current.name)} against {e(comp.earlier.name)}'
           ". A status with ? was matched by position only (no registered photo pair shows "
           "both).</p>"]
    bad = comp.failed_registrations()
    if bad:
        out.append('<p class="muted">Photo pairs not registered: ' + e("; ".join(
            f"{a} → {b}: {why}" for (a, b), why in bad.items())) + ".</p>")
    first = ("grown", "new")
    for (turbine, blade), entries in sorted(section.changes.items()):
        out.append(f"<h3>{e(turbine)} · blade {e(blade)}</h3>")
        entries = sorted(entries, key=lambda x: (
            first.index(x.change.status) if x.change.status in first else len(first),
            ORDER[x.change.status]))
        out += [_change(x) for x in entries]
    return "".join(out)
