"""Build a report: collect what it shows, score it against ground truth, write the files."""

from __future__ import annotations

import datetime as _dt
import json
from collections import Counter
from pathlib import Path

from ml import __version__
from ml.common import images as _images
from ml.common.atomic import atomic_write_bytes, atomic_write_text
from ml.common.hashing import sha256_file
from ml.common.progress import Cancelled, ProgressFn, Reporter, StopFn
from ml.evaluation.metrics import GroundTruthScorer, GroundTruthScores
from ml.findings.locate import finding_positions
from ml.findings.report._blade import blade_section
from ml.findings.report._data import GUESS_MARK, ImageEntry, ReportData, entry_order, findings_csv
from ml.findings.report._figures import overlay_thumbnail, severity_chart
from ml.findings.report._html import render_html
from ml.findings.report._pdf import render_pdf
from ml.findings.review import photo_regions
from ml.findings.severity import SeveritySettings, assess, image_gsd, load_settings
from ml.metadata.position import turbines
from ml.metadata.values import guessed
from ml.project.store import Project, ProjectError
from ml.student.checkpoint import CARD_NAME, WEIGHTS_NAME, find_model


# ----------------------------------------------------------------- collection
def _collect_entry(project: Project, key: str, source: str, settings: SeveritySettings,
                   gsd: float | None, scorer: GroundTruthScorer | None,
                   include_proposals: bool = False,
                   lengths: dict[str, float | None] | None = None) -> ImageEntry | None:
    found = photo_regions(project, key, source)
    if found is None:
        return None
    sm, label, regions = found
    gt_file = scorer.ground_truth(key) if scorer is not None else None
    if gt_file is not None:  # scored from the one read of the mask the report shows
        scorer.add(key, label, gt_file)
    rec = project.record(key)
    findings = assess(project, key, regions, settings, gsd)
    if source == "student":  # proposals nobody accepted are not findings unless asked for
        from ml.findings.decisions import reported_findings

        findings = reported_findings(project, key, findings, include_proposals)
    try:
        image = project.load_image(key)
    except _images.ImageError:
        image = None
    boxes = [(*b.xyxy, b.cls) for b in rec.boxes]
    thumb = overlay_thumbnail(image, label, project.palette(), boxes, findings)
    where = finding_positions(project, key, regions, (f.region for f in findings),
                              lengths or {}, gsd, image)
    return ImageEntry(key, rec, sm.origin, sm.model, findings, regions.shape,
                      image_gsd(rec, gsd), thumb, image is None, where)


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
        out.append(("Model weights", f"{d.name}/{WEIGHTS_NAME}, sha256 {sha256_file(weights)}"))
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
    n_gsd = sum("gsd_mm" in guessed(e.record.meta) for e in data.entries)
    out.append(("Ground sample distance",
                f"{gsd} mm/px" if gsd else "per image (meta gsd_mm" +
                (f"; {n_gsd} estimated, not confirmed)" if n_gsd else ")") if gsds - {None}
                else "unknown: sizes relative to the image"))
    g = [guessed(e.record.meta) for e in data.entries]
    if any(g):
        out.append(("Guessed metadata", f"{sum(map(len, g))} values on {sum(map(bool, g))} "
                                        f"images, marked {GUESS_MARK}: not confirmed by a person"))
    out.append(("Images reviewed by a person",
                f"{sum(e.record.reviewed for e in data.entries)} of {len(data.entries)}"))
    return out


def gt_metrics(result: GroundTruthScores, gt_dir: str | Path) -> dict:
    """Display name -> value: the report's masks scored against ground-truth label PNGs.

    Each image's ground truth is found by :func:`ml.common.images.label_file`; pixel = class id,
    like ``b2p export --format png`` writes.
    """
    if not result.scored:
        raise ProjectError(f"{gt_dir}: no ground-truth mask matches an inspected image")
    scores = result.scores
    out: dict = {"images compared": len(result.scored)}
    for k, label in (("miou", "mIoU"), ("anomaly_miou", "anomaly mIoU (defect classes)"),
                     ("binary_iou", "binary IoU (defect vs background)"),
                     ("binary_f1", "binary F1"), ("pixel_accuracy", "pixel accuracy")):
        if k in scores:
            out[label] = float(scores[k])
    for name, d in dict(scores.get("per_class", {})).items():
        if isinstance(d, dict) and "iou" in d:
            out[f"IoU {name}"] = float(d["iou"])
    return out


# ----------------------------------------------------------------- driver
def collect(project: Project, source: str = "student", gsd: float | None = None,
            settings: SeveritySettings | None = None, progress: ProgressFn | None = None,
            should_stop: StopFn | None = None, gt_dir: str | Path | None = None,
            include_proposals: bool = False) -> ReportData:
    """Everything a report shows, for every image with a mask (with ``gt_dir``, the masks'
    scores against that ground truth in ``metrics``)."""
    if gsd is not None and not gsd > 0:
        raise ProjectError(f"GSD must be a positive number of mm per pixel, got {gsd}")
    if gt_dir is not None and not Path(gt_dir).is_dir():
        raise ProjectError(f"{gt_dir}: ground-truth folder not found")
    scorer = GroundTruthScorer(gt_dir, project.class_names()) if gt_dir is not None else None
    settings = settings or load_settings(project)
    colors = {c.name: c.color for c in sorted(project.classes, key=lambda c: c.id) if c.id > 0}
    now = _dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z").strip()
    data = ReportData(project.name, now, source, settings, colors)
    keys = project.keys()
    lengths = {n: t.blade_length_m for n, t in turbines(project).items()}
    rep = Reporter(len(keys), progress, should_stop)
    for key in keys:
        rep.check()
        try:
            entry = _collect_entry(project, key, source, settings, gsd, scorer,
                                   include_proposals, lengths)
        except _images.ImageError as e:  # a damaged mask file: named, the report goes on
            data.failed[key] = str(e)
            rep.step(message=key, error=str(e))
            continue
        if entry is None:
            data.not_inspected.append(key)
        else:
            data.entries.append(entry)
        rep.step(message=key)
    data.entries.sort(key=entry_order)  # turbine, blade, side: the order an inspector walks
    data.blade = blade_section(project, source, should_stop)
    data.provenance = provenance(project, data, gsd)
    if scorer is not None:
        data.metrics = gt_metrics(scorer.result(), gt_dir)
    return data


def write_report(project: Project, out_dir: str | Path, source: str = "student",
                 pdf: bool = False, gsd: float | None = None, gt_dir: str | Path | None = None,
                 progress: ProgressFn | None = None,
                 should_stop: StopFn | None = None,
                 include_proposals: bool = False) -> dict[str, Path]:
    """Write report.html, findings.csv, severity_chart.png (and report.pdf); return paths.

    ``include_proposals``: also list the model's proposals nobody has accepted yet (noted as
    proposed); by default a photo no person boxed shows only its accepted proposals.
    """
    data = collect(project, source, gsd, progress=progress, should_stop=should_stop,
                   gt_dir=gt_dir, include_proposals=include_proposals)
    if should_stop and should_stop():
        raise Cancelled()
    out_dir = Path(out_dir)
    chart = severity_chart(data.findings, data.class_colors)
    paths = {"html": out_dir / "report.html", "csv": out_dir / "findings.csv",
             "chart": out_dir / "severity_chart.png"}
    atomic_write_bytes(paths["chart"], chart)
    atomic_write_text(paths["csv"], findings_csv(data))
    atomic_write_text(paths["html"], render_html(data, chart))
    if pdf:
        paths["pdf"] = out_dir / "report.pdf"
        atomic_write_bytes(paths["pdf"], render_pdf(data, chart))
    return paths
