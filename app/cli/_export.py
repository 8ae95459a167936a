"""Export and report commands: export, report."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import CLIError
from app.cli._batch import PARTIAL, exit_code, print_items
from app.cli._progress import tqdm_progress
from ml.project.files import SOURCES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export masks as label PNGs, COCO, YOLO-seg or YOLO "
                                      "boxes, or the whole index as project.json")
    p.add_argument("project", type=Path)
    p.add_argument("--format", choices=["png", "coco", "yolo-seg", "yolo", "project-json"],
                   required=True, help="project-json: the index (boxes, mask records, metadata, "
                                       "findings) in the interchange form, to --out")
    p.add_argument("--source", choices=SOURCES, default="student",
                   help="which masks (default: student, with the review's answers on its "
                        "proposals: accepted ones drawn in, rejected ones cleared; images "
                        "without one are skipped)")
    p.add_argument("--out", type=Path, required=True,
                   help="folder (png, yolo, yolo-seg) or .json file / folder (coco)")
    yolo = p.add_argument_group("yolo, yolo-seg", "an Ultralytics dataset: images/{train,val}, "
                                "labels/{train,val}, data.yaml")
    yolo.add_argument("--val-fraction", type=float, default=0.2, metavar="F",
                      help="share of photos for val when the project has no train/val split "
                           "yet (default: 0.2; the split drawn is kept for training)")
    yolo.add_argument("--seed", type=int, default=0, help="seed of that split (default: 0)")
    yolo.add_argument("--copy-images", action="store_true",
                      help="copy the photos (default: hard links, else symbolic links, else "
                           "copies)")
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
    p.add_argument("--include-proposals", action="store_true",
                   help="also list the model's proposals nobody has accepted yet (marked "
                        "'proposed'); by default only accepted ones (b2p review)")
    p.set_defaults(func=cmd_report)


def _open(path: Path):
    from ml.project.store import Project

    return Project.open(path)


def cmd_export(args: argparse.Namespace) -> int:
    from ml.datasets.export import export_masks

    if args.format == "project-json":
        from ml.project.legacy import export_json

        out = export_json(_open(args.project), args.out)
        print(f"wrote the project index to {out}")
        return 0
    if not args.format.startswith("yolo") and args.copy_images:
        raise CLIError("--copy-images is for the yolo and yolo-seg formats")
    if not 0 < args.val_fraction < 1:
        raise CLIError(f"--val-fraction must lie between 0 and 1, got {args.val_fraction}")
    proj = _open(args.project)
    with tqdm_progress(f"export {args.format}") as bar:
        summary = export_masks(proj, args.format, args.source, args.out, progress=bar,
                               val_fraction=args.val_fraction, seed=args.seed,
                               copy_images=args.copy_images)
    print_items(summary)
    print(summary.summary())
    if summary.exported == 0 and not summary.failed:
        raise CLIError(f"no {args.source} masks in the project; nothing exported")
    return exit_code(summary)


def cmd_report(args: argparse.Namespace) -> int:
    from ml.findings.report import write_report

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
                             gt_dir=args.gt, progress=collect_errors(bar),
                             include_proposals=args.include_proposals)
    for line in errors:
        print(f"error: {line}")
    for kind in ("html", "pdf", "csv"):
        if kind in paths:
            print(f"{kind:>4}: {paths[kind]}")
    return PARTIAL if errors else 0
