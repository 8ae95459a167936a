"""How well ``auto`` chooses: its per-box pick against each fixed candidate and the best pick.

Boxes come from the ground-truth masks' connected components (padded), as in
``bench/quality.py``. ``auto`` first surveys the project as ``b2p pseudo-label`` does (each
class thin or region; ``--no-survey``: every box decides alone), then labels every photo and
keeps what it weighed per box (:class:`ml.teachers.auto.BoxChoice`); each candidate's mask
is then scored inside its box against the ground truth. Rows, binary IoU summed over the
pixels of every box:

* ``auto``: the candidate ``auto`` picked (its mask before hole filling and painting);
* ``always NAME``: one candidate everywhere (where it left a box under 2 % covered, nothing);
* ``best per box``: the picks, one per box, that give the highest IoU overall; they need the
  truth: the ceiling of any rule that picks among these candidates.

    python bench/auto_choice.py --data DIR [--limit N] [--pad 2] [--out FILE.md]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # quality puts the project on the path

from quality import (  # noqa: E402
    boxed_keys,
    command_line,
    dataset_classes,
    dataset_name,
    ground_truth,
    make_project,
    show_table,
)

from ml.common.classes import IGNORE  # noqa: E402
from ml.project.store import boxes_to_arrays  # noqa: E402
from ml.teachers.auto import AutoTeacher, BoxChoice  # noqa: E402
from ml.teachers.pseudo_label import survey_photos  # noqa: E402


def box_counts(weighed: BoxChoice, truth: np.ndarray) -> dict[str, tuple[int, int]]:
    """(intersection, union) with ``truth`` (the photo's bool mask) inside the box, per candidate
    (an absent candidate counts as an empty mask under the name ``""``)."""
    x0, y0, x1, y1 = weighed.window
    bx0, by0, bx1, by1 = weighed.box
    inside = (slice(by0 - y0, by1 - y0), slice(bx0 - x0, bx1 - x0))
    g = truth[by0:by1, bx0:bx1]
    out = {"": (0, int(g.sum()))}
    for name, mask in weighed.masks.items():
        m = mask[inside]
        out[name] = (int((m & g).sum()), int((m | g).sum()))
    return out


def summarise(per_box: list[tuple[dict[str, tuple[int, int]], str]]) -> dict:
    """Rows of the table and the pick counts, from each box's counts and ``auto``'s pick."""
    names = sorted({n for counts, _ in per_box for n in counts if n})

    def iou(pick) -> float:
        inter = union = 0
        for counts, choice in per_box:
            i, u = counts.get(pick(counts, choice), counts[""])
            inter, union = inter + i, union + u
        return inter / max(union, 1)

    # The picks that maximise the summed IoU (Dinkelbach's iteration for a ratio: pick
    # argmax I - lam * U per box, set lam to the IoU this gives, repeat until it stops rising).
    lam = 0.0

    def best(counts: dict, _choice: str) -> str:
        return max((n for n in counts if n), key=lambda n: counts[n][0] - lam * counts[n][1])

    for _ in range(50):
        new_lam = iou(best)
        if new_lam <= lam + 1e-9:
            break
        lam = new_lam
    rows = {"auto": iou(lambda _c, choice: choice)}
    rows.update({f"always {n}": iou(lambda _c, _ch, n=n: n) for n in names})
    rows["best per box"] = iou(best)
    return {"rows": rows, "auto_picks": Counter(ch for _, ch in per_box),
            "best_picks": Counter(best(c, ch) for c, ch in per_box),
            "auto_vs_best": Counter((ch, best(c, ch)) for c, ch in per_box)}


def markdown(dataset: str, n_photos: int, s: dict, command: str, seconds: float) -> str:
    lines = [f"## {dataset}: how `auto` chooses ({n_photos} photos, "
             f"{sum(s['auto_picks'].values())} boxes)", "", f"`{command}` ({seconds:.0f} s)", "",
             "| rule | binary IoU inside the boxes |", "|---|---|"]
    lines += [f"| {name} | {v:.3f} |" for name, v in s["rows"].items()]
    lines += ["", "| candidate | `auto` picks it | best in the box |", "|---|---|---|"]
    names = sorted(set(s["auto_picks"]) | set(s["best_picks"]))
    lines += [f"| {n} | {s['auto_picks'][n]} | {s['best_picks'][n]} |" for n in names]
    wrong = [(k, v) for k, v in s["auto_vs_best"].most_common() if k[0] != k[1]][:5]
    if wrong:
        lines += ["", "Most frequent wrong picks (auto's pick -> best): " +
                  ", ".join(f"{a} -> {b} ({v})" for (a, b), v in wrong)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=0, help="first N photos only (0: all)")
    ap.add_argument("--pad", type=int, default=2, help="pixels around ground-truth boxes")
    ap.add_argument("--out", type=Path, help="also write the table here")
    ap.add_argument("--no-survey", action="store_true",
                    help="no survey of the project: each box decides its kind alone")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    names = dataset_classes(a.data)
    dataset = dataset_name(a.data)
    teacher = AutoTeacher(record=True)
    per_box: list[tuple[dict, str]] = []
    with tempfile.TemporaryDirectory() as tmp:
        proj = make_project(Path(tmp), a.data, names, a.pad)
        keys = boxed_keys(proj, a.limit)
        truths = ground_truth(a.data / "masks", keys)
        kinds = {} if a.no_survey else teacher.survey(survey_photos(proj))
        for i, key in enumerate(keys):
            teacher.set_image(proj.load_image(key))
            teacher.predict(*boxes_to_arrays(proj.record(key).boxes))
            truth = (truths[key] > 0) & (truths[key] != IGNORE)
            per_box += [(box_counts(w, truth), w.choice) for w in teacher.weighed]
            print(f"\r  {i + 1}/{len(keys)} photos", end="", flush=True)
    print()
    md = markdown(dataset, len(keys), summarise(per_box), command_line("auto_choice.py", argv),
                  time.monotonic() - t0)
    named = {c: names[c] if c < len(names) else str(c) for c in kinds}
    md += ("\nClass kinds from the survey: " + ", ".join(f"{named[c]} {k}" for c, k in
                                                       kinds.items()) + "\n") if kinds else ""
    return show_table(md, a.out)


if __name__ == "__main__":
    raise SystemExit(main())
