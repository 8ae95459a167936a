"""Export and report commands: export, report."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import CLIError
from app.cli._batch import PARTIAL, exit_code, print_items
from app.cli._progress import tqdm_progress

SOURCES = ["teacher", "student", "reviewed"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export masks as label PNGs, COCO, YOLO-seg or YOLO boxes")
    p.add_argument("project", type=Path)
    p.add_argument("--format", choices=["png", "coco", "yolo-seg", "yolo"], required=True)
    p.add_argument("--source", choices=SOURCES, default="student",
                   help="which masks (default: student; images without one are skipped)")
    p.add_argument("--out", type=Path, required=True,
                   help="folder (png, yolo) or .json file / folder (coco)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("report", help="inspection report: HTML (+ PDF) and findings.csv")
    p.add_argument("project", type=Path)
    p.add_argument("--out", type=Path, required=True, help="folder for the report files")
    p.add_argument("--pdf", action="store_true", help="also write report.pdf")
    p.add_argument("--gsd", type=float, metavar="MM_PER_PX",
                   help="ground sample distance: sizes in mm^2 and the physical severity rule")
    p.add_argument("--gt", type=Path, metavar="DIR",
                   help="ground-truth class-id PNGs (same stems): add agreement scores")
    p.add_argument("--source", choices=SOURCES, default="student",
                   help="masks to report (default: student, else the teacher's)")
    p.set_defaults(func=cmd_report)


def _open(path: Path):
    from ml.store import Project

    return Project.open(path)


def cmd_export(args: argparse.Namespace) -> int:
    from ml.export import export_masks

    proj = _open(args.project)
    with tqdm_progress(f"export {args.format}") as bar:
        summary = export_masks(proj, args.format, args.source, args.out, progress=bar)
    print_items(summary)
    print(summary.summary())
    if summary.exported == 0 and not summary.failed:
        raise CLIError(f"no {args.source} masks in the project; nothing exported")
    return exit_code(summary)


def cmd_report(args: argparse.Namespace) -> int:
    from ml.report import write_report

    if args.gsd is not None and not args.gsd > 0:
        raise CLIError(f"--gsd must be a positive number of mm per pixel, got {args.gsd}")
    proj = _open(args.project)
    errors: list[str] = []

    def collect_errors(bar):  # per-image failures come as Progress.extra["error"]
        def on_progress(p) -> None:
            if p.extra.get("error"):
                errors.append(str(p.extra["error"]))
            bar(p)
        return on_progress

    with tqdm_progress("report") as bar:
        paths = write_report(proj, args.out, source=args.source, pdf=args.pdf, gsd=args.gsd,
                             gt_dir=args.gt, progress=collect_errors(bar))
    for line in errors:
        print(f"error: {line}")
    for kind in ("html", "pdf", "csv"):
        if kind in paths:
            print(f"{kind:>4}: {paths[kind]}")
    return PARTIAL if errors else 0
