"""The inspection report as a PDF laid out by reportlab's platypus (A4 portrait, no browser).

Pages: summary; turbines and blades, priority findings and images without findings; one page
per image with findings; provenance and severity scale. Tables break across pages and repeat
their header row; cells wrap instead of being cut. Text is set in DejaVu Sans (shipped with
matplotlib), which covers far more scripts in file names than the PDF base fonts.
"""

from __future__ import annotations

import io
from pathlib import Path
from xml.sax.saxutils import escape

from matplotlib import get_data_path
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    Flowable,
    HRFlowable,
    Image,
    PageBreak,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from ml.findings.report._blade_pdf import changes_story, maps_story
from ml.findings.report._data import (
    GUESS_NOTE,
    ImageEntry,
    ReportData,
    any_guessed,
    by_class,
    by_severity,
    by_turbine_blade,
    details,
    where,
)
from ml.findings.report._data import priority as _priority
from ml.findings.report._figures import SEVERITY_COLORS

BAND, INK, MUTED, LINE, SOFT = "#14324f", "#1d2733", "#5f6b7a", "#dfe3e8", "#f5f7fa"
MARGIN = 16 * mm
WIDTH = A4[0] - 2 * MARGIN  # text width, points
PRIORITY_LIMIT = 50


def _fonts() -> tuple[str, str]:
    """Register DejaVu Sans (regular, bold) once; return their names."""
    if "B2P-Sans" not in pdfmetrics.getRegisteredFontNames():
        ttf = Path(get_data_path()) / "fonts" / "ttf"
        pdfmetrics.registerFont(TTFont("B2P-Sans", str(ttf / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont("B2P-Sans-Bold", str(ttf / "DejaVuSans-Bold.ttf")))
    return "B2P-Sans", "B2P-Sans-Bold"


def _style(size: float = 7.5, color: str = INK, bold: bool = False, **kw) -> ParagraphStyle:
    regular, heavy = _fonts()
    return ParagraphStyle("s", fontName=heavy if bold else regular, fontSize=size,
                          leading=size * 1.25, textColor=colors.HexColor(color), **kw)


def _p(text: object, size: float = 7.5, color: str = INK, bold: bool = False) -> Paragraph:
    """A paragraph of plain text (escaped: file names may hold markup characters)."""
    return Paragraph(escape("" if text is None else str(text)), _style(size, color, bold))


def _heading(text: str) -> list[Flowable]:
    return [Spacer(1, 6), _p(text, 13, BAND, bold=True), Spacer(1, 3),
            HRFlowable(width="100%", thickness=1.2, color=colors.HexColor(BAND),
                       spaceAfter=6)]


def _table(head: list[str], widths: list[float], rows: list[list],
           sev_col: int | None = None) -> Table:
    """Rows of cells (int levels in ``sev_col`` are drawn as coloured badges); ``widths``:
    fractions of the text width. The header row repeats on every page the table spans."""
    body = [[_p(h, bold=True, color="#ffffff") for h in head]]
    style = [("BACKGROUND", (0, 0), (-1, 0), colors.HexColor(BAND)),
             ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
             ("LINEBELOW", (0, -1), (-1, -1), 0.6, colors.HexColor(LINE)),
             ("TOPPADDING", (0, 0), (-1, -1), 2), ("BOTTOMPADDING", (0, 0), (-1, -1), 2)]
    for i, row in enumerate(rows, start=1):
        if i % 2 == 0:  # the stripe first: a later BACKGROUND paints over an earlier one
            style.append(("BACKGROUND", (0, i), (-1, i), colors.HexColor(SOFT)))
        cells = []
        for j, cell in enumerate(row):
            if j == sev_col and isinstance(cell, int):
                cells.append(_p(cell or "–", bold=bool(cell),
                                color="#ffffff" if cell else MUTED))
                if cell:
                    style.append(("BACKGROUND", (j, i), (j, i),
                                  colors.HexColor(SEVERITY_COLORS[cell])))
            else:
                cells.append(_p(cell))
        body.append(cells)
    return Table(body, colWidths=[w * WIDTH for w in widths], repeatRows=1, hAlign="LEFT",
                 style=TableStyle(style), spaceAfter=8)


def _picture(data: bytes, max_height: float) -> Image:
    """An embedded picture at the text width or ``max_height`` points, aspect kept."""
    img = Image(io.BytesIO(data))
    scale = min(WIDTH / img.imageWidth, max_height / img.imageHeight)
    img.drawWidth, img.drawHeight = img.imageWidth * scale, img.imageHeight * scale
    img.hAlign = "LEFT"
    return img


def _area(px: int, mm2: float | None) -> str:
    return f"{px:,} px" + (f" / {mm2:,.0f} mm²" if mm2 is not None else "")


def _where(entry: ImageEntry, short: bool = False) -> str:
    return where(entry, short)


# ----------------------------------------------------------------- pages
def _summary(data: ReportData, chart: bytes) -> list[Flowable]:
    fs = data.findings
    top = max((f.severity for f in fs), default=0)
    cards = [(len(data.entries), "images inspected"),
             (sum(e.record.reviewed for e in data.entries), "reviewed by a person"),
             (len(fs), "defect regions"), (top or "–", "highest severity")]
    ink = ["#ffffff" if i == 3 and top else INK for i in range(4)]
    card_row = [[_p(v, 20, ink[i], bold=True), Spacer(1, 8), _p(label.upper(), 6.5, ink[i])]
                for i, (v, label) in enumerate(cards)]
    card_style = [("BACKGROUND", (0, 0), (-1, 0), colors.HexColor(SOFT)),
                  ("LINEAFTER", (0, 0), (2, 0), 6, colors.white),
                  ("TOPPADDING", (0, 0), (-1, -1), 6), ("BOTTOMPADDING", (0, 0), (-1, -1), 8)]
    if top:
        card_style.append(("BACKGROUND", (3, 0), (3, 0), colors.HexColor(SEVERITY_COLORS[top])))
    out: list[Flowable] = [
        _p("Blade inspection report", 22, BAND, bold=True), Spacer(1, 6),
        _p(data.project, 13), Spacer(1, 2),
        _p(f"{data.created}  ·  masks: {data.source}", 9, MUTED), Spacer(1, 10),
        Table([card_row], colWidths=[WIDTH / 4] * 4, style=TableStyle(card_style),
              hAlign="LEFT"), Spacer(1, 6)]
    if data.not_inspected:
        out.append(_p(f"{len(data.not_inspected)} image(s) have no {data.source} mask and are "
                      f"not part of this report.", 8, MUTED))
    if data.failed:
        out.append(_p(f"{len(data.failed)} image(s) could not be read and are not part of this "
                      f"report: {', '.join(data.failed)}.", 8, MUTED))
    out += _heading("Defects by class and severity")
    out += [_picture(chart, 170), Spacer(1, 6)]
    out.append(_table(["Class", "Regions", "Total area"], [0.4, 0.2, 0.4],
                      [[r["class"], r["count"], _area(r["area_px"], r["area_mm2"])]
                       for r in by_class(data)]))
    out.append(_table(["Severity", "Category", "Regions", "Total area", "Action"],
                      [0.1, 0.14, 0.1, 0.22, 0.44],
                      [[r["level"], r["category"].name, r["count"],
                        _area(r["area_px"], r["area_mm2"]), r["category"].action]
                       for r in by_severity(data)], sev_col=0))
    return out


def _overview(data: ReportData) -> list[Flowable]:
    out = _heading("Findings per turbine and blade")
    out.append(_table(["Turbine", "Blade", "Images", "Regions", "Highest", "Sev. 5", "4", "3",
                       "2", "1"], [0.24, 0.1, 0.1, 0.1, 0.1, 0.08, 0.07, 0.07, 0.07, 0.07],
                      [[r["turbine"], r["blade"], r["images"], r["regions"], r["max"]] +
                       [r["levels"].get(lv, "") for lv in range(5, 0, -1)]
                       for r in by_turbine_blade(data)], sev_col=4))
    if any_guessed(data):
        out.append(_p(GUESS_NOTE + ".", 8, MUTED))
    top = _priority(data)
    out += _heading("Highest-severity findings")
    if not top:
        out.append(_p("No defect regions found.", 9, MUTED))
    else:
        out.append(_table(["Sev.", "Category", "Recommended action", "Class", "Image", "Where"],
                          [0.06, 0.1, 0.35, 0.09, 0.27, 0.13],
                          [[f.severity, f.category.name, f.category.action, f.class_name,
                            f"{f.key} #{data.entry(f.key).findings.index(f) + 1}",
                            _where(data.entry(f.key), short=True)]
                           for f in top[:PRIORITY_LIMIT]], sev_col=0))
    if len(top) > PRIORITY_LIMIT:
        out.append(_p(f"{len(top) - PRIORITY_LIMIT} more in findings.csv and on the image "
                      f"pages.", 8, MUTED))
    clean = [e for e in data.entries if not e.findings]
    if clean:
        out += _heading("Inspected without findings")
        out.append(_table(["Image", "Turbine / blade / side", "Reviewed"], [0.55, 0.3, 0.15],
                          [[e.key, _where(e), "yes" if e.record.reviewed else "no"]
                           for e in clean]))
    return out


def _image_page(entry: ImageEntry) -> list[Flowable]:
    rec = entry.record
    meta = [_where(entry), f"{entry.shape[1]}×{entry.shape[0]} px",
            f"mask: {entry.origin} ({entry.model})"]
    meta += details(entry)
    out = _heading(entry.key)
    out += [_p("  ·  ".join(meta), 8, MUTED), Spacer(1, 2),
            _p("Reviewed by a person" if rec.reviewed else "Not reviewed", 8,
               "#1b5e20" if rec.reviewed else "#8e2420", bold=True), Spacer(1, 6),
            _picture(entry.thumbnail, 330), Spacer(1, 6)]
    if entry.photo_missing:
        out.append(_p("Photo file not found; mask shown on grey.", 8, MUTED))
    rows = []
    for n, f in enumerate(entry.findings, start=1):
        r = f.region
        rows.append([n, f.class_name, _area(r.area, f.area_mm2), f"{f.area_pct:.2f} %",
                     ", ".join(map(str, r.bbox)),
                     "–" if r.confidence is None else f"{r.confidence:.2f}", f.severity,
                     f.category.name + (" (reviewer)" if f.overridden else "")])
    out.append(_table(["#", "Class", "Area", "% image", "Box x0,y0,x1,y1", "Conf.", "Sev.",
                       "Category"], [0.05, 0.13, 0.2, 0.1, 0.2, 0.08, 0.07, 0.17], rows,
                      sev_col=6))
    notes = [f"#{n}: {f.note}" for n, f in enumerate(entry.findings, start=1) if f.note]
    if notes:
        out += [Spacer(1, 4), _p("Reviewer notes", 8, MUTED, bold=True)]
        out += [_p(line, 8) for line in notes]
    return out


def _provenance(data: ReportData) -> list[Flowable]:
    out = _heading("Provenance")
    out.append(_table(["Item", "Value"], [0.28, 0.72], [list(kv) for kv in data.provenance]))
    if data.metrics:
        out += _heading("Agreement with ground truth")
        out.append(_table(["Metric", "Value"], [0.5, 0.5],
                          [[k, f"{v:.4f}" if isinstance(v, float) else str(v)]
                           for k, v in data.metrics.items()]))
    out += _heading("Severity scale")
    out.append(_table(["Level", "Category", "Recommended action", "Time frame"],
                      [0.07, 0.12, 0.45, 0.36],
                      [[lv, c.name, c.action, c.time_frame]
                       for lv, c in sorted(data.settings.categories.items())], sev_col=0))
    out.append(_p("Severity levels are suggestions by a configurable size rule unless marked "
                  "as set by a reviewer; a qualified inspector decides.", 7.5, MUTED))
    return out


def story(data: ReportData, chart: bytes) -> list[Flowable]:
    """Every flowable of the PDF, in order; each part starts on a new page."""
    parts = [_summary(data, chart), _overview(data)]
    if data.blade is not None:  # where on the blade, and what changed since last time
        parts.append(maps_story(data.blade, _heading))
        if data.blade.comparison is not None:
            parts.append(changes_story(data.blade, _heading))
    parts += [_image_page(e) for e in data.entries if e.findings]
    parts.append(_provenance(data))
    out: list[Flowable] = []
    for part in parts:
        out += part + [PageBreak()]
    return out[:-1]


def _numbered(project: str, created: str) -> type[Canvas]:
    """A canvas that holds its pages back until the end, so each footer can say 'of N'."""
    class _Canvas(Canvas):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict] = []

        def showPage(self) -> None:  # noqa: N802 (reportlab's name)
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            for n, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self._frame(n, len(self._pages))
                super().showPage()
            super().save()

        def _frame(self, n: int, total: int) -> None:
            w, h = A4
            self.setFont(_fonts()[0], 7)
            self.setFillColor(colors.HexColor(MUTED))
            self.drawString(MARGIN, h - 10 * mm, f"Blade inspection report · {project}")
            self.drawString(MARGIN, 8 * mm, f"Boxes2Pixels Inspector · {created}")
            self.drawRightString(w - MARGIN, 8 * mm, f"page {n} of {total}")
            self.setStrokeColor(colors.HexColor(LINE))
            self.setLineWidth(0.6)
            self.line(MARGIN, h - 11.5 * mm, w - MARGIN, h - 11.5 * mm)
            self.line(MARGIN, 12 * mm, w - MARGIN, 12 * mm)
    return _Canvas


def render_pdf(data: ReportData, chart: bytes) -> bytes:
    """PDF bytes of the report."""
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=MARGIN, rightMargin=MARGIN,
                            topMargin=16 * mm, bottomMargin=16 * mm,
                            title=f"Blade inspection report: {data.project}",
                            creator="Boxes2Pixels Inspector")
    doc.build(story(data, chart), canvasmaker=_numbered(data.project, data.created))
    return buf.getvalue()
