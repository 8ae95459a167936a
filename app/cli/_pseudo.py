"""`b2p pseudo-label`: run a box-to-mask teacher over a project."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.cli import CLIError
from app.cli._batch import exit_code, print_items
from ml.common.batch import BatchResult
from ml.student.config import DEFAULT_TEACHER


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pseudo-label",
                       help="make pseudo-masks from the boxes with a teacher (sam, grabcut, "
                            "ridge, auto, box)")
    p.add_argument("project", type=Path)
    p.add_argument("--teacher", choices=["sam", "grabcut", "ridge", "auto", "box"],
                   default=DEFAULT_TEACHER,
                   help="auto (default; per box: ridge, grabcut, sam if its checkpoint is "
                        "cached, the backbone-feature mask if the DINOv2 weights are cached, or "
                        "a box fill; students learn best from it, docs/RESULTS.md), "
                        "sam (needs a checkpoint), grabcut (offline), ridge (thin "
                        "cracks and scratches) or box (fill)")
    p.add_argument("--checkpoint", type=Path, help="SAM checkpoint (default: the cached one)")
    p.add_argument("--model-type", choices=["vit_b", "vit_l", "vit_h"], default="vit_b",
                   help="SAM model size (default: vit_b)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--multimask", action="store_true",
                   help="SAM: keep the best of three masks per box by predicted IoU")
    p.add_argument("--only-missing", action="store_true",
                   help="skip images that already have a pseudo-mask (resume a stopped run)")
    p.add_argument("--pad", type=int, metavar="PX",
                   help="pixels around each box a mask may reach (default: teacher's own)")
    p.set_defaults(func=cmd_pseudo_label)


def teacher_options(args: argparse.Namespace) -> dict:
    """The make_teacher options the parsed arguments ask for."""
    opts: dict = {}
    if args.pad is not None:
        opts["pad"] = args.pad
    if args.teacher == "sam":
        opts.update(model_type=args.model_type, checkpoint=args.checkpoint,
                    device=args.device, multimask=args.multimask)
    elif args.teacher == "auto":
        opts.update(model_type=args.model_type, device=args.device)
        if args.checkpoint is not None:
            raise CLIError("--teacher auto uses SAM only from the cached checkpoint; "
                           "use --teacher sam --checkpoint FILE for another one")
    elif args.checkpoint is not None:
        raise CLIError(f"--checkpoint applies to --teacher sam, not {args.teacher}")
    return opts


def print_summary(summary: BatchResult) -> None:
    from ml.teachers.pseudo_label import EDITED, EXISTING, NO_BOXES, PseudoLabelResult

    print(f"pseudo-labelled {len(summary.done)} of {summary.total} images; "
          f"skipped {len(summary.skipped_for(EDITED))} edited, "
          f"{len(summary.skipped_for(EXISTING))} existing, "
          f"{len(summary.skipped_for(NO_BOXES))} without boxes; {len(summary.failed)} errors")
    if isinstance(summary, PseudoLabelResult):
        print(summary.empty_line())
    print_items(summary)


def cmd_pseudo_label(args: argparse.Namespace) -> int:
    from app.cli._progress import stop_on_ctrl_c, tqdm_progress
    from ml.project.store import Project
    from ml.teachers import make_teacher
    from ml.teachers.pseudo_label import pseudo_label_project

    proj = Project.open(args.project)
    if args.teacher == "auto" and not any(proj.record(k).boxes for k in proj.keys()):
        raise CLIError(f"{args.project}: no photo has a box; --teacher auto chooses per box, "
                       f"so draw or import boxes first (b2p import)")
    teacher = make_teacher(args.teacher, **teacher_options(args))
    with (stop_on_ctrl_c("the current image") as stop,
          tqdm_progress(f"pseudo-label ({teacher.name})") as cb):
        summary = pseudo_label_project(proj, teacher, only_missing=args.only_missing,
                                       progress=cb, should_stop=lambda: stop[0])
    print_summary(summary)
    if summary.stopped:
        print("stopped early; run again with --only-missing to finish", file=sys.stderr)
    elif summary.failed:
        print(f"{len(summary.failed)} image(s) could not be pseudo-labelled (listed above); "
              f"the rest was done", file=sys.stderr)
    return exit_code(summary)
