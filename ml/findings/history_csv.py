"""A history as rows: ``b2p history`` prints them, ``--csv`` and the report write them."""

from __future__ import annotations

import csv
import io

from ml.findings.history import Change, Comparison
from ml.findings.review import _cell

CSV_COLUMNS = ("identity", "status", "certain", "how", "turbine", "blade", "side", "radius_m",
               "radius_uncertainty_m", "zone", "class", "earlier_date", "earlier_image",
               "earlier_region", "current_date", "current_image", "current_region",
               "area_mm2_before", "area_mm2_now", "area_change_mm2", "length_mm_before",
               "length_mm_now", "length_change_mm", "growth_pct_per_year",
               "growth_mm2_per_year", "note")


def _num(v: float | None, fmt: str = "{:.1f}") -> str:
    return "" if v is None else fmt.format(v)


def change_row(ch: Change, comp: Comparison) -> list[str]:
    """The cells of one change, in :data:`CSV_COLUMNS` order."""
    p, e, c = ch.place, ch.earlier, ch.current
    pos = p.position
    note = "; ".join(n for n in (ch.note, pos.problem) if n)
    return [ch.ident, ch.status, "yes" if ch.certain else "no", ch.how, p.row.turbine,
            p.row.blade, p.row.side, _num(pos.radius_m), _num(pos.uncertainty_m), pos.zone,
            p.row.finding.class_name, comp.earlier.name, e.key if e else "",
            e.row.region_id if e else "", comp.current.name, c.key if c else "",
            c.row.region_id if c else "", _num(ch.area_mm2[0]), _num(ch.area_mm2[1]),
            _num(ch.area_change_mm2), _num(ch.length_mm[0]), _num(ch.length_mm[1]),
            _num(ch.length_change_mm), _num(ch.growth_pct_per_year),
            _num(ch.growth_mm2_per_year), note]


def history_csv(comparisons: list[Comparison]) -> str:
    """One row per change of every comparison (oldest pair first)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for comp in comparisons:
        for ch in comp.changes:
            w.writerow([_cell(v) for v in change_row(ch, comp)])
    return buf.getvalue()


def history_table(comp: Comparison) -> str:
    """Aligned text columns of one comparison (``b2p history``)."""
    head = ["IDENTITY", "STATUS", "RADIUS", "CLASS", "AREA_MM2", "CHANGE", "PER_YEAR", "HOW"]
    rows = [head]
    for ch in comp.changes:
        pos = ch.place.position
        area = " -> ".join(_num(a, "{:.0f}") or "?" for a in ch.area_mm2 if a is not None or
                           ch.status == "matched")
        pct = ch.growth_pct_per_year
        rows.append([ch.ident, ch.status + ("" if ch.certain else "?"), pos.text(),
                     ch.place.row.finding.class_name, area,
                     _num(ch.area_change_mm2, "{:+.0f} mm²"),
                     _num(pct, "{:+.0f} %/yr"), ch.how + (f"; {ch.note}" if ch.note else "")])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head) - 1)]
    return "\n".join("  ".join([*(r[i].ljust(widths[i]) for i in range(len(widths))), r[-1]])
                     .rstrip() for r in rows)
