"""Box-free rows of ``bench/quality.py``: the student on held-out photos with no boxes at all.

Pixel scores (binary IoU, anomaly mIoU) and region recall / precision
(:mod:`ml.evaluation.regions`, 3 px) of the student's argmax, raw and with findings under the
speckle bound dropped (:mod:`ml.prediction.speckle`) at several bounds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SPECKLE_CELLS = (1.0, 16.0)  # box-free speckle bounds measured beside none and the default
FREE_COLS = ["nobox_binary_iou", "nobox_anomaly_miou", "nobox_region_recall",
             "nobox_region_precision", "nobox_predicted_regions", "nobox_clean_binary_iou",
             "nobox_clean_region_recall", "nobox_clean_region_precision",
             "nobox_clean_predicted_regions"]


def box_free_scores(free: dict[str, np.ndarray], cells: dict[str, float], masks_dir: Path,
                    names: list[str]) -> dict:
    """Box-free rows: pixel scores and region recall / precision of the student's argmax, raw
    (``nobox_*``, with speckle removed at the predictor's default: ``nobox_clean_*``) and at
    each bound of :data:`SPECKLE_CELLS` (``speckle``: cells -> scores)."""
    from quality import ground_truth, score_labels

    from ml.evaluation.regions import RegionCounts, region_counts
    from ml.prediction.speckle import MIN_CELLS, remove_speckle

    gts = ground_truth(masks_dir, list(free))
    out: dict = {}
    sweep = {}
    for n_cells in sorted({0.0, MIN_CELLS, *SPECKLE_CELLS}):
        masks = {k: remove_speckle(m, cells[k], n_cells) for k, m in free.items()}
        counts = sum((region_counts(masks[k], gts[k]) for k in masks), RegionCounts())
        sc = {m: score_labels(masks, masks_dir, names)[m] for m in ("binary_iou", "anomaly_miou")}
        sc.update(counts.as_dict())
        sweep[f"{n_cells:g}"] = sc
        if n_cells in (0.0, MIN_CELLS):
            tag = "nobox_" if n_cells == 0 else "nobox_clean_"
            out.update({tag + m: v for m, v in sc.items()})
    out.update({f"nobox_{m}": v for m, v in score_labels(free, masks_dir, names).items()})
    out["speckle"] = sweep
    return out


def box_free_markdown(rows: list[dict]) -> list[str]:
    """The box-free table's lines (none when no row has box-free scores)."""
    lines: list[str] = []
    free = [r for r in rows if "nobox_region_recall" in r]
    if free:
        lines += ["", "Box-free (the same held-out photos, no boxes at test time; regions match "
                  "within 3 px; `clean`: findings under the predictor's speckle bound dropped, "
                  "ml/prediction/speckle.py):", "",
                  "| name | teacher | " + " | ".join(FREE_COLS) + " |",
                  "|" + "---|" * (len(FREE_COLS) + 2)]
        for r in free:
            cells = [f"{r[c]:.3f}" if isinstance(r.get(c), float) else str(r.get(c, "–"))
                     for c in FREE_COLS]
            lines.append(f"| {r['name']} | {r.get('teacher')} | " + " | ".join(cells) + " |")
    return lines
