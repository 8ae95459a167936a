"""The findings review: ``b2p findings PROJECT`` lists, ``b2p findings set ...`` decides."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import CLIError
from app.cli._batch import PARTIAL
from ml.project.files import SOURCES

USAGE = ("b2p findings PROJECT [--csv FILE] [--severity N|N+] [--class C] [--turbine T] "
         "[--blade B] [--unreviewed]\n"
         "       b2p findings set PROJECT KEY REGION_ID [--severity N|--clear] [--note TEXT] "
         "[--accept|--unaccept]")
_LIST_ONLY = ("csv", "class_name", "turbine", "blade")
_SET_ONLY = ("clear", "note", "accept", "unaccept")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "findings", usage=USAGE, help="list defect findings; review them (severity, note, accept)",
        description="List the findings (defect regions with size, severity and repair action) "
                    "of a project, or, with 'set', record a reviewer's decision about one.")
    p.add_argument("words", nargs="+", metavar="PROJECT | set PROJECT KEY REGION_ID")
    p.add_argument("--source", choices=SOURCES, default="student",
                   help="masks to read (default: student, else the teacher's; as b2p report)")
    p.add_argument("--gsd", type=float, metavar="MM_PER_PX",
                   help="ground sample distance for every photo (default: per photo meta gsd_mm)")
    p.add_argument("--severity", metavar="N",
                   help="list: only severity N, or N and above with N+; set: the reviewer's "
                        "severity 1-5")
    p.add_argument("--csv", type=Path, metavar="FILE", help="list: also write the rows as CSV")
    p.add_argument("--class", dest="class_name", metavar="C", help="list: only this class")
    p.add_argument("--turbine", metavar="T", help="list: only this turbine")
    p.add_argument("--blade", metavar="B", help="list: only this blade")
    p.add_argument("--unreviewed", action="store_true",
                   help="list: only findings nobody has accepted yet")
    p.add_argument("--clear", action="store_true",
                   help="set: drop the reviewer's severity (the suggestion stands)")
    p.add_argument("--note", metavar="TEXT", help="set: the note ('' removes it)")
    p.add_argument("--accept", action="store_true", help="set: mark the finding reviewed")
    p.add_argument("--unaccept", action="store_true", help="set: mark it not reviewed again")
    p.add_argument("--by", default="", metavar="NAME", help="set: who decided (stored)")
    p.set_defaults(func=cmd_findings)


def _open(path: str):
    from ml.project.store import Project

    return Project.open(path)


def cmd_findings(args: argparse.Namespace) -> int:
    if args.words[0] == "set":
        return _cmd_set(args)
    if len(args.words) != 1:
        raise CLIError(f"expected one project folder, got {' '.join(args.words)!r} "
                       f"(to review one finding: b2p findings set PROJECT KEY REGION_ID)")
    used = [f"--{n.replace('_name', '')}" for n in _SET_ONLY if getattr(args, n)]
    if used:
        raise CLIError(f"{', '.join(used)} only go with 'b2p findings set PROJECT KEY REGION_ID'")
    return _cmd_list(args)


def _severity_filter(text: str | None) -> tuple[int | None, bool]:
    if text is None:
        return None, False
    at_least = text.endswith("+")
    try:
        level = int(text.rstrip("+"))
    except ValueError:
        level = 0
    if level not in range(1, 6):
        raise CLIError(f"--severity must be 1-5, or N+ for N and above; got {text!r}")
    return level, at_least


def _cmd_list(args: argparse.Namespace) -> int:
    from ml.common.atomic import atomic_write_text
    from ml.findings.locate import UNPLACED
    from ml.findings.review import FindingFilter, findings_csv, list_findings

    level, at_least = _severity_filter(args.severity)
    proj = _open(args.words[0])
    if args.class_name is not None and args.class_name not in proj.class_names()[1:]:
        raise CLIError(f"unknown class '{args.class_name}' (known: "
                       f"{', '.join(proj.class_names()[1:])})")
    where = FindingFilter(level, at_least, args.class_name, args.turbine, args.blade,
                          args.unreviewed)
    found = list_findings(proj, source=args.source, where=where, gsd=args.gsd)
    print(format_table(found.rows))
    for line in position_warnings(found.rows):
        print(f"warning: {line}")
    for key, why in found.failed.items():
        print(f"error: {key}: {why}")
    print(found.summary())
    unplaced = sorted({r.key for r in found.rows if r.zone == UNPLACED})
    if unplaced:
        print(f"{len(unplaced)} photo(s) with findings have no turbine or blade: unplaced "
              f"(set them with b2p meta)")
    if args.csv is not None:
        atomic_write_text(args.csv, findings_csv(found.rows))
        print(f"csv: {args.csv}")
    return PARTIAL if found.failed else 0


def _cmd_set(args: argparse.Namespace) -> int:
    from ml.findings.review import find_finding, set_review

    if len(args.words) != 4:
        raise CLIError("usage: b2p findings set PROJECT KEY REGION_ID [--severity N|--clear] "
                       "[--note TEXT] [--accept|--unaccept]")
    used = [f"--{n.replace('_name', '')}" for n in _LIST_ONLY if getattr(args, n)]
    if used or args.unreviewed:
        raise CLIError(f"{', '.join(used or ['--unreviewed'])} only go with listing "
                       f"(b2p findings PROJECT)")
    if args.severity is not None and args.clear:
        raise CLIError("give --severity N or --clear, not both")
    if args.accept and args.unaccept:
        raise CLIError("give --accept or --unaccept, not both")
    change: dict = {}
    if args.severity is not None:
        level, at_least = _severity_filter(args.severity)
        if at_least:
            raise CLIError(f"--severity takes one level 1-5 here, got {args.severity!r}")
        change["level"] = level
    if args.clear:
        change["level"] = None
    if args.note is not None:
        change["note"] = args.note
    if args.accept or args.unaccept:
        change["accepted"] = bool(args.accept)
    if not change:
        raise CLIError("nothing to set: give --severity N, --clear, --note TEXT or --accept")
    _, project_dir, name, region_id = args.words
    proj = _open(project_dir)
    key = proj.find_key(name)
    if key is None:
        raise CLIError(f"no photo '{name}' in {proj.root} (give its key as b2p findings lists)")
    find_finding(proj, key, region_id, args.source)  # names the regions there are if wrong
    set_review(proj, key, region_id, by=args.by, **change)
    row = find_finding(proj, key, region_id, args.source)
    print(format_table([row]))
    return 0


def _text(row) -> list[str]:
    f = row.finding
    return [f.key, f.region.id, f.class_name, str(f.severity), str(f.suggested),
            "" if f.reviewer is None else str(f.reviewer), f"{f.region.area}",
            "" if f.area_mm2 is None else f"{f.area_mm2:.0f}",
            "" if f.length_mm is None else f"{f.length_mm:.0f}",
            "" if f.region.confidence is None else f"{f.region.confidence:.2f}",
            "yes" if f.accepted else "", "/".join(v for v in (row.turbine, row.blade, row.side)
                                                  if v),
            _radius(row.position), row.zone, f"{f.category.name}: {f.category.action}", f.note]


def _radius(pos) -> str:
    """'23.5 ± 0.4 m', '23.5 m' (uncertainty unknown), or '' without a radius."""
    if pos is None or pos.radius_m is None:
        return ""
    return f"{pos.radius_m:.1f}" + ("" if pos.uncertainty_m is None else
                                     f" ± {pos.uncertainty_m:.1f}") + " m"


_HEAD = ["PHOTO", "REGION", "CLASS", "SEV", "SUGG", "REVIEWER", "AREA_PX", "MM2", "LEN_MM", "CONF",
         "ACCEPTED", "WHERE", "RADIUS", "ZONE", "ACTION", "NOTE"]


def position_warnings(rows: list) -> list[str]:
    """A line per finding whose radius lies beyond the blade (or before the root): kept, flagged."""
    return [f"{r.key} {r.region_id}: {r.position.problem}" for r in rows
            if r.position is not None and r.position.radius_m is not None
            and r.position.problem.startswith("radius")]


def format_table(rows: list) -> str:
    """Rows as aligned text columns (the note last and unpadded)."""
    if not rows:
        return "no findings"
    cells = [_HEAD] + [_text(r) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(_HEAD) - 1)]
    return "\n".join("  ".join([*(c[i].ljust(widths[i]) for i in range(len(widths))),
                                c[-1]]).rstrip() for c in cells)
