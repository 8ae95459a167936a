"""The quality bench's picture: what the numbers mean on a few held-out photos.

One row per photo: image + boxes | teacher | student | ground truth | corrections (student vs
teacher: recovered, rejected, reclassified). Written by ``bench/quality.py`` for the first
trained row; usable on its own with the same inputs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

# corrections codes of ml.prediction.predict (1 recovered, 2 rejected, 3 reclassified) -> RGB
_CORR = {1: (0, 200, 255), 2: (255, 60, 60), 3: (255, 200, 0)}
_DEFECT = (255, 40, 200)


def _overlay(image: np.ndarray, mask: np.ndarray, colours: dict[int, tuple] | None = None,
             alpha: float = 0.55) -> np.ndarray:
    out = image.astype(np.float32).copy()
    for v in np.unique(mask):
        if v == 0:
            continue
        c = np.array((colours or {}).get(int(v), _DEFECT), np.float32)
        sel = mask == v
        out[sel] = (1 - alpha) * out[sel] + alpha * c
    return out.clip(0, 255).astype(np.uint8)


def pick_examples(keys: list[str], gts: dict[str, np.ndarray], n: int) -> list[str]:
    """``n`` held-out photos spread over defect sizes (smallest to largest defect area)."""
    ranked = sorted(keys, key=lambda k: int(np.count_nonzero(gts[k])))
    if len(ranked) <= n:
        return ranked
    idx = np.linspace(0, len(ranked) - 1, n).round().astype(int)
    return [ranked[i] for i in idx]


def write_figure(path: Path, title: str, rows: list[dict]) -> Path:
    """``rows``: dicts with image, boxes (N, 4), teacher, student, gt, corrections, key."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch, Rectangle

    cols = ["image + boxes", "teacher", "student (B2P)", "ground truth",
            "corrections vs teacher"]
    fig, axes = plt.subplots(len(rows), len(cols), figsize=(3.0 * len(cols), 2.6 * len(rows)),
                             squeeze=False)
    for r, row in enumerate(rows):
        img = row["image"]
        panels = [img, _overlay(img, row["teacher"]), _overlay(img, row["student"]),
                  _overlay(img, row["gt"]), _overlay(img, row["corrections"], _CORR, 0.8)]
        for c, (ax, p) in enumerate(zip(axes[r], panels, strict=True)):
            ax.imshow(p)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(cols[c], fontsize=9)
        for x0, y0, x1, y1 in np.asarray(row["boxes"]).reshape(-1, 4):
            axes[r][0].add_patch(Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False,
                                           edgecolor="yellow", linewidth=1))
        axes[r][0].set_ylabel(Path(row["key"]).stem, fontsize=8)
    handles = [Patch(color=np.array(_DEFECT) / 255, label="defect pixels")] + [
        Patch(color=np.array(c) / 255, label=n) for n, c in
        zip(["recovered (student adds)", "rejected (student drops)", "reclassified"],
            _CORR.values(), strict=True)]
    fig.legend(handles=handles, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def figure(path: Path, title: str, proj, keys: list[str], gts: dict, teacher: dict,
           student: dict) -> None:
    """Four held-out photos (:func:`pick_examples`): ground truth, teacher, student, corrections."""
    from ml.evaluation.corrections import corrections
    from ml.project.store import boxes_to_arrays

    rows = []
    for k in pick_examples(keys, gts, 4):
        t = teacher.get(k, np.zeros_like(gts[k]))
        rows.append({"key": k, "image": proj.load_image(k), "gt": gts[k], "teacher": t,
                     "boxes": boxes_to_arrays(proj.record(k).boxes)[0], "student": student[k],
                     "corrections": corrections(student[k], t)})
    write_figure(path, title, rows)
    print(f"  figure: {path}")


def box_panel(path: Path, proj, keys: list[str], teacher: dict, student: dict,
              seed: int) -> None:
    """photo | teacher | student for a seeded sample of the held-out photos' boxes."""
    from ml.evaluation.panel import BoxRef, sample_boxes, write_panel

    refs = [BoxRef(k, i, (b.x0, b.y0, b.x1, b.y1)) for k in keys if k in teacher
            for i, b in enumerate(proj.record(k).boxes)]
    if refs:
        write_panel(path, sample_boxes(refs, seed=seed),
                    lambda k: (proj.load_image(k), [teacher[k] > 0, student[k] > 0]),
                    ("photo", "teacher", "student"))
        print(f"  panel: {path}")
