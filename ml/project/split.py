"""Which photos are labelled, and the project's persisted train/val split (no torch needed).

Training (:mod:`ml.training.data`, which re-exports these) and the YOLO dataset export
(:mod:`ml.datasets.yolo_dataset`) use the same rule, so an exported ``val`` folder holds the photos
the trainer validates on.
"""

from __future__ import annotations

import numpy as np

from ml.project.store import Project

MIN_VAL_IMAGES = 5  # fewer labelled images than this: no val split, validate on train


def labelled_keys(project: Project, source: str = "teacher",
                  labels: dict[str, np.ndarray] | None = None) -> list[str]:
    """Keys of images that have a mask of ``source`` (or an entry in ``labels``)."""
    if labels is not None:
        return [k for k in project.keys() if k in labels]
    if source == "teacher":
        return [k for k in project.keys() if project.record(k).teacher is not None]
    if source == "reviewed":
        return [k for k in project.keys() if project.record(k).reviewed]
    if source == "student":
        return [k for k in project.keys() if project.record(k).student is not None]
    raise ValueError(f"unknown mask source '{source}' (teacher, reviewed, student)")


def split_keys(project: Project, keys: list[str], val_fraction: float = 0.2,
               seed: int = 0, save: bool = True) -> tuple[list[str], list[str]]:
    """(train, val) keys from the project's persisted split, creating and saving one if needed.

    An existing split is kept: its val keys that are still labelled stay in val and every
    other key (new images included) trains. A split is drawn (seeded) when there is none, or
    when the stored one has no val images and there are now at least :data:`MIN_VAL_IMAGES`.
    With fewer labelled images the val list is empty (the trainer validates on train).
    ``save`` False draws the same split without writing it (DDP ranks other than 0).
    """
    stored = project.split.get("val") if project.split else None
    if stored:
        val = [k for k in keys if k in set(stored)]
        return [k for k in keys if k not in set(val)], val
    if stored is not None and len(keys) < MIN_VAL_IMAGES:
        return list(keys), []
    val: list[str] = []
    if len(keys) >= MIN_VAL_IMAGES:
        n_val = min(max(1, round(val_fraction * len(keys))), len(keys) - 1)
        rng = np.random.default_rng(seed)
        picked = set(rng.choice(len(keys), size=n_val, replace=False).tolist())
        val = [k for i, k in enumerate(sorted(keys)) if i in picked]
    if save:
        project.set_split({"seed": int(seed), "val": val})
    return [k for k in keys if k not in set(val)], val
