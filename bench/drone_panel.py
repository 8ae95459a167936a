"""Box panel and a no-ground-truth check for a set without masks (the ILIAD drone photos).

Runs the user's path on a folder of photos with YOLO boxes (``b2p init``, ``import --yolo``,
``pseudo-label`` with the default teacher, ``train --budget``, ``predict``) in ``--work``, or
takes a project that has been through it. Then:

* the panel (``ml.evaluation.panel``): photo | teacher | student for a seeded sample of boxes,
  ``--thin`` of them drawn from the boxes where the ``auto`` teacher chose its thin-defect mask
  (ridge), the rest from all boxes; each row's note names the teacher's choice and the
  student's area over the teacher's inside the box (``ridge, area x3.6``);
* the area check: inside each box, the student's mask area over its teacher's, per teacher
  choice (ridge, grabcut, sam, box fill), and the share of boxes where the student's area is
  over ``1.5`` x the teacher's. The choice is the ``auto`` teacher's, made again on each photo
  (it is deterministic; a photo whose stored mask differs from the one made again, e.g. edited,
  counts as ``unknown``).

    python bench/drone_panel.py ../shared/data/iliad_wind_turbine --work /tmp/iliad --budget 5m
    python bench/drone_panel.py PROJECT [--out panel.png] [--n 8] [--thin 4] [--seed 0]

Writes OUT (the panel PNG) and OUT with ``.json`` (the area table, the command, the model).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.evaluation.panel import project_refs, sample_boxes, write_panel  # noqa: E402
from ml.project.store import Project, boxes_to_arrays, is_project  # noqa: E402

OVER = 1.5  # a student area over this many times its teacher's counts as filled
THIN = "ridge"  # the auto teacher's thin-defect candidate


def run_user_path(data: Path, work: Path, budget: str) -> Path:
    """The new user's commands on ``data`` (images/ and YOLO labels/) into ``work/project``."""
    from app.cli import main

    proj = work / "project"
    steps = [["init", str(proj), "--images", str(data / "images")],
             ["import", str(proj), "--yolo", str(data / "labels")],
             ["pseudo-label", str(proj)],
             ["train", str(proj), "--out", str(proj / "models" / "student"), "--budget", budget],
             ["predict", str(proj), "--model", str(proj / "models" / "student")]]
    for argv in steps:
        if (argv[0] == "init" and (proj / "project.json").exists()):
            continue  # a second run goes on from the project the first one made
        print("b2p " + " ".join(argv), flush=True)
        if main(argv) != 0:
            raise SystemExit(f"b2p {argv[0]} failed; see above")
    return proj


def teacher_choices(project: Project, keys: list[str]) -> dict[tuple[str, int], str]:
    """(key, box index) -> the candidate the ``auto`` teacher chose, made again per photo with
    the per-class kinds its survey stored with the mask; ``unknown`` where the photo's stored
    teacher mask is not what ``auto`` makes now."""
    from ml.teachers import make_teacher

    teacher = make_teacher("auto")
    out = {}
    for key in keys:
        rec = project.record(key)
        boxes, classes = boxes_to_arrays(rec.boxes)
        stored = project.load_mask(key, "teacher")
        kinds = (rec.teacher.settings or {}).get("kinds") if rec.teacher is not None else None
        teacher.kinds = {int(c): k for c, k in (kinds or {}).items()}  # the survey's, as made
        teacher.set_image(project.load_image(key))
        again = teacher.predict(boxes, classes)
        same = stored is not None and np.array_equal(again, stored)
        for i, choice in enumerate(teacher.choices):
            out[(key, i)] = choice if same else "unknown"
    return out


def box_areas(project: Project, keys: list[str]) -> dict[tuple[str, int], tuple[int, int]]:
    """(key, box index) -> (teacher, student) defect pixels inside the box."""
    out = {}
    for key in keys:
        t, s = (project.load_mask(key, src) for src in ("teacher", "student"))
        for i, b in enumerate(project.record(key).boxes):
            win = (slice(int(b.y0), int(np.ceil(b.y1))), slice(int(b.x0), int(np.ceil(b.x1))))
            out[(key, i)] = (int((t[win] > 0).sum()), int((s[win] > 0).sum()))
    return out


def area_table(choices: dict, areas: dict) -> dict[str, dict]:
    """Per teacher choice: boxes, median student/teacher area ratio, share over :data:`OVER`."""
    rows: dict[str, list[float]] = {}
    for ref, (t, s) in areas.items():
        ratio = s / t if t else (float("inf") if s else 1.0)
        rows.setdefault(choices.get(ref, "unknown"), []).append(ratio)
        rows.setdefault("all", []).append(ratio)
    return {name: {"boxes": len(r), "median_ratio": round(float(np.median(r)), 3),
                   f"share_over_{OVER:g}x": round(float(np.mean(np.array(r) > OVER)), 3)}
            for name, r in sorted(rows.items())}


def markdown(table: dict[str, dict]) -> str:
    lines = ["| teacher choice | boxes | median student/teacher area | student > 1.5x teacher |",
             "|---|---:|---:|---:|"]
    for name, r in table.items():
        lines.append(f"| {name} | {r['boxes']} | {r['median_ratio']:.2f} | "
                     f"{r[f'share_over_{OVER:g}x']:.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", type=Path, help="a project that was predicted, or a folder with "
                    "images/ and YOLO labels/ (then --work)")
    ap.add_argument("--work", type=Path, help="where the user path's project goes")
    ap.add_argument("--budget", default="5m", help="b2p train --budget (default 5m)")
    ap.add_argument("--out", type=Path, help="panel PNG (default: PROJECT/drone_panel.png)")
    ap.add_argument("--n", type=int, default=8, help="boxes in the panel")
    ap.add_argument("--thin", type=int, default=4,
                    help=f"of them, drawn from the boxes the teacher traced ({THIN})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cell", type=int, default=144, help="px of one panel cell")
    ap.add_argument("--keys-from", type=Path, metavar="PROJECT",
                    help="only the photos this other project has student masks for (two runs "
                    "compared on the same photos)")
    a = ap.parse_args(argv)
    if is_project(a.source):
        proj_dir = a.source
    elif a.work is None:
        ap.error("a data folder needs --work (where the project is made)")
    else:
        proj_dir = run_user_path(a.source, a.work, a.budget)
    project = Project.open(proj_dir)
    keys = [k for k in project.keys() if project.record(k).teacher is not None
            and project.record(k).student is not None and project.record(k).boxes]
    if a.keys_from is not None:
        other = Project.open(a.keys_from)
        keys = [k for k in keys if k in other.keys() and other.record(k).student is not None]
    if not keys:
        raise SystemExit(f"{proj_dir}: no photo with boxes, a teacher and a student mask")
    choices = teacher_choices(project, keys)
    areas = box_areas(project, keys)
    table = area_table(choices, areas)
    print(markdown(table))

    def note(ref: tuple[str, int]) -> str:
        t, s = areas[ref]
        return f"{choices[ref]}, area x{s / t:.1f}" if t else choices[ref]

    refs = project_refs(project, keys, {ref: note(ref) for ref in areas})
    thin = sample_boxes([r for r in refs if choices[(r.key, r.index)] == THIN], a.thin, a.seed)
    rest = sample_boxes([r for r in refs if r not in thin], a.n - len(thin), a.seed)
    out = a.out or proj_dir / "drone_panel.png"

    def load(key: str):
        masks = [project.load_mask(key, s) for s in ("teacher", "student")]
        return project.load_image(key), [m > 0 for m in masks]

    write_panel(out, thin + rest, load, ("photo", "teacher", "student"), a.cell)
    from ml.student.checkpoint import current_model

    model = current_model(project)
    report = {"project": str(proj_dir), "model": str(model) if model else None,
              "photos": len(keys), "boxes": len(areas), "areas": table,
              "panel": {"png": str(out), "n": a.n, "thin": len(thin), "seed": a.seed},
              "command": "python bench/drone_panel.py " + " ".join(argv or sys.argv[1:])}
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print(f"panel: {out} ({out.stat().st_size // 1024} KB); table: {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
