"""Inspection reports: a self-contained HTML page, an optional PDF and findings.csv.

:func:`write_report` reads the masks of ``source`` (``student`` falls back to the teacher's
mask where an image has no prediction), splits them into connected defect regions, rates each
region's severity (:mod:`ml.findings.severity`, a reviewer's override wins) and writes into
``out_dir``:

* ``report.html``: no network needed, images embedded as base64, every file name and user
  string escaped;
* ``report.pdf`` (``pdf=True``): the same content, laid out by reportlab, no browser needed;
  pages: summary, turbines and blades, priority findings, one page per image with findings,
  images without findings (when there are any), provenance and severity scale (tables
  longer than a page continue on further pages under their repeated header row);
* ``findings.csv``: one row per defect region (:func:`ml.findings.review.findings_csv`), with a
  reviewer's severity, note and accepted flag;
* ``severity_chart.png``: the bar chart of the summary.

Nothing is written when the work is stopped (``Cancelled`` is raised).

Modules: ``_data`` (what a report shows, its groupings, findings.csv), ``_build`` (collect,
score, write), ``_html``, ``_pdf`` and ``_figures`` (the renderings); each imports only
``_data``/``_figures`` from this package, ``_build`` imports them all.
"""

from ml.findings.report._build import collect, gt_metrics, provenance, write_report
from ml.findings.report._data import (
    ImageEntry,
    ReportData,
    by_class,
    by_severity,
    by_turbine_blade,
    findings_csv,
    meta_of,
    priority,
)
from ml.findings.review import CSV_COLUMNS

__all__ = ["CSV_COLUMNS", "ImageEntry", "ReportData", "by_class", "by_severity",
           "by_turbine_blade", "collect", "findings_csv", "gt_metrics",
           "meta_of", "priority", "provenance", "write_report"]
