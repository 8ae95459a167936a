"""Project commands: init, import, masks, boxes, status."""

from __future__ import annotations

import argparse
from pathlib import Path

from app.cli import CLIError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("init", help="create a project over a folder of photos")
    p.add_argument("project", type=Path)
    p.add_argument("--images", type=Path, help="folder of photos (default: the project folder)")
    p.add_argument("--classes", default="dirt,damage",
                   help="defect classes, comma-separated (default: dirt,damage)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("import", help="import boxes (YOLO, COCO, or boxes from mask components)")
    p.add_argument("project", type=Path)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--yolo", type=Path, metavar="DIR", help="folder of YOLO txt files")
    src.add_argument("--coco", type=Path, metavar="FILE", help="COCO JSON")
    src.add_argument("--masks", type=Path, metavar="DIR",
                     help="class-id PNG masks: one box per connected component (boxes only)")
    p.add_argument("--class-map", help="YOLO index to class name, e.g. 0:damage,1:dirt")
    p.add_argument("--pad", type=int, default=0, help="pixels added around mask boxes")
    p.add_argument("--keep", action="store_true", help="add to existing boxes, do not replace")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("masks", help="write one class-id PNG per image (original size, same stem)")
    p.add_argument("project", type=Path)
    p.add_argument("--source", choices=["teacher", "student", "reviewed"], default="teacher")
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
    from ml.store import Project

    return Project.open(path)


def cmd_init(args: argparse.Namespace) -> int:
    from ml.classes import make_classes
    from ml.store import Project

    proj = Project.create(args.project, args.images, make_classes(args.classes.split(",")))
    unreadable = [k for k, r in proj.images.items() if not r.width]
    print(f"project {proj.root}: {len(proj.images)} images from {proj.image_root}; "
          f"classes {', '.join(proj.class_names())}")
    for k in unreadable:
        print(f"warning: {k}: unreadable image (it stays listed; fix or remove the file)")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from app.cli._progress import tqdm_progress
    from ml import importers

    proj = _open(args.project)
    replace = not args.keep
    with tqdm_progress("import") as cb:
        if args.yolo:
            cmap = importers.parse_class_map(args.class_map, proj)
            rep = importers.import_yolo(proj, args.yolo, cmap, replace, progress=cb)
        elif args.coco:
            rep = importers.import_coco(proj, args.coco, replace, progress=cb)
        else:
            rep = importers.import_masks(proj, args.masks, args.pad, replace, progress=cb)
    for w in rep.warnings[:50]:
        print(f"warning: {w}")
    if len(rep.warnings) > 50:
        print(f"... and {len(rep.warnings) - 50} more warnings")
    print(rep.summary())
    if rep.images_matched == 0:
        raise CLIError("no labels matched any image of the project (check file stems)")
    return 0


def cmd_masks(args: argparse.Namespace) -> int:
    from ml.images import save_label
    from ml.outnames import OutputNames

    proj = _open(args.project)
    names = OutputNames((".png",))
    n = 0
    for key in proj.keys():
        label = proj.load_mask(key, args.source)
        if label is None:
            continue
        save_label(args.out / f"{names(key)}.png", label)
        n += 1
    print(f"wrote {n} {args.source} masks to {args.out}")
    if n == 0:
        raise CLIError(f"no {args.source} masks in the project")
    return 0


def cmd_boxes(args: argparse.Namespace) -> int:
    from ml.box_export import export_boxes_coco, export_boxes_yolo

    proj = _open(args.project)
    if args.format == "yolo":
        n = export_boxes_yolo(proj, args.out)
        print(f"wrote {n} YOLO label files to {args.out}")
    else:
        n = export_boxes_coco(proj, args.out)
        print(f"wrote {n} boxes to {args.out}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    proj = _open(args.project)
    counts: dict[str, int] = {}
    for rec in proj.images.values():
        counts[rec.status] = counts.get(rec.status, 0) + 1
    boxes = sum(len(r.boxes) for r in proj.images.values())
    print(f"{proj.root}: {len(proj.images)} images, {boxes} boxes")
    for status, n in sorted(counts.items()):
        print(f"  {status:16s} {n}")
    return 0
