"""The report's blade maps and "Changes since DATE" for the PDF: the same drawing as the SVG.

:func:`map_drawing` draws :func:`ml.findings.blade_map.shapes` with reportlab's graphics (y
flipped: SVG counts down, PDF up). Text uses the fonts ``_pdf`` registers before any page is
laid out.
"""

from __future__ import annotations

import io
from xml.sax.saxutils import escape

from reportlab.graphics.shapes import Circle, Drawing, Line, Polygon, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.platypus import Flowable, Image, Paragraph, Spacer, Table, TableStyle

from ml.findings.blade_map import HEIGHT, BladeMap, shapes
from ml.findings.history import ORDER
from ml.findings.report._blade import BladeSection
from ml.findings.report._figures import SEVERITY_COLORS
from ml.metadata.values import SHORT_SIDES

WIDTH = A4[0] - 32 * mm  # the text width of _pdf's pages
BAND, INK, MUTED, LINE = "#14324f", "#1d2733", "#5f6b7a", "#dfe3e8"
FONT, BOLD = "B2P-Sans", "B2P-Sans-Bold"


def _c(hex_color: str | None):
    return colors.HexColor(hex_color) if hex_color else None


def map_drawing(bm: BladeMap, width: float = WIDTH) -> Drawing:
    """The blade map as a reportlab Drawing ``width`` points wide."""
    box = 900.0
    k = width / box
    d = Drawing(width, HEIGHT * k)
    for s in shapes(bm, box):
        p = s.points
        dash = [3, 2] if s.dash else None
        if s.kind == "poly":
            pts = [v * k if i % 2 == 0 else (HEIGHT - v) * k for i, v in enumerate(p)]
            d.add(Polygon(pts, fillColor=_c(s.fill), strokeColor=_c(s.stroke),
                          strokeWidth=s.width * k))
        elif s.kind == "line":
            d.add(Line(p[0] * k, (HEIGHT - p[1]) * k, p[2] * k, (HEIGHT - p[3]) * k,
                       strokeColor=_c(s.stroke), strokeWidth=s.width * k,
                       strokeDashArray=dash))
        elif s.kind == "circle":
            d.add(Circle(p[0] * k, (HEIGHT - p[1]) * k, p[2] * k, fillColor=_c(s.fill),
                         strokeColor=_c(s.stroke), strokeWidth=s.width * k))
        else:
            d.add(String(p[0] * k, (HEIGHT - p[1]) * k, s.text, fontName=BOLD if s.bold
                         else FONT, fontSize=s.size * k, fillColor=_c(s.fill),
                         textAnchor=s.anchor))
    return d


def _p(text: object, size: float = 7.5, color: str = INK, bold: bool = False) -> Paragraph:
    style = ParagraphStyle("b", fontName=BOLD if bold else FONT, fontSize=size,
                           leading=size * 1.25, textColor=colors.HexColor(color))
    return Paragraph(escape("" if text is None else str(text)), style)


def _table(head: list[str], widths: list[float], rows: list[list]) -> Table:
    body = [[_p(h, bold=True, color="#ffffff") for h in head]]
    body += [[c if isinstance(c, Flowable) else _p(c) for c in r] for r in rows]
    style = [("BACKGROUND", (0, 0), (-1, 0), colors.HexColor(BAND)),
             ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
             ("LINEBELOW", (0, 1), (-1, -1), 0.4, colors.HexColor(LINE)),
             ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
    return Table(body, colWidths=[w * WIDTH for w in widths], repeatRows=1, hAlign="LEFT",
                 style=TableStyle(style), spaceAfter=6)


def _sev(level: int) -> Paragraph:
    color = SEVERITY_COLORS.get(level, "#888888")
    style = ParagraphStyle("s", fontName=BOLD, fontSize=7.5, leading=9.5,
                           textColor=colors.white, backColor=colors.HexColor(color),
                           alignment=1)
    return Paragraph(str(level), style)


def maps_story(section: BladeSection, heading) -> list[Flowable]:
    """Each blade's map and the table its numbers refer to (``heading``: _pdf's heading)."""
    out = heading("Where on the blade" + (f" ({section.inspection} inspection)"
                                         if section.inspection else ""))
    out += [_p(p, 8, MUTED) for p in section.problems]
    for bm in section.maps:
        out += [map_drawing(bm), Spacer(1, 4)]
        rows = [[m.number, m.finding.position.text(), SHORT_SIDES.get(m.side, m.side or "?"),
                 m.finding.row.finding.class_name, _sev(m.severity),
                 f"{m.finding.key} #{m.finding.number}", m.finding.position.problem]
                for m in bm.markers]
        if rows:
            out.append(_table(["#", "Radius", "Side", "Class", "Sev.", "Image", "Note"],
                              [0.05, 0.19, 0.07, 0.1, 0.06, 0.4, 0.13], rows))
        if bm.no_radius:
            out.append(_p(f"{len(bm.no_radius)} finding(s) on photos without a radius.", 8,
                          MUTED))
    if section.unplaced:
        out.append(_p(f"Unplaced (no turbine or blade): {', '.join(section.unplaced)}", 8,
                      MUTED))
    return out


def changes_story(section: BladeSection, heading) -> list[Flowable]:
    """Per blade, grown and new first, each with the spot in both inspections."""
    comp = section.comparison
    if comp is None:
        return []
    out = heading(f"Changes since {comp.earlier.name}")
    out.append(_p(f"Inspection of {comp.current.name} against {comp.earlier.name}. A status "
                  f"with ? was matched by position only.", 8, MUTED))
    for (a, b), why in comp.failed_registrations().items():
        out.append(_p(f"Not registered: {a} → {b}: {why}", 7, MUTED))
    first = ("grown", "new")
    for (turbine, blade), entries in sorted(section.changes.items()):
        out += [Spacer(1, 4), _p(f"{turbine} · blade {blade}", 10, BAND, bold=True)]
        entries = sorted(entries, key=lambda x: (
            first.index(x.change.status) if x.change.status in first else len(first),
            ORDER[x.change.status]))
        rows = []
        for x in entries:
            ch = x.change
            img = Image(io.BytesIO(x.crops))
            scale = 0.42 * WIDTH / img.imageWidth
            img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
            area = " → ".join("–" if v is None else f"{v:,.0f} mm²" for v in ch.area_mm2)
            text = [_p(f"{ch.ident}  {ch.status}{'' if ch.certain else '?'}", 9, bold=True),
                    _p(f"Radius {ch.place.position.text()}, {ch.place.row.finding.class_name}"),
                    _p(f"Area {area}")]
            if ch.growth_pct_per_year is not None:
                text.append(_p(f"Change {ch.area_change_mm2:+,.0f} mm² "
                               f"({ch.growth_pct_per_year:+.0f} % per year)"))
            text.append(_p(ch.how + (f"; {ch.note}" if ch.note else ""), 7, MUTED))
            rows.append([img, text])
        out.append(Table(rows, colWidths=[0.45 * WIDTH, 0.55 * WIDTH], hAlign="LEFT",
                         style=TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"),
                                           ("LINEBELOW", (0, 0), (-1, -1), 0.4,
                                            colors.HexColor(LINE))])))
    return out
