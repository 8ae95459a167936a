"""The inspection report as a PDF drawn with matplotlib (A4 portrait, no browser, no Qt).

Pages are planned first (so every footer can say "page n of N"), then drawn. Tables longer
than a page continue on the next page under the same heading.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ._data import ImageEntry, ReportData, by_class, by_severity, by_turbine_blade, meta_of
from ._data import priority as _priority
from ._figures import SEVERITY_COLORS

A4 = (8.27, 11.69)
LEFT, RIGHT, TOP, BOTTOM = 0.07, 0.93, 0.93, 0.06
BAND, INK, MUTED, LINE, SOFT = "#14324f", "#1d2733", "#5f6b7a", "#dfe3e8", "#f5f7fa"
ROW_H = 0.0205  # table row height, figure fraction
FONT = 7.5
PRIORITY_LIMIT = 50
ROWS_PER_PAGE = 36  # region rows on a continuation page of an image
IMAGE_ROWS = 14  # region rows that fit under a thumbnail


Draw = Callable[["_Page"], None]


class _Page:
    """One A4 figure with a downward-moving cursor."""

    def __init__(self, fig, title: str) -> None:
        self.fig = fig
        self.y = TOP
        self.title = title

    def text(self, s: str, size: float = 9, color: str = INK, weight: str = "normal",
             x: float = LEFT, dy: float | None = None) -> None:
        self.fig.text(x, self.y, s, fontsize=size, color=color, weight=weight, va="top")
        self.y -= dy if dy is not None else size / 72 / A4[1] * 1.6

    def heading(self, s: str) -> None:
        self.y -= 0.008
        self.text(s, 13, BAND, "bold", dy=0.026)
        self.rule(BAND, 1.2)
        self.y -= 0.01

    def rule(self, color: str = LINE, width: float = 0.6) -> None:
        self.fig.add_artist(_line(self.fig, self.y, color, width))

    def rect(self, x: float, y: float, w: float, h: float, color: str) -> None:
        from matplotlib.patches import Rectangle

        self.fig.add_artist(Rectangle((x, y), w, h, transform=self.fig.transFigure,
                                      facecolor=color, edgecolor="none", zorder=0))

    def table(self, head: list[str], widths: list[float], rows: list[list],
              sev_col: int | None = None) -> None:
        """Rows of str (int levels in ``sev_col``); ``widths``: fractions of the text width."""
        span = RIGHT - LEFT
        xs = LEFT + np.concatenate([[0], np.cumsum(widths)[:-1]]) * span
        self.rect(LEFT, self.y - ROW_H, span, ROW_H, BAND)
        for x, h, w in zip(xs, head, widths, strict=True):
            self.fig.text(x + 0.004, self.y - ROW_H / 2, _clip(h, w), fontsize=FONT,
                          color="white", weight="bold", va="center")
        self.y -= ROW_H
        for i, row in enumerate(rows):
            if i % 2:
                self.rect(LEFT, self.y - ROW_H, span, ROW_H, SOFT)
            for j, (x, cell, w) in enumerate(zip(xs, row, widths, strict=True)):
                if j == sev_col and isinstance(cell, int):
                    if cell:
                        self._badge(x + 0.004, self.y - ROW_H / 2, cell)
                    else:
                        self.fig.text(x + 0.004, self.y - ROW_H / 2, "–", fontsize=FONT,
                                      color=MUTED, va="center")
                    continue
                self.fig.text(x + 0.004, self.y - ROW_H / 2, _clip(str(cell), w),
                              fontsize=FONT, color=INK, va="center")
            self.y -= ROW_H
        self.rule()
        self.y -= 0.012

    def _badge(self, x: float, y: float, level: int) -> None:
        self.fig.text(x, y, f" {level} ", fontsize=FONT, color="white", weight="bold",
                      va="center", bbox={"boxstyle": "round,pad=0.25", "linewidth": 0,
                                         "facecolor": SEVERITY_COLORS[level]})

    def picture(self, png_or_jpeg: bytes, height: float, width: float = RIGHT - LEFT) -> None:
        """An embedded picture, ``height`` (figure fraction) tall, aspect kept, left-aligned."""
        from PIL import Image

        arr = np.asarray(Image.open(io.BytesIO(png_or_jpeg)).convert("RGB"))
        h, w = arr.shape[:2]
        page_ratio = A4[1] / A4[0]
        wf = min(width, height * w / h * page_ratio)
        hf = wf * h / w / page_ratio
        ax = self.fig.add_axes((LEFT, self.y - hf, wf, hf))
        ax.imshow(arr, interpolation="lanczos")
        ax.set_axis_off()
        self.y -= hf + 0.015


def _line(fig, y: float, color: str, width: float):
    from matplotlib.lines import Line2D

    return Line2D([LEFT, RIGHT], [y, y], transform=fig.transFigure, color=color,
                  linewidth=width)


def _clip(s: str, width: float) -> str:
    """Cut a cell to what roughly fits its column (DejaVu Sans at FONT pt)."""
    chars = max(3, int(width * (RIGHT - LEFT) * A4[0] * 72 / (FONT * 0.52)))
    return s if len(s) <= chars else s[: chars - 1] + "…"


def _area(px: int, mm2: float | None) -> str:
    return f"{px:,} px" + (f" / {mm2:,.0f} mm²" if mm2 is not None else "")


_SHORT_SIDES = {"leading_edge": "LE", "trailing_edge": "TE", "pressure_side": "PS",
                "suction_side": "SS"}


def _where(entry: ImageEntry, short: bool = False) -> str:
    parts = [meta_of(entry, k) for k in ("turbine", "blade", "side")]
    parts[2] = _SHORT_SIDES.get(parts[2], parts[2]) if short else parts[2].replace("_", " ")
    return " / ".join(p for p in parts if p) or "–"


# ----------------------------------------------------------------- pages
def _summary_page(data: ReportData, chart: bytes) -> Draw:
    def draw(p: _Page) -> None:
        p.text("Blade inspection report", 22, BAND, "bold", dy=0.038)
        p.text(data.project, 13, INK, dy=0.026)
        p.text(f"{data.created}  ·  masks: {data.source}", 9, MUTED, dy=0.03)
        fs = data.findings
        top = max((f.severity for f in fs), default=0)
        cards = [(str(len(data.entries)), "images inspected"),
                 (str(sum(e.record.reviewed for e in data.entries)), "reviewed by a person"),
                 (str(len(fs)), "defect regions"), (str(top) if top else "–", "highest severity")]
        w = (RIGHT - LEFT - 0.03) / 4
        for i, (v, label) in enumerate(cards):
            x = LEFT + i * (w + 0.01)
            p.rect(x, p.y - 0.062, w, 0.062, SEVERITY_COLORS[top] if i == 3 and top else SOFT)
            color = "white" if i == 3 and top else INK
            p.fig.text(x + 0.012, p.y - 0.012, v, fontsize=20, weight="bold", color=color,
                       va="top")
            p.fig.text(x + 0.012, p.y - 0.05, label.upper(), fontsize=6.5, color=color)
        p.y -= 0.075
        if data.not_inspected:
            p.text(f"{len(data.not_inspected)} image(s) have no {data.source} mask and are not "
                   f"part of this report.", 8, MUTED)
        p.heading("Defects by class and severity")
        p.picture(chart, 0.2)
        p.table(["Class", "Regions", "Total area"], [0.4, 0.2, 0.4],
                [[r["class"], r["count"], _area(r["area_px"], r["area_mm2"])]
                 for r in by_class(data)])
        p.table(["Severity", "Category", "Regions", "Total area", "Action"],
                [0.1, 0.14, 0.1, 0.22, 0.44],
                [[r["level"], r["category"].name, r["count"],
                  _area(r["area_px"], r["area_mm2"]), r["category"].action]
                 for r in by_severity(data)], sev_col=0)
    return draw


@dataclass
class _Section:
    """A titled table that may share a page with others and continue over pages."""

    title: str
    head: list[str]
    widths: list[float]
    rows: list[list]
    sev_col: int | None = None
    empty: str = "None."
    note: str = ""


def _flow(sections: list[_Section]) -> list[Draw]:
    """Pages holding the sections one after another; a table that does not fit continues."""
    room = TOP - BOTTOM
    heading, gap, min_rows = 0.044, 0.014, 4
    pages: list[list[Draw]] = [[]]
    left = room
    for sec in sections:
        rows, first = list(sec.rows), True
        while first or rows:
            need = heading + ROW_H * (1 + min(len(rows), min_rows)) + gap
            if left < need and pages[-1]:
                pages.append([])
                left = room
            n = max(1, int((left - heading - gap - 0.02) / ROW_H) - 1)
            chunk, rows = rows[:n], rows[n:]
            last = not rows

            def draw(p: _Page, sec=sec, chunk=chunk, first=first, last=last) -> None:
                p.heading(sec.title + ("" if first else " (continued)"))
                if not sec.rows:
                    p.text(sec.empty, 9, MUTED)
                    return
                p.table(sec.head, sec.widths, chunk, sec.sev_col)
                if last and sec.note:
                    p.text(sec.note, 8, MUTED)
            pages[-1].append(draw)
            left -= heading + ROW_H * (1 + max(len(chunk), 1)) + gap + (0.02 if sec.note else 0)
            first = False

    def page(ops: list[Draw]) -> Draw:
        def draw_all(p: _Page) -> None:
            for op in ops:
                op(p)
        return draw_all
    return [page(ops) for ops in pages]


def _image_pages(entry: ImageEntry) -> list[Draw]:
    rows = []
    for n, f in enumerate(entry.findings, start=1):
        r = f.region
        rows.append([str(n), f.class_name, _area(r.area, f.area_mm2), f"{f.area_pct:.2f} %",
                     ", ".join(map(str, r.bbox)),
                     "–" if r.confidence is None else f"{r.confidence:.2f}", f.severity,
                     f.category.name + (" (reviewer)" if f.overridden else "")])
    head = ["#", "Class", "Area", "% image", "Box x0,y0,x1,y1", "Conf.", "Sev.", "Category"]
    widths = [0.05, 0.13, 0.2, 0.1, 0.2, 0.08, 0.07, 0.17]
    rec = entry.record
    meta = [_where(entry), f"{entry.shape[1]}×{entry.shape[0]} px",
            f"mask: {entry.origin} ({entry.model})"]
    meta += [f"{k}: {rec.meta[k]}" for k in ("distance_m", "date") if rec.meta.get(k)]

    def first(p: _Page) -> None:
        p.heading(entry.key)
        p.text("  ·  ".join(meta), 8, MUTED)
        p.text("Reviewed by a person" if rec.reviewed else "Not reviewed", 8,
               "#1b5e20" if rec.reviewed else "#8e2420", "bold", dy=0.02)
        p.picture(entry.thumbnail, 0.42)
        if entry.photo_missing:
            p.text("Photo file not found; mask shown on grey.", 8, MUTED)
        p.table(head, widths, rows[:IMAGE_ROWS], sev_col=6)

    pages: list[Draw] = [first]
    for start in range(IMAGE_ROWS, len(rows), ROWS_PER_PAGE):
        chunk = rows[start:start + ROWS_PER_PAGE]
        def more(p: _Page, chunk=chunk) -> None:
            p.heading(f"{entry.key} (continued)")
            p.table(head, widths, chunk, sev_col=6)
        pages.append(more)
    return pages


def _provenance_page(data: ReportData) -> Draw:
    def draw(p: _Page) -> None:
        p.heading("Provenance")
        rows = []
        for k, v in data.provenance:
            lines = textwrap.wrap(str(v), 78) or [""]
            rows += [[k, lines[0]]] + [["", more] for more in lines[1:]]
        p.table(["Item", "Value"], [0.28, 0.72], rows)
        if data.metrics:
            p.heading("Agreement with ground truth")
            p.table(["Metric", "Value"], [0.5, 0.5],
                    [[k, f"{v:.4f}" if isinstance(v, float) else str(v)]
                     for k, v in list(data.metrics.items())[:14]])
        p.heading("Severity scale")
        p.table(["Level", "Category", "Recommended action", "Time frame"],
                [0.07, 0.12, 0.45, 0.36],
                [[lv, c.name, c.action, c.time_frame]
                 for lv, c in sorted(data.settings.categories.items())], sev_col=0)
        p.text("Severity levels are suggestions by a configurable size rule unless marked as "
               "set by a reviewer;", 7.5, MUTED)
        p.text("a qualified inspector decides.", 7.5, MUTED)
    return draw


def plan(data: ReportData, chart: bytes) -> list[Draw]:
    """Every page of the PDF, in order."""
    top = _priority(data)
    clean = [e for e in data.entries if not e.findings]
    sections = [
        _Section("Findings per turbine and blade",
                 ["Turbine", "Blade", "Images", "Regions", "Highest", "Sev. 5", "4", "3", "2",
                  "1"], [0.24, 0.1, 0.1, 0.1, 0.1, 0.08, 0.07, 0.07, 0.07, 0.07],
                 [[r["turbine"], r["blade"], r["images"], r["regions"], r["max"]] +
                  [r["levels"].get(lv, "") for lv in range(5, 0, -1)]
                  for r in by_turbine_blade(data)], sev_col=4),
        _Section("Highest-severity findings",
                 ["Sev.", "Category", "Recommended action", "Class", "Image", "Where"],
                 [0.06, 0.1, 0.35, 0.09, 0.27, 0.13],
                 [[f.severity, f.category.name, f.category.action, f.class_name,
                   f"{f.key} #{data.entry(f.key).findings.index(f) + 1}",
                   _where(data.entry(f.key), short=True)] for f in top[:PRIORITY_LIMIT]],
                 sev_col=0, empty="No defect regions found.",
                 note=f"{len(top) - PRIORITY_LIMIT} more in findings.csv and on the image pages."
                 if len(top) > PRIORITY_LIMIT else "")]
    if clean:
        sections.append(_Section("Inspected without findings",
                                 ["Image", "Turbine / blade / side", "Reviewed"],
                                 [0.55, 0.3, 0.15],
                                 [[e.key, _where(e), "yes" if e.record.reviewed else "no"]
                                  for e in clean]))
    pages = [_summary_page(data, chart)] + _flow(sections)
    for entry in data.entries:
        if entry.findings:
            pages += _image_pages(entry)
    pages.append(_provenance_page(data))
    return pages


def render_pdf(data: ReportData, chart: bytes) -> bytes:
    """PDF bytes of the report."""
    from matplotlib.backends.backend_pdf import PdfPages
    from matplotlib.figure import Figure

    pages = plan(data, chart)
    buf = io.BytesIO()
    with PdfPages(buf, metadata={"Title": f"Blade inspection report: {data.project}",
                                 "Creator": "Boxes2Pixels Inspector"}) as pdf:
        for n, draw in enumerate(pages, start=1):
            fig = Figure(figsize=A4)
            page = _Page(fig, data.project)
            fig.text(LEFT, 0.965, f"Blade inspection report · {data.project}", fontsize=7,
                     color=MUTED)
            fig.add_artist(_line(fig, 0.958, LINE, 0.6))
            draw(page)
            fig.add_artist(_line(fig, 0.045, LINE, 0.6))
            fig.text(LEFT, 0.03, f"Boxes2Pixels Inspector · {data.created}", fontsize=7,
                     color=MUTED)
            fig.text(RIGHT, 0.03, f"page {n} of {len(pages)}", fontsize=7, color=MUTED,
                     ha="right")
            pdf.savefig(fig)
    return buf.getvalue()
