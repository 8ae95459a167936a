"""Project commands: init, rescan, import (photos or boxes), masks, boxes, status."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from app.cli import CLIError
from app.cli._batch import PARTIAL, exit_code, print_items
from ml.common.batch import BatchResult
from ml.project.files import SOURCES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create a project over a folder of photos")
    p.add_argument("project", type=Path)
    p.add_argument("--images", type=Path, help="folder of photos (default: the project folder)")
    p.add_argument("--classes", default=None,
                   help="defect classes, comma-separated (default: dirt,damage, or the names "
                        "of the labels --import-found imports)")
    p.add_argument("--import-found", action="store_true",
                   help="import the YOLO or COCO boxes found beside the photos (the first set)")
    p.add_argument("--db", metavar="URL",
                   help="keep the index on a PostgreSQL server (postgresql://HOST/DB, a team's "
                        "project; the password comes from PGPASSWORD or ~/.pgpass and is never "
                        "stored); default: PROJECT/project.sqlite")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("rescan", help="add new photos of the image folder; name unreadable ones")
    p.add_argument("project", type=Path)
    p.add_argument("--forget-missing", action="store_true",
                   help="drop photos whose file is gone (their boxes and masks go with them)")
    p.add_argument("--forget-unreadable", action="store_true",
                   help="drop photos that cannot be read (their boxes and masks go with them)")
    p.set_defaults(func=cmd_rescan)

    p = sub.add_parser("import", help="import a folder of photos (the next inspection), or "
                                      "boxes (YOLO, COCO, or boxes from mask components)")
    p.add_argument("project", type=Path)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--photos", type=Path, metavar="DIR",
                     help="a folder of new photos: they become the project's next inspection, "
                          "dated by their capture dates (else today); a folder outside the "
                          "photo folder is hard-linked, else copied, into it")
    src.add_argument("--yolo", type=Path, metavar="DIR", help="folder of YOLO txt files")
    src.add_argument("--coco", type=Path, metavar="FILE", help="COCO JSON")
    src.add_argument("--masks", type=Path, metavar="DIR",
                     help="class-id PNG masks: one box per connected component (boxes only)")
    p.add_argument("--class-map", help="YOLO index to class name, e.g. 0:damage,1:dirt")
    p.add_argument("--pad", type=int, default=0, help="pixels added around mask boxes")
    p.add_argument("--keep", action="store_true", help="add to existing boxes, do not replace")
    p.add_argument("--date", metavar="YYYY-MM-DD",
                   help="with --photos: the inspection's date (default: the capture dates)")
    p.add_argument("--into", metavar="NAME",
                   help="with --photos: the folder name inside the photo folder (default: the "
                        "folder's own name)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("masks", help="write one class-id PNG per image (original size, same stem)")
    p.add_argument("project", type=Path)
    p.add_argument("--source", choices=SOURCES, default="teacher")
    p.add_argument("--out", type=Path, required=True)
    p.set_defaults(func=cmd_masks)

    p = sub.add_parser("boxes", help="export the project's boxes as YOLO txt or COCO JSON")
    p.add_argument("project", type=Path)
    p.add_argument("--format", choices=["yolo", "coco"], required=True)
    p.add_argument("--out", type=Path, required=True, help="folder (yolo) or .json file (coco)")
    p.set_defaults(func=cmd_boxes)

    p = sub.add_parser("status", help="count images by status")
    p.add_argument("project", type=Path)
    p.set_defaults(func=cmd_status)


def _open(path: Path):
    from ml.project.store import Project

    return Project.open(path)


def cmd_init(args: argparse.Namespace) -> int:
    from ml.common.classes import DEFAULT_CLASSES, make_classes
    from ml.datasets.project_start import find_labels, start_project
    from ml.project.store import Project

    if args.import_found and args.classes is not None:
        raise CLIError("--import-found takes the classes from the labels it imports; "
                       "drop --classes")
    photos = args.images or args.project
    found = find_labels(photos) if Path(photos).is_dir() else []
    if args.db is not None and args.import_found:
        raise CLIError("--db and --import-found: init with --db, then 'b2p import'")
    if args.import_found and found:
        started = start_project(photos, args.project, found[0])
        print(started.summary())
        proj = Project.open(started.root)
    else:
        classes = make_classes(args.classes.split(",")) if args.classes else DEFAULT_CLASSES
        proj = Project.create(args.project, args.images, classes, db=args.db)
        print(f"project {proj.root}: {len(proj.images)} images from {proj.image_root}; "
              f"classes {', '.join(proj.class_names())}")
        if args.import_found:
            print("no YOLO or COCO labels found beside the photos")
        for f in found:
            print(f"found {f.describe()}; import it with "
                  f"'b2p import {proj.root} --{f.kind} {f.path}'")
    return _report_unreadable(proj.scan())  # a second scan reads only the unreadable again


def cmd_rescan(args: argparse.Namespace) -> int:
    proj = _open(args.project)
    # never automatic: photos on a drive that is not plugged in look missing too
    missing = proj.missing_keys()
    gone = list(missing) if args.forget_missing else []
    for key in [] if args.forget_missing else missing:
        print(f"warning: {key}: file not found (drop it with 'b2p rescan --forget-missing')")
    scan = proj.scan()
    gone += [k for k in scan.failed if args.forget_unreadable and k not in gone]
    if gone:
        proj.remove_images(gone)
        print(f"forgot {len(gone)} photo(s): {', '.join(gone[:20])}"
              + (" ..." if len(gone) > 20 else ""))
        scan = replace(scan, failed={k: v for k, v in scan.failed.items() if k not in gone})
    print(f"{len(scan.done)} new photos added")
    return _report_unreadable(scan)


def _report_unreadable(scan: BatchResult) -> int:
    for key, why in scan.failed.items():
        print(f"warning: {key}: {why} (it stays listed and every step skips it; fix the file "
              f"and run 'b2p rescan', or drop it with 'b2p rescan --forget-unreadable')")
    if scan.failed:
        print(f"{len(scan.failed)} photo(s) could not be read (named above)", file=sys.stderr)
    return exit_code(scan)


def cmd_import(args: argparse.Namespace) -> int:
    from app.cli._progress import tqdm_progress
    from ml.datasets import importers

    proj = _open(args.project)
    if args.photos is not None:
        return _import_photos(proj, args)
    if args.date or args.into:
        raise CLIError("--date and --into go with --photos")
    replace = not args.keep
    with tqdm_progress("import") as cb:
        if args.yolo:
            cmap = importers.parse_class_map(args.class_map, proj)
            rep = importers.import_yolo(proj, args.yolo, cmap, replace, progress=cb)
        elif args.coco:
            rep = importers.import_coco(proj, args.coco, replace, progress=cb)
        else:
            rep = importers.import_masks(proj, args.masks, args.pad, replace, progress=cb)
    print_items(rep)
    print(rep.summary())
    if rep.images_matched == 0 and not rep.failed:
        raise CLIError("no labels matched any image of the project (check file stems)")
    return exit_code(rep)


def _import_photos(proj, args: argparse.Namespace) -> int:
    from app.cli._progress import tqdm_progress
    from ml.findings.photo_import import import_photos

    if args.class_map or args.pad or args.keep:
        raise CLIError("--class-map, --pad and --keep go with importing boxes, not --photos")
    with tqdm_progress("photos") as cb:
        res = import_photos(proj, args.photos, args.date, args.into, progress=cb)
    print_items(res)
    print(res.summary())
    return exit_code(res)


def cmd_masks(args: argparse.Namespace) -> int:
    from ml.common.images import ImageError, save_label
    from ml.common.outnames import OutputNames

    proj = _open(args.project)
    names = OutputNames((".png",))
    n, failed = 0, 0
    for key in proj.keys():
        try:
            label = proj.load_mask(key, args.source)
        except ImageError as e:  # a damaged mask file: name it, write the others
            print(f"error: {key}: {e.reason}")
            failed += 1
            continue
        if label is None:
            continue
        save_label(args.out / f"{names(key)}.png", label)
        n += 1
    print(f"wrote {n} {args.source} masks to {args.out}" +
          (f"; {failed} unreadable masks skipped" if failed else ""))
    if n == 0 and not failed:
        raise CLIError(f"no {args.source} masks in the project")
    return PARTIAL if failed else 0


def cmd_boxes(args: argparse.Namespace) -> int:
    from ml.datasets.box_export import export_boxes_coco, export_boxes_yolo

    proj = _open(args.project)
    if args.format == "yolo":
        n = export_boxes_yolo(proj, args.out)
        print(f"wrote {n} YOLO label files to {args.out}")
    else:
        n = export_boxes_coco(proj, args.out)
        print(f"wrote {n} boxes to {args.out}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from ml.common.images import missing_folder

    proj = _open(args.project)
    counts = proj.status_counts()  # counted by the database, no record is read
    print(f"{proj.root}: {sum(counts.values())} images, {proj.box_count()} boxes")
    for status, n in sorted(counts.items()):
        print(f"  {status:16s} {n}")
    gone = missing_folder(proj.image_root)
    if gone is not None:
        above = "" if gone == proj.image_root else f" ({gone} is missing)"
        print(f"warning: the photo folder {proj.image_root} is not there{above}: moved, "
              f"renamed, or on a drive that is not connected; the project is intact, but "
              f"every step that reads photos fails until it is back", file=sys.stderr)
    return 0
