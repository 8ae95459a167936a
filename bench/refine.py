r"""Post-processing of the student's probabilities that did not hold up: re-scored on a saved run.

    python bench/refine.py bench/results/magnetic_tile_cpu_round5 \
        --data ../shared/data/magnetic_tile --model auto_b2p

Reads a `bench/quality.py` run (OUT/split.json and OUT/work/: the project with its boxes and
the saved models), predicts photos once with MODEL and scores the student alone (tight box
rule, no teacher fallback) after each variant below, on the held-out photos and on every
other training photo. The training photos' ground-truth masks were never used to train, so a
variant that only helps on the held-out photos is luck, not a method. Writes
OUT/refine_MODEL.md.

Variants (none is in the product; this is the record of why):

* ``guided filter``: the defect score filtered with the grey photo as guide (He et al., 2010),
  radius one output stride of the student;
* ``intensity model``: per box, grey-level histograms of defect and background weighted by the
  student's score; the score becomes the geometric mean of the student's and that model's;
* ``intensity model, trusted by d'``: the same model, given a share of the score that grows
  with how well its two grey-level distributions separate in the box (d'^2 / (1 + d'^2) / 2,
  d' the distance of their means in pooled standard deviations), so a textured box keeps the
  student's score;
* ``otsu``: the tight rule's threshold lowered to the Otsu split of the box's scores;
* ``flip``: the mean of the photo's and its mirror's probabilities;
* ``x1.5``: the photo predicted at 1.5x its size, probabilities scaled back.
"""

from __future__ import annotations

import json
import math
import platform
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import ROOT, command_line, dataset_classes, run_parser, score_labels  # noqa: E402

sys.path.insert(0, str(ROOT))
from ml.prediction import box_decode  # noqa: E402
from ml.prediction.box_constraint import BoxConstraint  # noqa: E402
from ml.project.records import boxes_to_arrays  # noqa: E402
from ml.project.store import Project  # noqa: E402

Probs = np.ndarray  # (C, H, W) float32


def _with_defect(probs: Probs, defect: np.ndarray) -> Probs:
    """``probs`` with its defect mass (1 - p(background)) replaced, class shares kept."""
    old = 1.0 - probs[0]
    out = probs.copy()
    out[1:] *= np.where(old > 1e-6, defect / np.maximum(old, 1e-6), 0.0)[None]
    out[0] = 1.0 - defect
    return out


def guided_filter(guide: np.ndarray, src: np.ndarray, r: int, eps: float) -> np.ndarray:
    """He et al.'s grey-guide filter with box windows of radius ``r``."""
    def mean(a: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(a, -1, (2 * r + 1, 2 * r + 1), borderType=cv2.BORDER_REFLECT)

    mi, ms = mean(guide), mean(src)
    a = (mean(guide * src) - mi * ms) / (mean(guide * guide) - mi * mi + eps)
    b = ms - a * mi
    return np.clip(mean(a) * guide + mean(b), 0.0, 1.0)


def _grey(img: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)


def _stride(img: np.ndarray, tile: int) -> float:
    """Photo pixels per cell of the student's 1/4-resolution output."""
    return 4 * max(img.shape[:2]) / tile


def v_guided(pred, img, probs, boxes) -> Probs:
    g = _grey(img).astype(np.float32) / 255
    r = max(1, round(_stride(img, pred.tile)))
    return _with_defect(probs, guided_filter(g, (1 - probs[0]).astype(np.float32), r, 1e-3))


def v_intensity(pred, img, probs, boxes, bins: int = 32, trust: bool = False) -> Probs:
    h, w = img.shape[:2]
    q = _grey(img).astype(np.int64) * bins // 256
    d = (1.0 - probs[0]).astype(np.float64)
    out = d.copy()
    ring = _stride(img, pred.tile)  # background samples from one output cell around the box
    for x0, y0, x1, y1 in boxes:
        ys = slice(max(0, math.floor(y0 - ring)), min(h, math.ceil(y1 + ring)))
        xs = slice(max(0, math.floor(x0 - ring)), min(w, math.ceil(x1 + ring)))
        dd, qq = d[ys, xs], q[ys, xs]
        inbox = np.zeros(dd.shape, bool)
        inbox[max(0, math.floor(y0) - ys.start):math.ceil(y1) - ys.start,
              max(0, math.floor(x0) - xs.start):math.ceil(x1) - xs.start] = True
        wf, wb = (dd * inbox).ravel(), (1 - dd).ravel()
        hf = np.bincount(qq.ravel(), wf, bins) + 1e-3
        hb = np.bincount(qq.ravel(), wb, bins) + 1e-3
        pf = wf.sum() / max(wf.sum() + wb.sum(), 1e-9)
        c = (pf * hf / hf.sum() / (pf * hf / hf.sum() + (1 - pf) * hb / hb.sum()))[qq]
        # the model's share of the score: 1/2 (geometric mean), or d'^2 / (1 + d'^2) / 2
        share = 0.5 * (_separation(qq.ravel(), wf, wb) if trust else 1.0)
        out[ys, xs] = np.where(inbox, dd ** (1 - share) * c ** share, out[ys, xs])
    return _with_defect(probs, out.astype(np.float32))


def _separation(g: np.ndarray, wf: np.ndarray, wb: np.ndarray) -> float:
    """d'^2 / (1 + d'^2) of grey levels ``g`` weighted as defect ``wf`` and background ``wb``:
    0 where the two overlap, towards 1 where they separate."""
    def moments(wt: np.ndarray) -> tuple[float, float]:
        m = float((wt * g).sum() / max(wt.sum(), 1e-9))
        return m, float((wt * (g - m) ** 2).sum() / max(wt.sum(), 1e-9))

    (mf, vf), (mb, vb) = moments(wf), moments(wb)
    d2 = (mf - mb) ** 2 / ((vf + vb) / 2 + 1e-9)
    return d2 / (1 + d2)


def v_flip(pred, img, probs, boxes) -> Probs:
    mirror = pred.probabilities(np.ascontiguousarray(img[:, ::-1]))[:, :, ::-1]
    return (probs + mirror) / 2


def v_upscaled(pred, img, probs, boxes, f: float = 1.5) -> Probs:
    h, w = img.shape[:2]
    big = cv2.resize(img, (round(w * f), round(h * f)), interpolation=cv2.INTER_CUBIC)
    p = pred.probabilities(big)
    return np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_AREA) for c in p])


def otsu_fraction(values: np.ndarray, bins: int = 64) -> float:
    """Otsu's threshold of ``values`` in [0, 1]."""
    hist, edges = np.histogram(values, bins=bins, range=(0, 1))
    hist = hist.astype(np.float64)
    mid = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * mid)
    with np.errstate(divide="ignore", invalid="ignore"):
        between = np.nan_to_num(w0 * w1 * (m0 / w0 - (m0[-1] - m0) / w1) ** 2)
    return float(edges[int(np.argmax(between)) + 1])


def tight_or_otsu(score: np.ndarray, inner=None, coverage: float = box_decode.COVERAGE):
    """The tight rule's mask, grown to the Otsu split of the box's scores where that is lower."""
    peak = float(score.max()) if score.size else 0.0
    if peak <= 0.0:
        return np.zeros(score.shape, bool)
    box = score[inner] if inner is not None else score
    box = box if box.size else score
    f = box_decode.tight_fraction(box, peak, coverage)
    return score >= min(f, otsu_fraction(box.ravel() / peak)) * peak


class OtsuConstraint(BoxConstraint):
    """The tight rule, grown to each box's Otsu split (:func:`tight_or_otsu`)."""

    def box_mask(self, score: np.ndarray, inner: tuple[slice, slice]) -> np.ndarray:
        return tight_or_otsu(score, inner)


VARIANTS: dict[str, Callable | None] = {
    "tight (product)": None, "guided filter": v_guided, "intensity model": v_intensity,
    "intensity model, trusted by d'": partial(v_intensity, trust=True),
    "otsu": None, "flip": v_flip, "x1.5": v_upscaled}


def score_variants(pred, proj: Project, keys: list[str], masks_dir: Path, names: list[str]
                   ) -> dict[str, dict]:
    """{variant: scores} of the student alone on ``keys``."""
    labels: dict[str, dict[str, np.ndarray]] = {v: {} for v in VARIANTS}
    for k in keys:
        img = proj.load_image(k)
        boxes, cls = boxes_to_arrays(proj.record(k).boxes)
        probs = pred.probabilities(img)
        for name, fn in VARIANTS.items():
            p = fn(pred, img, probs, boxes) if fn is not None else probs
            if name == "otsu":  # the box rule itself changes
                bc = OtsuConstraint(boxes, cls, pred.box_pad, *p.shape[1:], "tight")
                labels[name][k] = bc.band(0, p)
                bc.finish(labels[name][k])
            else:
                labels[name][k] = pred.constrain(p, boxes, None, cls, False)[0]
    return {v: score_labels(lab, masks_dir, names) for v, lab in labels.items()}


def main(argv: list[str] | None = None) -> int:
    ap = run_parser(__doc__)
    ap.add_argument("--model", required=True, help="a folder name under RUN/work/models")
    a = ap.parse_args(argv)
    from ml.prediction.predict import Predictor

    t0 = time.monotonic()
    split = json.loads((a.run / "split.json").read_text())
    proj = Project.open(a.run / "work" / "project")
    pred = Predictor.from_dir(a.run / "work" / "models" / a.model, device="cpu")
    names = dataset_classes(a.data)
    parts = {"held-out": split["test"], "training (every other)": sorted(split["train"])[::2]}
    result = {p: score_variants(pred, proj, keys, a.data / "masks", names)
              for p, keys in parts.items()}
    lines = [f"### {a.run.name}, model {a.model}: post-processing variants (binary IoU)", "",
             "Student alone, tight box rule, no teacher fallback. Training photos: the student "
             "saw their teacher masks, never their ground truth.", "",
             "| variant | " + " | ".join(f"{p} ({len(k)})" for p, k in parts.items()) + " |",
             "|---|" + "---|" * len(parts)]
    for v in VARIANTS:
        lines.append(f"| {v} | " + " | ".join(f"{result[p][v]['binary_iou']:.3f}"
                                               for p in parts) + " |")
    lines += ["", f"Command: `{command_line('refine.py', argv)}` "
              f"({time.monotonic() - t0:.0f} s, {platform.machine()})"]
    text = "\n".join(lines) + "\n"
    (a.run / f"refine_{a.model}.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
