"""Teacher quality alone (no training): binary IoU of each teacher's pseudo-masks.

Boxes come from the ground-truth masks' connected components (padded), exactly as in
``bench/quality.py``; every teacher labels every photo and is scored against the truth.

    python bench/teacher_quality.py --data DIR [--teachers ridge,auto,grabcut,box]
        [--limit N] [--pad 2] [--work DIR] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # quality puts the project on the path

from quality import (  # noqa: E402
    boxed_keys,
    command_line,
    dataset_classes,
    dataset_name,
    make_project,
    score_labels,
    show_table,
)

from ml.teachers import make_teacher  # noqa: E402
from ml.teachers.pseudo_label import pseudo_label_project  # noqa: E402


def teacher_row(proj, keys: list[str], name: str, masks_dir: Path, names: list[str]) -> dict:
    """Scores, seconds and empty-box counts of teacher ``name`` over ``keys``."""
    t0 = time.monotonic()
    res = pseudo_label_project(proj, make_teacher(name), keys=keys)
    secs = time.monotonic() - t0
    labels = {k: proj.load_mask(k) for k in keys if proj.record(k).teacher is not None}
    return {"teacher": name, **score_labels(labels, masks_dir, names),
            "boxes": res.boxes, "empty_boxes": dict(res.empty_boxes),
            "seconds": round(secs, 1)}


def markdown(dataset: str, rows: list[dict], command: str) -> str:
    lines = [f"## {dataset}: teachers alone", "", f"`{command}`", "",
             "| teacher | binary IoU | recall | precision | boxes | boxes < 2 % covered | s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        empty = ", ".join(f"{k} {v}" for k, v in r["empty_boxes"].items())
        lines.append(f"| {r['teacher']} | {r['binary_iou']:.3f} | {r['binary_recall']:.3f} | "
                     f"{r['binary_precision']:.3f} | {r['boxes']} | {empty} | {r['seconds']} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--teachers", default="ridge,auto,grabcut,box")
    ap.add_argument("--limit", type=int, default=0, help="first N photos only (0: all)")
    ap.add_argument("--pad", type=int, default=2, help="pixels around ground-truth boxes")
    ap.add_argument("--work", type=Path, help="project folder parent (default: a temp dir)")
    ap.add_argument("--out", type=Path, help="also write the table here")
    a = ap.parse_args(argv)
    names = dataset_classes(a.data)
    dataset = dataset_name(a.data)
    with tempfile.TemporaryDirectory() as tmp:
        proj = make_project(a.work or Path(tmp), a.data, names, a.pad)
        keys = boxed_keys(proj, a.limit)
        rows = []
        for name in (t for t in a.teachers.split(",") if t):
            rows.append(teacher_row(proj, keys, name, a.data / "masks", names))
            print(f"  {name}: binary IoU {rows[-1]['binary_iou']:.3f} "
                  f"({rows[-1]['seconds']} s)", flush=True)
    return show_table(markdown(dataset, rows, command_line("teacher_quality.py", argv)), a.out)


if __name__ == "__main__":
    raise SystemExit(main())
