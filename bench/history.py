"""Score the blade position and the inspection history on the synthetic two-year set.

    python -m bench.history [--seed 0 --seed 1 ...] [--out DIR]

Builds a project from :func:`ml.datasets.synthetic_history.make_history` (photos, the true
masks as teacher masks, metadata from the folder names ``DATE/TURBINE/BLADE/PS/12.5m/``, the
true GSD, the turbine's blade length), runs :func:`ml.findings.history.project_history` and
compares with the truth: the status of every defect, the area growth of matched ones and the
radius of every finding. Synthetic data: the figures say what the method does on it, not on
real blades.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np


def build_project(root: Path, hs, gsd: bool = True):
    """A project over ``hs``'s photos with the true masks and the photos' metadata."""
    from PIL import Image

    from ml.datasets.synthetic_history import BLADE_LENGTH_M, HUB_HEIGHT_M
    from ml.metadata.position import fill_radius, set_turbine
    from ml.metadata.values import from_folders, set_values
    from ml.project.store import Project

    photos = root / "photos"
    for p in hs.photos:
        f = photos / p.key
        f.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(p.image).save(f, quality=93)
    proj = Project.create(root / "project", photos)
    from_folders(proj)
    fill_radius(proj)
    with proj.batch():
        for p in hs.photos:
            set_values(proj, [p.key], date=hs.dates[p.year],
                       **({"gsd_mm": round(p.gsd_mm, 4)} if gsd else {}))
            proj.save_teacher_mask(p.key, p.label, "synthetic truth")
    set_turbine(proj, "WTG01", hub_height_m=HUB_HEIGHT_M, blade_length_m=BLADE_LENGTH_M)
    return proj


def _defect_of(hs, placed) -> int | None:
    """The truth defect index under a placed finding (majority of its outline's pixels)."""
    import cv2

    photo = next(p for p in hs.photos if p.key == placed.key)
    m = np.zeros(photo.instances.shape, np.uint8)
    cv2.fillPoly(m, [np.round(placed.outline).astype(np.int32)], 1)
    ids = photo.instances[m.astype(bool)]
    ids = ids[ids > 0]
    return int(np.bincount(ids).argmax()) - 1 if ids.size else None


def score(hist, hs) -> dict:
    """Status accuracy, growth error and radius error of ``hist`` against the truth of ``hs``."""
    comp = hist.latest
    truth = {d.index: d for d in hs.defects}
    got: dict[int, str] = {}
    growth_err, radius_err, wrong = [], [], []
    for ch in comp.changes:
        for year, placed in ((0, ch.earlier), (1, ch.current)):
            if placed is None:
                continue
            d = _defect_of(hs, placed)
            if d is None:
                continue
            r_true = truth[d].radius_m[year]
            if r_true is not None and placed.radius is not None:
                radius_err.append(abs(placed.radius - r_true))
        d = _defect_of(hs, ch.place)
        if d is None:
            wrong.append(f"{ch.ident}: on no true defect")
            continue
        got[d] = ch.status
        if ch.status != truth[d].status:
            wrong.append(f"defect {d} ({truth[d].status}) reported {ch.status} ({ch.how})")
        a = truth[d].area_mm2
        if ch.area_ratio is not None and None not in a:
            growth_err.append(abs(ch.area_ratio / (a[1] / a[0]) - 1.0))
    correct = sum(got.get(i) == d.status for i, d in truth.items())
    return {"defects": len(truth), "status_correct": correct,
            "status_accuracy": correct / max(1, len(truth)),
            "growth_error_max": max(growth_err, default=0.0),
            "growth_error_mean": float(np.mean(growth_err)) if growth_err else 0.0,
            "radius_error_max_m": max(radius_err, default=0.0),
            "radius_error_mean_m": float(np.mean(radius_err)) if radius_err else 0.0,
            "findings_placed": len(radius_err),
            "registered_pairs": sum(r.ok for r in comp.registrations.values()),
            "pairs": len(comp.registrations), "wrong": wrong}


def main(argv: list[str] | None = None) -> int:
    from ml.datasets.synthetic_history import make_history
    from ml.findings.history import project_history

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, action="append")
    ap.add_argument("--out", type=Path, help="keep the projects here (default: a temp folder)")
    args = ap.parse_args(argv)
    base = args.out or Path(tempfile.mkdtemp(prefix="b2p_history_"))
    rows = []
    for seed in args.seed or [0, 1, 2]:
        root = base / f"seed{seed}"
        shutil.rmtree(root, ignore_errors=True)
        hs = make_history(seed)
        proj = build_project(root, hs)
        s = score(project_history(proj, source="teacher"), hs)
        rows.append({"seed": seed, **s})
        print(json.dumps(rows[-1]))
    n = sum(r["defects"] for r in rows)
    print(f"synthetic two-year set, {len(rows)} seed(s), {n} defects: status accuracy "
          f"{sum(r['status_correct'] for r in rows) / n:.3f}; growth error max "
          f"{max(r['growth_error_max'] for r in rows):.3f}; radius error max "
          f"{max(r['radius_error_max_m'] for r in rows):.2f} m, mean "
          f"{np.mean([r['radius_error_mean_m'] for r in rows]):.2f} m")
    if not args.out:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
