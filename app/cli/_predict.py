"""``b2p predict`` (student masks for a project or a folder) and ``b2p eval`` (scores)."""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from app.cli import CLIError
from app.cli._batch import exit_code, print_items
from app.cli._progress import stop_on_ctrl_c, tqdm_progress

if TYPE_CHECKING:
    from ml.project.store import Project


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predict", help="predict defect masks with a trained student",
                       description="Predict student masks for a project (stored in it) or for a "
                                   "folder of photos (written to --out).")
    p.add_argument("target", metavar="PROJECT|IMAGES", help="project folder or photo folder")
    p.add_argument("--model", metavar="MODEL_DIR",
                   help="trained model folder (default: the newest under PROJECT/models)")
    p.add_argument("--tiled", action="store_true",
                   help="sliding-window prediction at native resolution, streamed in row bands "
                        "so large photos fit in memory (default: resize)")
    p.add_argument("--no-box-constraint", dest="box_constraint", action="store_false",
                   help="keep defects outside the drawn boxes too")
    p.add_argument("--no-fallback", dest="fallback", action="store_false",
                   help="a box where the student finds no defect stays empty (default: it "
                        "takes the teacher's mask)")
    p.add_argument("--box-rule", choices=("tight", "posterior"), default="tight",
                   help="which pixels of a box are defect: tight = the student's shape, "
                        "thresholded relative to its peak in the box so the defect crosses the "
                        "box (default); posterior = its defect probability above 0.5")
    p.add_argument("--box-pad", type=int, default=None, metavar="PX",
                   help="pixels a defect may reach beyond its box, for boxes drawn too tight "
                        "(default: 0, the box holds its defect)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda (default: auto)")
    p.add_argument("--no-proposals", dest="proposals", action="store_false",
                   help="do not store proposals (the defects found on photos without boxes, "
                        "for b2p review)")
    p.add_argument("--out", metavar="DIR", help="output folder when predicting a photo folder")
    d = p.add_argument_group("on a Dask cluster (a project only; see docs/SCALING.md)")
    d.add_argument("--scheduler", metavar="local|ADDRESS",
                   help="'local' starts a cluster on this machine for the run; tcp://HOST:8786 "
                        "uses a running one (default: no Dask, in this process)")
    d.add_argument("--workers", type=int, metavar="N",
                   help="workers of the local cluster (implies --scheduler local; default: one "
                        "per GPU, else one per core, fewer where memory is short)")
    d.add_argument("--photos-url", metavar="URL",
                   help="workers read each photo from URL/KEY (any fsspec URL, e.g. "
                        "s3://bucket/campaign) instead of the project's photo folder")
    d.add_argument("--connect-timeout", type=float, default=10.0, metavar="S",
                   help="give up on a scheduler that does not answer within S seconds (10)")
    p.set_defaults(func=run_predict)

    e = sub.add_parser("eval", help="score masks of a project against ground-truth masks",
                       description="Compare the project's masks with ground-truth class-id PNGs "
                                   "(GT/<subfolders>/<stem>.png, else GT/<stem>.png); print "
                                   "the scores as JSON.")
    e.add_argument("project", metavar="PROJECT")
    e.add_argument("--gt", required=True, metavar="DIR", help="folder of ground-truth masks")
    e.add_argument("--source", choices=("teacher", "student"), default="student")
    e.add_argument("--photos", choices=("all", "boxed", "unboxed"), default="all",
                   help="score only the photos a person boxed, or only the others (box-free "
                        "quality: what the student found where nobody drew a box; accepted "
                        "proposals are not a person's boxes)")
    e.add_argument("--out", metavar="FILE", help="also write the JSON here")
    e.set_defaults(func=run_eval)




def run_predict(args: argparse.Namespace) -> int:
    from ml.prediction import batch_predict as predict
    from ml.project.store import Project, is_project
    from ml.student.checkpoint import current_model

    target = Path(args.target)
    if not target.is_dir():
        raise CLIError(f"{target}: not a folder")
    is_proj = is_project(target)
    if not is_proj and not args.out:
        raise CLIError(f"{target} is not a project: give --out DIR for the predicted masks")
    if args.model is None and not is_proj:
        raise CLIError("--model MODEL_DIR is needed for a photo folder")
    project = Project.open(target) if is_proj else None
    model_dir = Path(args.model) if args.model else current_model(project)
    if model_dir is None:
        raise CLIError(f"no trained model under {project.models_dir()}; pass --model")
    if args.box_pad is not None and args.box_pad < 0:
        raise CLIError(f"--box-pad must be 0 or more pixels, got {args.box_pad}")
    options = {"box_rule": args.box_rule}  # to the Predictor, here or on the Dask workers
    if args.box_pad is not None:
        options["box_pad"] = args.box_pad
    if args.scheduler or args.workers is not None or args.photos_url:
        if project is None:
            raise CLIError("--scheduler, --workers and --photos-url work on a project")
        return _run_campaign(args, project, model_dir, options)
    with tqdm_progress("predict") as bar:
        if project is not None:
            summary = predict.predict_project(project, model_dir,
                                              tiled=args.tiled, box_constraint=args.box_constraint,
                                              device=args.device, progress=bar,
                                              fallback=args.fallback,
                                              proposals=args.proposals, **options)
        else:
            summary = predict.predict_folder(target, model_dir, args.out, tiled=args.tiled,
                                             device=args.device, progress=bar, **options)
    print_items(summary)
    if summary.fallback_boxes:
        print(f"{summary.fallback_boxes} boxes where the student found no defect took the "
              "teacher's mask (--no-fallback leaves them empty)")
    if getattr(summary, "changes", None) is not None:
        ch = summary.changes
        print(f"against the previous model ({ch.photos_changed} of {ch.photos} photos changed): "
              f"{ch.summary(project.class_names())}")
    if project is not None and args.proposals:
        _say_proposals(project, summary.done, target)
    where = "stored in the project" if is_proj else f"written to {args.out}"
    print(f"predicted {len(summary.done)}/{summary.total} photos with model {summary.model}, "
          f"{where}" + (f"; {len(summary.failed)} failed" if summary.failed else ""))
    return exit_code(summary)


def _run_campaign(args: argparse.Namespace, project: Project, model_dir: Path,
                  options: dict) -> int:
    """``b2p predict PROJECT --scheduler ...``: the same masks, predicted by Dask workers."""
    from ml.campaign.client import CampaignError, predict_campaign

    try:
        with stop_on_ctrl_c("the photos in flight") as stop, tqdm_progress("predict") as bar:
            summary = predict_campaign(
                project, model_dir, scheduler=args.scheduler or "local", workers=args.workers,
                tiled=args.tiled, box_constraint=args.box_constraint, fallback=args.fallback,
                device=args.device, progress=bar, should_stop=lambda: stop[0], note=_note,
                photo_root=args.photos_url, connect_timeout=args.connect_timeout,
                proposals=args.proposals, **options)
    except CampaignError as e:
        raise CLIError(str(e)) from e
    print_items(summary)
    if args.proposals:
        _say_proposals(project, summary.done, project.root)
    if summary.resumed:
        print(f"{summary.resumed} photos were finished by an earlier run and not predicted again")
    if summary.run_dir:
        print(f"unfinished run kept in {summary.run_dir}: the same command again resumes it")
    print(f"predicted {len(summary.done)}/{summary.total} photos with model {summary.model} on "
          f"{summary.workers} Dask workers in {summary.seconds:.1f} s, stored in the project"
          + (f"; {len(summary.failed)} failed" if summary.failed else ""))
    return exit_code(summary)


def _say_proposals(project: Project, keys: tuple[str, ...], target: Path) -> None:
    """How many proposals the prediction left to review, and the command that reviews them."""
    n = [len((project.record(k).findings.get("proposals") or {}).get("items", {}))
         for k in keys]
    if sum(n):
        print(f"{sum(n)} proposals on {sum(map(bool, n))} photos without boxes to review: "
              f"b2p review {target}")


def _note(line: str) -> None:
    from tqdm import tqdm

    tqdm.write(line)


def _json_safe(obj: object) -> object:
    """NaN (an undefined score) as null, so the output is strict JSON."""
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_json_safe(v) for v in obj]
    return obj


def run_eval(args: argparse.Namespace) -> int:
    from ml.common.atomic import atomic_write_json
    from ml.evaluation.metrics import score_project
    from ml.project.store import Project

    proj = Project.open(args.project)
    keys = None
    if args.photos != "all":
        boxed = args.photos == "boxed"
        keys = [k for k, rec in proj.records().items() if rec.person_boxed() == boxed]
    r = score_project(proj, args.gt, args.source, keys)
    if not r.scored:
        which = {"all": "a ", "boxed": "a boxed ", "unboxed": "an unboxed "}[args.photos]
        raise CLIError(f"{args.gt}: no ground-truth mask matched {which}photo with a "
                       f"{args.source} mask")
    result = _json_safe({"source": args.source, "photos": args.photos, **r.scores,
                         "images": len(r.scored),
                         "unmatched": list(r.unmatched), "missing": list(r.missing),
                         "failed": r.failed, "confusion": r.confusion.tolist(),
                         "per_photo": {k: list(v) for k, v in r.per_photo.items()}})
    print(json.dumps(result, indent=1))
    if args.out:
        atomic_write_json(args.out, result)
    return 0
