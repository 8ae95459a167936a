"""Box panels: a fixed, seeded sample of boxes, one row each: photo | teacher | student.

Scores miss what a person sees at once: on the ILIAD drone photos (issue 32) the student
filled the box round a thin streak its teacher traced, and those photos have no masks to score
against. ``make demo``, ``bench/quality.py`` and ``bench/drone_panel.py`` write a panel beside
their tables. Each row is a square window round one box (three times its long side, at least
:data:`MIN_WINDOW` photo pixels), the box drawn in yellow and each mask laid over the photo,
enlarged with nearest-neighbour so its pixels show. numpy and OpenCV only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ml.common.atomic import atomic_write_bytes

CELL = 200  # px of one panel cell
MIN_WINDOW = 48  # photo pixels a row shows at least, round a small box
GROW = 3.0  # a row's window is this many times its box's long side
MASK_RGB = (235, 40, 110)
BOX_RGB = (255, 200, 0)
ALPHA = 0.55
HEADER = 22  # px of the column titles
SAMPLE = 8  # boxes in a panel unless asked
SEED = 0

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class BoxRef:
    """One box of a set: its photo, its place in the photo's box list, and a note to show
    (e.g. the teacher the ``auto`` teacher chose for it)."""

    key: str
    index: int
    box: Box
    note: str = ""


def sample_boxes(refs: Sequence[BoxRef], n: int = SAMPLE, seed: int = SEED) -> list[BoxRef]:
    """``n`` of ``refs`` drawn with ``seed`` (the same set and seed give the same boxes), in
    the order given."""
    if len(refs) <= n:
        return list(refs)
    picked = np.random.default_rng(seed).choice(len(refs), size=n, replace=False)
    return [refs[i] for i in sorted(picked)]


def window(box: Box, shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): a square round ``box`` of :data:`GROW` x its long side (at least
    :data:`MIN_WINDOW`), shifted to lie inside a photo of ``shape`` (h, w) where it fits."""
    h, w = shape
    x0, y0, x1, y1 = box
    side = int(round(max(GROW * max(x1 - x0, y1 - y0), MIN_WINDOW)))
    side = min(side, max(h, w))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = int(round(min(max(cx - side / 2, 0), max(w - side, 0))))
    top = int(round(min(max(cy - side / 2, 0), max(h - side, 0))))
    return left, top, min(left + side, w), min(top + side, h)


def overlay(image: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """RGB ``image`` with ``mask``'s pixels tinted :data:`MASK_RGB` (unchanged for None)."""
    out = image.astype(np.float32)
    if mask is not None:
        sel = mask.astype(bool)
        out[sel] = (1 - ALPHA) * out[sel] + ALPHA * np.array(MASK_RGB, np.float32)
    return out.clip(0, 255).astype(np.uint8)


def render_row(image: np.ndarray, box: Box, masks: Sequence[np.ndarray | None],
               cell: int = CELL) -> np.ndarray:
    """One row: the window round ``box`` as photo, then with each of ``masks`` (bool photo
    masks; None shows the photo alone), each ``cell`` px square with the box drawn."""
    import cv2

    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    x0, y0, x1, y1 = window(box, image.shape[:2])
    f = cell / max(x1 - x0, y1 - y0, 1)
    size = (max(1, round((x1 - x0) * f)), max(1, round((y1 - y0) * f)))
    bx = [round((box[0] - x0) * f), round((box[1] - y0) * f),
          round((box[2] - x0) * f) - 1, round((box[3] - y0) * f) - 1]
    cells = []
    for mask in (None, *masks):
        crop = overlay(image[y0:y1, x0:x1, :3], None if mask is None else mask[y0:y1, x0:x1])
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_NEAREST)
        canvas = np.full((cell, cell, 3), 255, np.uint8)
        canvas[:size[1], :size[0]] = crop
        cv2.rectangle(canvas, (bx[0], bx[1]), (bx[2], bx[3]), BOX_RGB, 2)
        cells.append(canvas)
    return np.concatenate(cells, axis=1)


def _text(img: np.ndarray, text: str, org: tuple[int, int], scale: float = 0.45) -> None:
    import cv2

    for colour, width in (((255, 255, 255), 3), ((0, 0, 0), 1)):  # dark text on a light halo
        cv2.putText(img, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, colour, width, cv2.LINE_AA)


def draw_panel(rows: Sequence[np.ndarray], titles: Sequence[str],
               notes: Sequence[str] = ()) -> np.ndarray:
    """The rows stacked under a strip of column ``titles``, each row's note in its corner."""
    if not rows:
        raise ValueError("a panel needs at least one row")
    width = rows[0].shape[1]
    cell = width // max(len(titles), 1)
    header = np.full((HEADER, width, 3), 255, np.uint8)
    for i, title in enumerate(titles):
        _text(header, title, (i * cell + 4, HEADER - 7))
    out = [header]
    for i, row in enumerate(rows):
        row = row.copy()
        if i < len(notes) and notes[i]:
            _text(row, notes[i], (4, row.shape[0] - 6), 0.4)
        out.append(row)
    return np.concatenate(out, axis=0)


def write_panel(path: str | Path, refs: Sequence[BoxRef],
                load: Callable[[str], tuple[np.ndarray, Sequence[np.ndarray | None]]],
                titles: Sequence[str], cell: int = CELL) -> Path:
    """Write the panel of ``refs`` as a PNG: ``load(key)`` gives a photo (RGB) and its masks,
    one per column after the photo (``titles``: the photo's first). Each photo is loaded once.
    """
    import cv2

    if not refs:
        raise ValueError("no boxes to draw a panel of")
    loaded: dict[str, tuple[np.ndarray, Sequence[np.ndarray | None]]] = {}
    rows, notes = [], []
    for ref in refs:
        if ref.key not in loaded:
            loaded[ref.key] = load(ref.key)
        image, masks = loaded[ref.key]
        rows.append(render_row(image, ref.box, masks, cell))
        notes.append(ref.note)
    panel = draw_panel(rows, titles, notes)
    ok, png = cv2.imencode(".png", cv2.cvtColor(panel, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"could not encode the panel {path}")
    return atomic_write_bytes(path, png.tobytes())


def project_refs(project, keys: Sequence[str] | None = None,
                 notes: dict[tuple[str, int], str] | None = None) -> list[BoxRef]:
    """Every box of ``keys`` (default: all photos) that has both a teacher and a student mask,
    with its note from ``notes`` ((key, box index) -> text)."""
    out = []
    for key in project.keys() if keys is None else keys:
        rec = project.record(key)
        if rec.teacher is None or rec.student is None:
            continue
        for i, b in enumerate(rec.boxes):
            out.append(BoxRef(key, i, (b.x0, b.y0, b.x1, b.y1), (notes or {}).get((key, i), "")))
    return out


def write_project_panel(project, path: str | Path, keys: Sequence[str] | None = None,
                        n: int = SAMPLE, seed: int = SEED,
                        notes: dict[tuple[str, int], str] | None = None,
                        titles: Sequence[str] = ("photo", "teacher", "student")) -> Path:
    """The panel of ``n`` boxes (drawn with ``seed``) of a project's photos with teacher and
    student masks: photo | teacher | student."""
    refs = sample_boxes(project_refs(project, keys, notes), n, seed)

    def load(key: str) -> tuple[np.ndarray, list[np.ndarray | None]]:
        masks = [project.load_mask(key, s) for s in ("teacher", "student")]
        return project.load_image(key), [None if m is None else m > 0 for m in masks]

    return write_panel(path, refs, load, titles)
