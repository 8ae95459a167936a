"""``b2p review``: the model's proposals on unboxed photos, decided from the command line."""

from __future__ import annotations

import argparse

from app.cli import CLIError

USAGE = ("b2p review PROJECT [--list [--limit N] [--all]] | --accept ID [--class NAME] "
         "[--box X0,Y0,X1,Y1] | --reject ID | --withdraw ID | --photos-to-box N | "
         "--calibrate [--target-precision P]")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "review", usage=USAGE, help="review the model's proposals: list, accept, reject",
        description="The defects the student proposes on photos nobody boxed, in the order "
                    "whose decisions teach the model most. An accepted proposal becomes a box "
                    "and its mask a training target; a rejected one teaches background there.")
    p.add_argument("project", metavar="PROJECT")
    act = p.add_mutually_exclusive_group()
    act.add_argument("--list", action="store_true", help="list the queue (the default)")
    act.add_argument("--accept", metavar="ID", help="accept proposal ID (KEY:PID, as listed)")
    act.add_argument("--reject", metavar="ID", help="reject proposal ID: background there")
    act.add_argument("--withdraw", metavar="ID", help="take back the decision about ID")
    act.add_argument("--photos-to-box", type=int, metavar="N",
                     help="the N unboxed photos the model is least sure of")
    act.add_argument("--calibrate", action="store_true",
                     help="fit the confidence calibration and per-class thresholds on the "
                          "validation photos and the decided proposals; store it in the card")
    p.add_argument("--class", dest="class_name", metavar="NAME",
                   help="accept: the class it is (default: the proposal's)")
    p.add_argument("--box", metavar="X0,Y0,X1,Y1", help="accept: your box instead of the "
                                                          "proposal's")
    p.add_argument("--by", default="", metavar="NAME", help="who decides (stored)")
    p.add_argument("--limit", type=int, default=20, metavar="N",
                   help="list: the first N (default 20; 0: all)")
    p.add_argument("--all", action="store_true", help="list: decided proposals too")
    p.add_argument("--model", metavar="MODEL_DIR",
                   help="calibrate: the model (default: the newest under PROJECT/models)")
    p.add_argument("--target-precision", type=float, default=0.8, metavar="P",
                   help="calibrate: the precision each class's threshold aims at (0.8)")
    p.set_defaults(func=cmd_review)


def _open(path: str):
    from ml.project.store import Project

    return Project.open(path)


def _split(text: str) -> tuple[str, str]:
    from ml.findings.queue import split_id

    try:
        return split_id(text)
    except ValueError as e:
        raise CLIError(str(e)) from e


def _box(text: str | None) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        box = tuple(float(v) for v in text.split(","))
    except ValueError:
        box = ()
    if len(box) != 4 or not (box[0] < box[2] and box[1] < box[3]):
        raise CLIError(f"--box wants X0,Y0,X1,Y1 with X0 < X1 and Y0 < Y1, got {text!r}")
    return box


def cmd_review(args: argparse.Namespace) -> int:
    if (args.class_name or args.box) and not args.accept:
        raise CLIError("--class and --box go with --accept ID")
    if not 0 < args.target_precision <= 1:
        raise CLIError(f"--target-precision must be in (0, 1], got {args.target_precision}")
    proj = _open(args.project)
    if args.accept or args.reject:
        return _decide(proj, args)
    if args.withdraw:
        from ml.findings.decisions import withdraw

        key, pid = _split(args.withdraw)
        d = withdraw(proj, key, pid)
        print(f"{key}:{pid}: decision withdrawn ({d.brief(proj.class_names())}); pending again")
        return 0
    if args.photos_to_box is not None:
        return _photos(proj, args.photos_to_box)
    if args.calibrate:
        return _calibrate(proj, args)
    return _list(proj, args)


def _decide(proj, args: argparse.Namespace) -> int:
    from ml.findings.decisions import ACCEPTED, REJECTED, decide

    key, pid = _split(args.accept or args.reject)
    action = ACCEPTED if args.accept else REJECTED
    result = decide(proj, key, pid, action, cls=args.class_name, box=_box(args.box), by=args.by)
    names = proj.class_names()
    if result.previous is not None:
        print(f"note: this replaces the earlier decision ({result.previous.brief(names)}); "
              f"the later decision wins")
    print(f"{key}:{pid}: {result.decision.brief(names)}")
    return 0


def _list(proj, args: argparse.Namespace) -> int:
    from ml.findings.decisions import REJECTED, counts, replaced_decisions
    from ml.findings.queue import review_queue

    q = review_queue(proj, include_decided=args.all)
    items = q.items if args.limit == 0 else q.items[: args.limit]
    print(format_queue(items))
    for key in q.missing:
        print(f"warning: {key}: photo missing on disk; its proposals are left out")
    print(q.summary())
    n = counts(proj)
    if q.decided and not n[REJECTED]:
        print("no rejected proposals yet: the next training has no hard negatives")
    if args.by:
        for key, now, old in replaced_decisions(proj, args.by):
            print(f"note: your decision on {key}:{now.pid} ({old.get('action')}) was replaced "
                  f"by a later one: {now.brief(proj.class_names())}")
    return 0


_HEAD = ["ID", "CLASS", "CONF", "THR", "NOVEL", "TEACH", "WHY", "SEV", "AREA_PX", "DECIDED"]


def format_queue(items: list) -> str:
    if not items:
        return "no proposals to review (predict photos without boxes first: b2p predict)"
    rows = [_HEAD] + [[i.id, i.class_name, f"{i.proposal.calibrated:.2f}",
                       f"{i.proposal.threshold:.2f}",
                       "-" if i.proposal.novelty is None else f"{i.proposal.novelty:.1f}",
                       f"{i.priority:.2f}", i.reason,
                       str(i.severity), str(i.proposal.area),
                       i.decision.action if i.decision else ""] for i in items]
    widths = [max(len(r[c]) for r in rows) for c in range(len(_HEAD))]
    return "\n".join("  ".join(r[c].ljust(widths[c]) for c in range(len(_HEAD))).rstrip()
                     for r in rows)


def _photos(proj, n: int) -> int:
    from ml.findings.queue import photos_to_box

    if n < 1:
        raise CLIError(f"--photos-to-box wants a count of 1 or more, got {n}")
    ranked = photos_to_box(proj, n)
    if not ranked:
        print("no predicted photo without boxes (b2p predict first)")
    for key, score in ranked:
        print(f"{score:8.4f}  {key}")
    return 0


def _calibrate(proj, args: argparse.Namespace) -> int:
    from pathlib import Path

    from ml.findings.decisions import calibration_examples
    from ml.prediction.proposal_calibration import calibrate_model
    from ml.student.checkpoint import current_model

    model_dir = Path(args.model) if args.model else current_model(proj)
    if model_dir is None:
        raise CLIError(f"no trained model under {proj.models_dir()}; pass --model")
    cal = calibrate_model(proj, model_dir, target=args.target_precision,
                          decided=calibration_examples(proj))
    print(f"{model_dir.name}: {cal.summary()}")
    return 0
