"""Inspection reports: a self-contained HTML page, an optional PDF and findings.csv.

:func:`write_report` reads the masks of ``source`` (``student`` falls back to the teacher's
mask where an image has no prediction), splits them into connected defect regions, rates each
region's severity (:mod:`ml.severity`, a reviewer's override wins) and writes into ``out_dir``:

* ``report.html``: no network needed, images embedded as base64, every file name and user
  string escaped;
* ``report.pdf`` (``pdf=True``): the same content, drawn with matplotlib, no browser needed;
  pages: summary, turbines and blades, priority findings, one page per image with findings,
  images without findings (when there are any), provenance and severity scale (tables
  longer than a page continue on further pages);
* ``findings.csv``: one row per defect region;
* ``severity_chart.png``: the bar chart of the summary.

Nothing is written when the work is stopped (``Cancelled`` is raised).
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import __version__
from . import images as _images
from ._atomic import atomic_write_bytes, atomic_write_text
from ._report_figures import overlay_thumbnail, severity_chart
from .checkpoint import CARD_NAME, WEIGHTS_NAME, find_model
from .export import fit_to_record
from .progress import Cancelled, ProgressFn, Reporter, StopFn
from .regions import find_regions, mask_for
from .severity import Finding, SeveritySettings, assess, image_gsd, load_settings
from .store import ImageRecord, Project, ProjectError


@dataclass
class ImageEntry:
    """One inspected image: its findings (most severe first) and overlay thumbnail."""

    key: str
    record: ImageRecord
    origin: str  # teacher | edited | student
    model: str
    findings: list[Finding]
    shape: tuple[int, int]
    gsd: float | None
    thumbnail: bytes  # JPEG
    photo_missing: bool = False


@dataclass
class ReportData:
    project: str
    created: str
    source: str
    settings: SeveritySettings
    class_colors: dict[str, str]
    entries: list[ImageEntry] = field(default_factory=list)
    not_inspected: list[str] = field(default_factory=list)  # images without any mask
    provenance: list[tuple[str, str]] = field(default_factory=list)
    metrics: dict | None = None

    @property
    def findings(self) -> list[Finding]:
        return [f for e in self.entries for f in e.findings]

    def entry(self, key: str) -> ImageEntry:
        return next(e for e in self.entries if e.key == key)


# ----------------------------------------------------------------- aggregation
def meta_of(entry: ImageEntry, name: str) -> str:
    return str(entry.record.meta.get(name, "") or "")


def by_turbine_blade(data: ReportData) -> list[dict]:
    """Rows per (turbine, blade): images, regions, highest severity, count per level."""
    groups: dict[tuple[str, str], list[ImageEntry]] = {}
    for e in data.entries:
        groups.setdefault((meta_of(e, "turbine") or "-", meta_of(e, "blade") or "-"),
                          []).append(e)
    rows = []
    for (turbine, blade), entries in sorted(groups.items()):
        fs = [f for e in entries for f in e.findings]
        rows.append({"turbine": turbine, "blade": blade, "images": len(entries),
                     "regions": len(fs), "max": max((f.severity for f in fs), default=0),
                     "levels": Counter(f.severity for f in fs)})
    return rows


def by_class(data: ReportData) -> list[dict]:
    """Rows per defect class: count, total area in px and mm^2 (mm^2 only if all known)."""
    rows = []
    for name in data.class_colors:
        fs = [f for f in data.findings if f.class_name == name]
        mm2 = [f.area_mm2 for f in fs]
        rows.append({"class": name, "count": len(fs), "area_px": sum(f.region.area for f in fs),
                     "area_mm2": sum(mm2) if fs and None not in mm2 else None})
    return rows


def by_severity(data: ReportData) -> list[dict]:
    rows = []
    for level in range(5, 0, -1):
        fs = [f for f in data.findings if f.severity == level]
        mm2 = [f.area_mm2 for f in fs]
        rows.append({"level": level, "category": data.settings.category(level),
                     "count": len(fs), "area_px": sum(f.region.area for f in fs),
                     "area_mm2": sum(mm2) if fs and None not in mm2 else None})
    return rows


def priority(data: ReportData) -> list[Finding]:
    """All findings, highest severity first, then largest."""
    return sorted(data.findings, key=lambda f: (-f.severity, -f.region.area, f.key))


# ----------------------------------------------------------------- collection
def _collect_entry(project: Project, key: str, source: str, settings: SeveritySettings,
                   gsd: float | None) -> ImageEntry | None:
    sm = mask_for(project, key, source, fallback=(source == "student"))
    if sm is None:
        return None
    rec = project.record(key)
    label = fit_to_record(sm.label, rec.width, rec.height)
    conf = fit_to_record(sm.confidence, rec.width, rec.height) \
        if sm.confidence is not None else None
    regions = find_regions(label, conf)
    findings = assess(project, key, regions, settings, gsd)
    try:
        image = project.load_image(key)
    except _images.ImageError:
        image = None
    boxes = [(*b.xyxy, b.cls) for b in rec.boxes]
    thumb = overlay_thumbnail(image, label, project.palette(), boxes, findings)
    return ImageEntry(key, rec, sm.origin, sm.model, findings, regions.shape,
                      image_gsd(rec, gsd), thumb, image is None)


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _model_lines(project: Project, model_id: str, settings: dict, n: int) -> list[tuple]:
    out = [("Student model", f"{model_id} ({n} images)")]
    d = find_model(model_id, project, settings.get("model_dir"))
    if d is None:
        return out
    try:
        card = json.loads((d / CARD_NAME).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return out
    student = card.get("student", {}) if isinstance(card, dict) else {}
    weights = d / WEIGHTS_NAME
    if weights.is_file():
        out.append(("Model weights", f"{d.name}/{WEIGHTS_NAME}, sha256 {_sha256(weights)}"))
    arch = " ".join(str(student.get(k, "")) for k in ("arch", "backbone", "mode") if k in student)
    if arch:
        out.append(("Model architecture", arch))
    if card.get("backbone_source"):
        out.append(("Backbone source", str(card["backbone_source"])))
    if card.get("best_metric") is not None:
        out.append(("Model validation score", f"{card['best_metric']} (epoch "
                                               f"{card.get('epoch', '?')})"))
    if card.get("app_version"):
        out.append(("Trained with", f"Boxes2Pixels Inspector {card['app_version']}"))
    return out


def provenance(project: Project, data: ReportData, gsd: float | None) -> list[tuple[str, str]]:
    """Human-readable (label, value) pairs: what made the masks and the report."""
    out = [("Project", project.name), ("Report date", data.created),
           ("App version", f"Boxes2Pixels Inspector {__version__}"),
           ("Mask source", data.source)]
    origins = Counter(e.origin for e in data.entries)
    out.append(("Masks used", ", ".join(f"{n} {k}" for k, n in sorted(origins.items()))
                or "none"))
    students = [e for e in data.entries if e.origin == "student"]
    for model, n in sorted(Counter(e.model for e in students).items()):
        settings = next(e.record.student.settings for e in students if e.model == model)
        out += _model_lines(project, model, settings or {}, n)
    teachers = Counter((r.teacher.source, json.dumps(r.teacher.settings, sort_keys=True))
                       for r in (e.record for e in data.entries) if r.teacher is not None)
    for (name, settings), n in sorted(teachers.items()):
        out.append(("Teacher", f"{name} {settings} ({n} images)"))
    out.append(("Severity rule", data.settings.source))
    gsds = {e.gsd for e in data.entries}
    out.append(("Ground sample distance",
                f"{gsd} mm/px" if gsd else "per image (meta gsd_mm)" if gsds - {None}
                else "unknown: sizes relative to the image"))
    out.append(("Images reviewed by a person",
                f"{sum(e.record.reviewed for e in data.entries)} of {len(data.entries)}"))
    return out


def _gt_file(gt_dir: Path, key: str) -> Path | None:
    rel = Path(key)
    for cand in (gt_dir / rel.with_suffix(".png"), gt_dir / (rel.stem + ".png"),
                 gt_dir / rel.name):
        if cand.is_file():
            return cand
    return None


def gt_metrics(project: Project, data: ReportData, gt_dir: str | Path) -> dict:
    """Display name -> value: scores of the report's masks against ground-truth label PNGs.

    A ground-truth file has the image's stem (``gt_dir/<subfolders>/<stem>.png`` or
    ``gt_dir/<stem>.png``), pixel = class id, like ``b2p export --format png`` writes.
    """
    from . import metrics  # written elsewhere; needs numpy only

    gt_dir = Path(gt_dir)
    if not gt_dir.is_dir():
        raise ProjectError(f"{gt_dir}: ground-truth folder not found")
    n = project.num_classes
    cm = np.zeros((n, n), np.int64)
    used = 0
    for e in data.entries:
        f = _gt_file(gt_dir, e.key)
        if f is None:
            continue
        gt = _images.load_label(f)
        pred = mask_for(project, e.key, data.source, fallback=(data.source == "student"))
        if pred is None or gt.shape != e.shape:
            continue
        cm += np.asarray(metrics.confusion(fit_to_record(pred.label, e.shape[1], e.shape[0]),
                                           gt, n), dtype=np.int64)
        used += 1
    if not used:
        raise ProjectError(f"{gt_dir}: no ground-truth mask matches an inspected image")
    scores = metrics.scores(cm, project.class_names())
    out: dict = {"images compared": used}
    for k, label in (("miou", "mIoU"), ("anomaly_miou", "anomaly mIoU (defect classes)"),
                     ("binary_iou", "binary IoU (defect vs background)"),
                     ("binary_f1", "binary F1"), ("pixel_accuracy", "pixel accuracy")):
        if k in scores:
            out[label] = float(scores[k])
    for name, d in dict(scores.get("per_class", {})).items():
        if isinstance(d, dict) and "iou" in d:
            out[f"IoU {name}"] = float(d["iou"])
    return out


# ----------------------------------------------------------------- findings.csv
CSV_COLUMNS = ("image", "turbine", "blade", "side", "region_id", "class", "severity",
               "severity_name", "suggested_severity", "override", "area_px", "area_pct",
               "area_mm2", "bbox", "confidence", "mask", "reviewed", "action", "time_frame")


def _cell(v: object) -> str:
    s = "" if v is None else str(v)
    # a spreadsheet would run a cell starting with these as a formula
    return "'" + s if s[:1] in ("=", "+", "-", "@") else s


def findings_csv(data: ReportData) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(CSV_COLUMNS)
    for e in data.entries:
        for f in e.findings:
            r = f.region
            w.writerow([_cell(v) for v in (
                e.key, meta_of(e, "turbine"), meta_of(e, "blade"), meta_of(e, "side"), r.id,
                f.class_name, f.severity, f.category.name, f.suggested,
                "yes" if f.overridden else "no", r.area, f"{f.area_pct:.4f}",
                "" if f.area_mm2 is None else f"{f.area_mm2:.1f}", " ".join(map(str, r.bbox)),
                "" if r.confidence is None else f"{r.confidence:.3f}", e.origin,
                "yes" if e.record.reviewed else "no", f.category.action, f.category.time_frame)])
    return buf.getvalue()


# ----------------------------------------------------------------- driver
def collect(project: Project, source: str = "student", gsd: float | None = None,
            settings: SeveritySettings | None = None, progress: ProgressFn | None = None,
            should_stop: StopFn | None = None) -> ReportData:
    """Everything a report shows, for every image with a mask."""
    if gsd is not None and not gsd > 0:
        raise ProjectError(f"GSD must be a positive number of mm per pixel, got {gsd}")
    settings = settings or load_settings(project)
    colors = {c.name: c.color for c in sorted(project.classes, key=lambda c: c.id) if c.id > 0}
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
    data = ReportData(project.name, now, source, settings, colors)
    keys = project.keys()
    rep = Reporter(len(keys), progress, should_stop)
    for key in keys:
        rep.check()
        entry = _collect_entry(project, key, source, settings, gsd)
        if entry is None:
            data.not_inspected.append(key)
        else:
            data.entries.append(entry)
        rep.step(message=key)
    data.provenance = provenance(project, data, gsd)
    return data


def write_report(project: Project, out_dir: str | Path, source: str = "student",
                 pdf: bool = False, gsd: float | None = None, gt_dir: str | Path | None = None,
                 progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None) -> dict[str, Path]:
    """Write report.html, findings.csv, severity_chart.png (and report.pdf); return paths."""
    from ._report_html import render_html

    data = collect(project, source, gsd, progress=progress, should_stop=should_stop)
    if should_stop and should_stop():
        raise Cancelled()
    if gt_dir is not None:
        data.metrics = gt_metrics(project, data, gt_dir)
    out_dir = Path(out_dir)
    chart = severity_chart(data.findings, data.class_colors)
    paths = {"html": out_dir / "report.html", "csv": out_dir / "findings.csv",
             "chart": out_dir / "severity_chart.png"}
    atomic_write_bytes(paths["chart"], chart)
    atomic_write_text(paths["csv"], findings_csv(data))
    atomic_write_text(paths["html"], render_html(data, chart))
    if pdf:
        from ._report_pdf import render_pdf

        paths["pdf"] = out_dir / "report.pdf"
        atomic_write_bytes(paths["pdf"], render_pdf(data, chart))
    return paths
