"""Inspection metadata: b2p meta (folders, CSV, auto-fill from EXIF/XMP, set, confirm, show)."""

from __future__ import annotations

import argparse
import fnmatch
from pathlib import Path

from app.cli import CLIError
from app.cli._batch import exit_code, print_items
from app.cli._progress import tqdm_progress

_MARK = "*"
_FIELD_HELP = ("turbine, blade, side, date, distance_m, gsd_mm, radius_m, hub_height_m, "
               "blade_length_m, inspection")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "meta", help="turbine / blade / side / date / distance / GSD per image",
        description="Without an action, print each image's metadata; guessed values carry "
                    f"a '{_MARK}' until a person sets or confirms them.")
    p.add_argument("project", type=Path)
    act = p.add_mutually_exclusive_group()
    act.add_argument("--auto", action="store_true",
                     help="guess from EXIF/XMP, folder names and a GSD estimate; never "
                          "overwrites a value a person set or confirmed")
    act.add_argument("--from-folders", action="store_true",
                     help="guess from TURBINE/BLADE/SIDE/photo.jpg folder names (and EXIF date)")
    act.add_argument("--csv", type=Path, metavar="FILE",
                     help="CSV with columns image,turbine,blade,side,distance_m,date")
    act.add_argument("--set", action="append", metavar="FIELD=VALUE",
                     help=f"set a field on every image (or those of --where); fields: "
                          f"{_FIELD_HELP}; an empty VALUE clears it; repeatable")
    act.add_argument("--confirm", nargs="+", metavar="FIELD",
                     help="a person checked these guessed fields (or 'all') and they are right")
    act.add_argument("--radius", action="store_true",
                     help="guess each photo's radius (m from the blade root) from names like "
                          ".../B/PS/12.5m/ or the drone's altitude (needs hub_height_m)")
    act.add_argument("--along", metavar="BLADE/SIDE",
                     help="guess radii for a sequence along one blade side: --from M "
                          "--step M, in capture order")
    p.add_argument("--from", dest="start", type=float, default=0.0, metavar="M",
                   help="with --along: the first photo's radius (default 0)")
    p.add_argument("--step", type=float, metavar="M", help="with --along: metres between photos")
    p.add_argument("--takeoff-alt", type=float, metavar="M",
                   help="with --radius: GPS altitude of the take-off point (tower base), for "
                        "photos without XMP RelativeAltitude")
    p.add_argument("--where", metavar="GLOB",
                   help="only images whose key matches, e.g. 'WTG07/*' (--auto, --set, "
                        "--confirm, the listing)")
    p.add_argument("--turbine", metavar="T",
                   help="only the photos of turbine T, e.g. --turbine WTG07 --set "
                        "hub_height_m=100 --set blade_length_m=60")
    p.add_argument("--distance", type=float, metavar="M",
                   help="with --auto: camera-to-blade distance in metres for images without "
                        "one; the GSD estimate uses it")
    p.add_argument("--show", action="store_true", help="print the table after the action")
    p.set_defaults(func=cmd_meta)


def _position(proj, keys: list[str], args: argparse.Namespace) -> None:
    from ml.metadata.position import along, fill_radius

    if args.along is not None:
        if args.step is None:
            raise CLIError("--along needs --step M (and --from M, default 0)")
        res = along(proj, args.along, args.start, args.step, keys)
    else:
        res = fill_radius(proj, keys, takeoff_alt_m=args.takeoff_alt)
    print(res.summary())


def _keys(proj, where: str | None) -> list[str]:
    keys = proj.keys()
    if where is None:
        return keys
    hits = [k for k in keys if fnmatch.fnmatchcase(k, where)]
    if not hits:
        raise CLIError(f"--where '{where}' matches no image key (keys look like '{keys[0]}')"
                       if keys else "the project has no images")
    return hits


def _cell(meta: dict, name: str, guessed: dict) -> str:
    from ml.metadata.values import SHORT_SIDES

    v = meta.get(name)
    if v in (None, ""):
        return "-"
    text = SHORT_SIDES.get(v, str(v)) if name == "side" else f"{v:g}" \
        if isinstance(v, float) else str(v)
    return text + (_MARK if name in guessed else "")


def show(proj, keys: list[str]) -> None:
    """One line per image, guessed values marked, then the legend."""
    from ml.metadata.values import FIELDS, guessed

    fields = [*FIELDS, "radius_m"]
    rows = [["image", *fields]]
    any_guess = False
    for k in keys:
        meta = proj.record(k).meta
        g = guessed(meta)
        any_guess |= bool(g)
        rows.append([k, *(_cell(meta, f, g) for f in fields)])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())
    if any_guess:
        print(f"{_MARK} guessed: check, then 'b2p meta PROJECT --confirm FIELD' "
              f"or '--set FIELD=VALUE'")


def _parse_sets(items: list[str]) -> dict[str, str]:
    from ml.metadata.values import ALL_FIELDS as FIELDS

    out = {}
    for item in items:
        name, eq, value = item.partition("=")
        if not eq or name.strip() not in FIELDS:
            raise CLIError(f"--set '{item}': want FIELD=VALUE with FIELD one of {_FIELD_HELP}")
        out[name.strip()] = value
    return out


def _confirm_fields(names: list[str]) -> list[str] | None:
    from ml.metadata.values import ALL_FIELDS as FIELDS

    if "all" in names:
        return None
    bad = [n for n in names if n not in FIELDS]
    if bad:
        raise CLIError(f"--confirm: unknown field(s) {', '.join(bad)} (one of {_FIELD_HELP}, "
                       f"or all)")
    return names


def cmd_meta(args: argparse.Namespace) -> int:
    from ml.metadata import values as metadata
    from ml.metadata.autofill import auto_fill
    from ml.project.store import Project

    proj = Project.open(args.project)
    if args.distance is not None and not args.auto:
        raise CLIError("--distance goes with --auto (use --set distance_m=M to set it)")
    keys = _keys(proj, args.where)
    if args.turbine is not None:
        keys = [k for k in keys if proj.record(k).meta.get("turbine") == args.turbine]
        if not keys:
            raise CLIError(f"--turbine {args.turbine}: no photo of that turbine (set turbine "
                           f"first)")
    rc = 0
    if args.along is not None or args.radius:
        _position(proj, keys, args)
    elif args.auto:
        with tqdm_progress("meta") as bar:
            result = auto_fill(proj, keys, distance_m=args.distance, progress=bar)
        print_items(result)
        print(result.summary())
        rc = exit_code(result)
    elif args.from_folders or args.csv:
        summary = metadata.from_folders(proj) if args.from_folders \
            else metadata.from_csv(proj, args.csv)
        print(summary.summary())
        if summary.updated == 0:
            raise CLIError("no image got metadata; see 'b2p meta --help' for the folder "
                           "convention")
    elif args.set:
        values = _parse_sets(args.set)
        metadata.set_values(proj, keys, **values)
        print(f"set {', '.join(values)} on {len(keys)} images")
    elif args.confirm:
        n = metadata.confirm(proj, keys, _confirm_fields(args.confirm))
        print(f"confirmed {n} guessed values on {len(keys)} images")
    if args.show or not (args.auto or args.from_folders or args.csv or args.set
                         or args.confirm or args.radius or args.along):
        show(proj, keys)
    return rc
