"""The inspection report as one self-contained HTML page (no network, everything escaped)."""

from __future__ import annotations

import base64
import html

from ml.findings.report._blade_html import CSS as BLADE_CSS
from ml.findings.report._blade_html import changes_html, maps_html
from ml.findings.report._data import (
    GUESS_NOTE,
    ImageEntry,
    ReportData,
    any_guessed,
    by_class,
    by_severity,
    by_turbine_blade,
    details,
    priority,
    where,
)
from ml.findings.report._figures import SEVERITY_COLORS
from ml.findings.severity import Finding

_CSS = """
:root{--ink:#1d2733;--muted:#5f6b7a;--line:#dfe3e8;--band:#14324f;--soft:#f5f7fa}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 "Segoe UI",Helvetica,Arial,sans-serif;color:var(--ink);
 background:#eef1f4}
main{max-width:1100px;margin:0 auto;background:#fff;padding:0 32px 40px}
header{background:var(--band);color:#fff;margin:0 -32px 24px;padding:24px 32px}
header h1{margin:0;font-size:24px;font-weight:600}
header p{margin:4px 0 0;color:#c9d6e3}
h2{font-size:18px;border-bottom:2px solid var(--band);padding-bottom:4px;margin:32px 0 12px}
h3{font-size:15px;margin:0 0 6px;word-break:break-all}
.cards{display:grid;grid-template-columns:repeat(4,1fr);gap:12px}
.card{background:var(--soft);border:1px solid var(--line);border-radius:6px;padding:12px}
.card b{display:block;font-size:26px}
.card span{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0 12px}
th{background:var(--band);color:#fff;text-align:left;font-weight:600;padding:6px 8px}
td{border-bottom:1px solid var(--line);padding:5px 8px;vertical-align:top}
tr:nth-child(even) td{background:var(--soft)}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.sev{display:inline-block;min-width:22px;text-align:center;border-radius:4px;color:#fff;
 font-weight:700;padding:0 6px}
.chart{max-width:100%;height:auto}
.image{display:grid;grid-template-columns:minmax(0,5fr) minmax(0,6fr);gap:18px;
 border-top:1px solid var(--line);padding:18px 0;break-inside:avoid}
.image img{width:100%;height:auto;border:1px solid var(--line);border-radius:4px}
.meta{color:var(--muted);font-size:12px;margin-bottom:6px}
.tag{display:inline-block;border-radius:10px;padding:0 8px;font-size:11px;font-weight:600}
.yes{background:#e3f2e5;color:#1b5e20}.no{background:#fdecea;color:#8e2420}
.muted{color:var(--muted)}
footer{color:var(--muted);font-size:12px;margin-top:32px}
@media print{body{background:#fff}main{max-width:none}
 tr,.card{break-inside:avoid}h2,h3{break-after:avoid}}
"""


def e(v: object) -> str:
    """Escape anything for HTML text and attribute values."""
    return html.escape("" if v is None else str(v), quote=True)


def _sev(level: int) -> str:
    return f'<span class="sev" style="background:{SEVERITY_COLORS[level]}">{level}</span>'


def _table(head: list[str], rows: list[list[str]], numeric: set[int] = frozenset()) -> str:
    """A table from already-escaped cells; columns in ``numeric`` are right-aligned."""
    def cls(i: int) -> str:
        return ' class="n"' if i in numeric else ""
    th = "".join(f"<th{cls(i)}>{h}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _area(px: int, mm2: float | None) -> str:
    return f"{px:,} px" + (f" / {mm2:,.0f} mm²" if mm2 is not None else "")


def _summary(data: ReportData, chart: bytes) -> str:
    fs = data.findings
    top = max((f.severity for f in fs), default=0)
    cards = [(len(data.entries), "images inspected", ""),
             (sum(e.record.reviewed for e in data.entries), "reviewed by a person", ""),
             (len(fs), "defect regions", ""),
             (top or "–", "highest severity",
              f' style="background:{SEVERITY_COLORS[top]};color:#fff"' if top else "")]
    out = ['<h2>Summary</h2><div class="cards">']
    out += [f'<div class="card"{style}><b>{v}</b><span{style}>{e(t)}</span></div>'
            for v, t, style in cards]
    out.append("</div>")
    if data.not_inspected:
        out.append(f'<p class="muted">{len(data.not_inspected)} image(s) have no '
                   f"{e(data.source)} mask and are not part of this report.</p>")
    if data.failed:
        out.append(f'<p class="muted">{len(data.failed)} image(s) could not be read and are '
                   f"not part of this report: {e(', '.join(data.failed))}.</p>")
    rows = [[e(r["turbine"]), e(r["blade"]), str(r["images"]), str(r["regions"]),
             _sev(r["max"]) if r["max"] else "–"] +
            [str(r["levels"].get(lv, "")) for lv in range(5, 0, -1)]
            for r in by_turbine_blade(data)]
    out.append("<h2>Findings per turbine and blade</h2>")
    out.append(_table(["Turbine", "Blade", "Images", "Regions", "Highest"] +
                      [_sev(lv) for lv in range(5, 0, -1)], rows, set(range(2, 10)) - {4}))
    out.append("<h2>Defects by class and severity</h2>")
    b64 = base64.b64encode(chart).decode("ascii")
    out.append(f'<img class="chart" alt="regions per severity" src="data:image/png;base64,'
               f'{b64}">')
    out.append(_table(["Class", "Regions", "Total area"],
                      [[e(r["class"]), str(r["count"]), _area(r["area_px"], r["area_mm2"])]
                       for r in by_class(data)], {1, 2}))
    out.append(_table(["Severity", "Category", "Regions", "Total area", "Action", "Time frame"],
                      [[_sev(r["level"]), e(r["category"].name), str(r["count"]),
                        _area(r["area_px"], r["area_mm2"]), e(r["category"].action),
                        e(r["category"].time_frame)] for r in by_severity(data)], {2, 3}))
    return "".join(out)


def _where(entry: ImageEntry) -> str:
    return where(entry)


def _priority(data: ReportData, findings: list[Finding], limit: int = 50) -> str:
    out = ["<h2>Highest-severity findings</h2>"]
    if not findings:
        return out[0] + "<p>No defect regions found.</p>"
    rows = []
    for f in findings[:limit]:
        entry = data.entry(f.key)
        num = entry.findings.index(f) + 1
        rows.append([_sev(f.severity), e(f.category.name), e(f.category.action),
                     e(f.category.time_frame), e(f.class_name),
                     f'<a href="#img-{e(f.key)}">{e(f.key)}</a> #{num}', e(_where(entry)),
                     _area(f.region.area, f.area_mm2)])
    out.append(_table(["Sev.", "Category", "Recommended action", "Time frame", "Class", "Image",
                       "Turbine / blade / side", "Area"], rows))
    if len(findings) > limit:
        out.append(f'<p class="muted">{len(findings) - limit} more in findings.csv and in the '
                   f"per-image sections below.</p>")
    return "".join(out)


def _image(entry: ImageEntry) -> str:
    b64 = base64.b64encode(entry.thumbnail).decode("ascii")
    rec = entry.record
    reviewed = ('<span class="tag yes">reviewed by a person</span>' if rec.reviewed else
                '<span class="tag no">not reviewed</span>')
    meta = [_where(entry), f"{entry.shape[1]}×{entry.shape[0]} px",
            f"mask: {entry.origin} ({entry.model})", *details(entry)]
    rows = []
    for n, f in enumerate(entry.findings, start=1):
        r = f.region
        mm2 = f" / {f.area_mm2:,.0f} mm²" if f.area_mm2 is not None else ""
        sev = _sev(f.severity) + (" <small>(set by reviewer)</small>" if f.overridden else "")
        rows.append([str(n), e(f.class_name), f"{r.area:,} px{mm2}", f"{f.area_pct:.2f} %",
                     e(", ".join(map(str, r.bbox))),
                     "–" if r.confidence is None else f"{r.confidence:.2f}", sev])
    table = _table(["#", "Class", "Area", "% of image", "Box x0, y0, x1, y1", "Confidence",
                    "Severity"], rows, {0, 2, 3, 5}) if rows else "<p>No defect regions.</p>"
    notes = "".join(f"<li>#{n}: {e(f.note)}</li>" for n, f in
                    enumerate(entry.findings, start=1) if f.note)
    if notes:
        table += f'<p class="muted">Reviewer notes</p><ul>{notes}</ul>'
    missing = '<p class="muted">Photo file not found; mask shown on grey.</p>' \
        if entry.photo_missing else ""
    return (f'<section class="image" id="img-{e(entry.key)}"><div><img alt="{e(entry.key)}" '
            f'src="data:image/jpeg;base64,{b64}">{missing}</div><div><h3>{e(entry.key)}</h3>'
            f'<div class="meta">{e(" · ".join(meta))}</div>{reviewed}{table}</div></section>')


def _provenance(data: ReportData) -> str:
    out = ["<h2>Provenance</h2>",
           _table(["Item", "Value"], [[e(k), e(v)] for k, v in data.provenance])]
    if data.metrics:
        rows = [[e(k), f"{v:.4f}" if isinstance(v, float) else e(v)]
                for k, v in data.metrics.items()]
        out += ["<h2>Agreement with ground truth</h2>", _table(["Metric", "Value"], rows, {1})]
    cats = [[_sev(lv), e(c.name), e(c.action), e(c.time_frame)]
            for lv, c in sorted(data.settings.categories.items())]
    out += ["<h2>Severity scale</h2>",
            _table(["Level", "Category", "Recommended action", "Time frame"], cats)]
    return "".join(out)


def render_html(data: ReportData, chart: bytes) -> str:
    """The whole report page as a string."""
    with_findings = [x for x in data.entries if x.findings]
    clean = [x for x in data.entries if not x.findings]
    parts = [_summary(data, chart), _priority(data, priority(data))]
    if data.blade is not None:  # where on the blade, and what changed since last time
        parts += [maps_html(data.blade), changes_html(data.blade)]
    parts.append("<h2>Images with findings</h2>")
    if any_guessed(data):
        parts.append(f'<p class="muted">{e(GUESS_NOTE)}.</p>')
    parts += [_image(x) for x in with_findings] or ["<p>None.</p>"]
    if clean:
        parts.append("<h2>Inspected without findings</h2>")
        parts.append(_table(["Image", "Turbine / blade / side", "Reviewed"],
                            [[e(x.key), e(_where(x)), "yes" if x.record.reviewed else "no"]
                             for x in clean]))
    parts.append(_provenance(data))
    title = f"Blade inspection report: {data.project}"
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
            f"<title>{e(title)}</title><style>{_CSS}{BLADE_CSS}</style></head><body><main>"
            f"<header><h1>{e(title)}</h1><p>{e(data.created)} · masks: {e(data.source)} · "
            f"{len(data.entries)} images</p></header>" + "".join(parts) +
            "<footer>Made with Boxes2Pixels Inspector. Severity levels are suggestions by a "
            "configurable size rule unless marked as set by a reviewer; a qualified inspector "
            "decides.</footer></main></body></html>\n")
