"""The review loop, simulated: does deciding proposals in the queue's order teach the student
more than deciding as many in file order?

A set with pixel ground truth is split into untouched test photos (scored only) and a pool.
Round 0: 10 % of the photos are boxed from the ground truth (one box per component), the
teacher turns the boxes into pseudo-masks and a student trains. Each later round, per arm:

* the student predicts the pool (:func:`ml.prediction.batch_predict.predict_project`, which
  stores the proposals), calibrated on the validation photos and the decisions so far as
  soon as it is trained (before round 19 the test rows scored it uncalibrated: every region
  of its mask was a proposal there);
* ``queue`` arm: a simulated reviewer answers the first N proposals of the review queue from
  the ground truth (accept, with the true class, where a proposal comes within 3 px of a
  true defect; reject where not) and boxes the defects missed on the K top "photos to box
  next"; ``photo`` arm (``--arms``): the queue's proposals one photo at a time
  (:func:`by_photo`), and its photos to box; ``file`` arm: the first N proposals and the
  first K unboxed photos in file order;
* a new student trains from scratch on the boxes, accepted and rejected proposals.

After each round: box-free binary IoU and region recall / precision (a region is found when a
proposal comes within 3 px of it; a proposal is right when it comes within 3 px of a true
defect) on the test photos, and the share of the queue's first 100 proposals that are real
defects and of the pool's true defects the whole queue holds. ``missed_taught_background``
counts the true defects on photos only reviewed that no decision touched and the round's
training teaches as background (of ``missed_on_reviewed``, on ``reviewed_only_photos``).
Each row keeps its per-photo (intersection, union) counts, and a second table gives every
arm's round against its round before and the arms against each other, with a 95 % paired
bootstrap interval over the test photos (:mod:`ml.evaluation.paired`): how far a difference
could come from which photos were drawn for the test; another training seed moves it too.

    python bench/review_loop.py --data synthetic [--photos 60] [--rounds 3] [--n 15] [--k 2]
    python bench/review_loop.py --data ../shared/data/crackforest --photos 60 --budget 3m

Writes OUT/review_loop.json and OUT/review_loop.md (OUT: bench/results/review_loop_<set>).
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ml.common.classes import make_classes  # noqa: E402
from ml.common.images import label_file, load_label  # noqa: E402
from ml.evaluation.paired import paired_difference, pooled_iou  # noqa: E402
from ml.findings import decisions as DEC  # noqa: E402
from ml.findings.queue import QueueItem, file_order, photos_to_box, review_queue  # noqa: E402
from ml.prediction.proposals import MATCH_PX, add_to_label, proposals_of  # noqa: E402
from ml.project.regions import boxes_from_mask  # noqa: E402
from ml.project.store import Box, Project  # noqa: E402
from ml.student.config import DEFAULT_TEACHER  # noqa: E402


def by_photo(items: list[QueueItem]) -> list[QueueItem]:
    """``items`` with each photo's proposals together: the photos in the order of their most
    teaching proposal, each photo's own in the queue's order (fewer photos half-decided; tried
    in round 23 and not adopted: docs/RESULTS.md)."""
    first: dict[str, int] = {}
    for i, it in enumerate(items):
        first.setdefault(it.key, i)
    return sorted(items, key=lambda it: first[it.key])


# the order each arm answers proposals in: the review queue's, the queue one photo at a time
# (by_photo), or the project's file order (the baseline)
ARMS = {"queue": lambda proj: review_queue(proj).items,
        "photo": lambda proj: by_photo(review_queue(proj).items),
        "file": file_order}


def gt_of(masks: Path, key: str) -> np.ndarray:
    f = label_file(masks, key)
    if f is None:
        raise FileNotFoundError(f"{masks}: no ground truth for {key}")
    return load_label(f)


def grown(mask: np.ndarray, px: int = MATCH_PX) -> np.ndarray:
    import cv2

    k = 2 * px + 1
    return cv2.dilate(mask.astype(np.uint8),
                      cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))).astype(bool)


def true_regions(gt: np.ndarray, min_area: int) -> list[np.ndarray]:
    import cv2

    n, comp, stats, _ = cv2.connectedComponentsWithStats((gt > 0).astype(np.uint8), 8)
    return [comp == i for i in range(1, n) if stats[i, 4] >= min_area]


def region_scores(pred_masks: list[np.ndarray], gt: np.ndarray, min_area: int
                  ) -> tuple[int, int, int, int]:
    """(true regions found, true regions, predicted regions right, predicted regions)."""
    near_gt = grown(gt > 0)
    right = sum(bool((m & near_gt).any()) for m in pred_masks)
    truths = true_regions(gt, min_area)
    pred_any = grown(np.any(pred_masks, axis=0)) if pred_masks else np.zeros(gt.shape, bool)
    found = sum(bool((t & pred_any).any()) for t in truths)
    return found, len(truths), right, len(pred_masks)


def full_mask(c, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, bool)
    x0, y0, x1, y1 = c.proposal.box
    m[y0:y1, x0:x1] = c.mask
    return m


def evaluate(model_dir: Path, proj: Project, test: list[str], masks: Path, min_area: int
             ) -> dict:
    """Box-free binary IoU and region recall / precision of the proposals on ``test``."""
    from ml.prediction.predict import Predictor
    from ml.prediction.proposal_calibration import model_calibration

    pred = Predictor.from_dir(model_dir, "cpu")
    cal = model_calibration(model_dir)
    per_photo: dict[str, list[int]] = {}
    f = t = r = p = 0
    for k in test:
        gt = gt_of(masks, k)
        res = pred.predict(proj.load_image(k))
        kept = proposals_of(res.label, res.confidence, cal, res.regions, res.defect,
                            res.novelty)
        add_to_label(res.label, kept)  # as b2p predict stores the mask
        a, b = res.label > 0, gt > 0
        per_photo[k] = [int((a & b).sum()), int((a | b).sum())]
        props = [full_mask(c, gt.shape) for c in kept]
        sf, st, sr, sp = region_scores(props, gt, min_area)
        f, t, r, p = f + sf, t + st, r + sr, p + sp
    return {"binary_iou": pooled_iou(per_photo), "region_recall": f / max(t, 1),
            "region_precision": r / p if p else None, "proposals": p, "true_regions": t,
            "per_photo": per_photo}


def comparisons(rows: list[dict]) -> list[dict]:
    """Each arm's round against its round before, and the first arm against each other arm at
    every round after 0: the pooled IoU difference with its paired bootstrap interval over the
    test photos (:func:`ml.evaluation.paired.paired_difference`)."""
    at = {(r["round"], r["arm"]): r for r in rows if r.get("per_photo")}
    arms = list(dict.fromkeys(r["arm"] for r in rows))
    out = []

    def add(what: str, before: dict, after: dict) -> None:
        d = paired_difference(before["per_photo"], after["per_photo"])
        out.append({"comparison": what, **asdict(d), "clear": d.clear, "text": d.text()})

    for (rnd, arm), row in sorted(at.items()):
        if rnd > 0 and (rnd - 1, arm) in at:
            add(f"{arm}: round {rnd} - round {rnd - 1}", at[(rnd - 1, arm)], row)
    for rnd in sorted({r for r, _ in at if r > 0}):
        for other in arms[1:]:
            if (rnd, arms[0]) in at and (rnd, other) in at:
                add(f"round {rnd}: {arms[0]} - {other}", at[(rnd, other)], at[(rnd, arms[0])])
    return out


def queue_quality(proj: Project, masks: Path, min_area: int) -> dict:
    """Share of the queue's first 100 that are real, and of the pool's defects it holds."""
    from ml.prediction.proposals import proposal_mask

    q = review_queue(proj).items
    real = []
    for it in q[:100]:
        gt = gt_of(masks, it.key)
        m = np.zeros(gt.shape, bool)
        x0, y0, x1, y1 = it.proposal.box
        m[y0:y1, x0:x1] = proposal_mask(proj, it.key, it.proposal)
        real.append(bool((m & grown(gt > 0)).any()))
    held = total = 0
    by_key: dict[str, list] = {}
    for it in q:
        by_key.setdefault(it.key, []).append(it.proposal.box)
    for k in proj.keys():
        if proj.record(k).findings.get("proposals") is None or DEC.person_boxed(proj, k):
            continue
        gt = gt_of(masks, k)
        for tr in true_regions(gt, min_area):
            total += 1
            held += any(tr[max(y0 - MATCH_PX, 0):y1 + MATCH_PX,
                           max(x0 - MATCH_PX, 0):x1 + MATCH_PX].any()
                        for x0, y0, x1, y1 in by_key.get(k, []))
    return {"queue_first100_real": float(np.mean(real)) if real else None,
            "queue_holds_true": held / max(total, 1), "queue_length": len(q)}


def taught_background(proj: Project, masks: Path, min_area: int) -> dict:
    """On the photos only reviewed, the true defects no decision touched, and how many of them
    the round's training targets teach as background (most of their pixels 0): the price of a
    reviewed photo's background (:func:`ml.findings.decisions.reviewed_background`)."""
    from ml.common.classes import IGNORE

    photos = missed = taught = 0
    for k in DEC.decided_keys(proj):
        if DEC.person_boxed(proj, k):
            continue
        photos += 1
        gt = gt_of(masks, k)
        target = DEC.training_target(proj, k, None, gt.shape)
        decided = np.zeros(gt.shape, bool)
        for d in DEC.decisions(proj, k).values():
            x0, y0, x1, y1 = d.box
            decided[y0:y1, x0:x1] = True
        for tr in true_regions(gt, min_area):
            if (tr & decided).any():
                continue
            missed += 1
            seen = target[tr] != IGNORE
            taught += bool(seen.any()) and float((target[tr] == 0).mean()) >= 0.5
    return {"reviewed_only_photos": photos, "missed_on_reviewed": missed,
            "missed_taught_background": taught}


def box_photo(proj: Project, key: str, masks: Path, pad: int, min_area: int) -> int:
    """Box the true defects of ``key`` not yet inside a box (the reviewer draws them)."""
    gt = gt_of(masks, key)
    have = proj.record(key).boxes
    new = []
    for b in boxes_from_mask(gt, pad=pad, by_class=True, min_area=min_area):
        cx, cy = (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2
        if not any(h.x0 <= cx <= h.x1 and h.y0 <= cy <= h.y1 for h in have):
            new.append(Box(b.x0, b.y0, b.x1, b.y1, b.cls, "manual"))
    proj.set_boxes(key, list(have) + new)
    proj.update(key, all_defects_boxed=True)
    return len(new)


def answer(proj: Project, item, masks: Path) -> str:
    """The simulated reviewer's decision about one queue item, from the ground truth."""
    from ml.prediction.proposals import proposal_mask

    gt = gt_of(masks, item.key)
    x0, y0, x1, y1 = item.proposal.box
    m = proposal_mask(proj, item.key, item.proposal)
    near = grown(gt > 0)[y0:y1, x0:x1]
    if not (m & near).any():
        DEC.decide(proj, item.key, item.proposal.id, DEC.REJECTED, by="sim")
        return DEC.REJECTED
    vals = gt[grown(m_full(m, item.proposal.box, gt.shape)) & (gt > 0)]
    cls = int(np.bincount(vals).argmax())
    DEC.decide(proj, item.key, item.proposal.id, DEC.ACCEPTED, cls=cls, by="sim")
    return DEC.ACCEPTED


def m_full(m: np.ndarray, box: tuple[int, ...], shape: tuple[int, int]) -> np.ndarray:
    out = np.zeros(shape, bool)
    out[box[1]:box[3], box[0]:box[2]] = m
    return out


def train(proj: Project, out: Path, a: argparse.Namespace, names: list[str]) -> Path:
    from ml.student.config import StudentConfig, TrainConfig
    from ml.training.trainer import train as fit

    s = StudentConfig(num_classes=len(names), input_size=a.input_size, mode="frozen",
                      backbone_weights=a.backbone_weights)
    t = TrainConfig(epochs=a.epochs, batch_size=4, crop=0, patience=a.epochs, device="cpu",
                    seed=a.seed)
    if a.budget:  # the one-click path: the planner fits input size and epochs to the budget
        from ml.training.budget import parse_budget, plan_project

        s, t = plan_project(proj, StudentConfig(num_classes=len(names),
                                                backbone_weights=a.backbone_weights),
                            TrainConfig(device="cpu", seed=a.seed), parse_budget(a.budget))
        print(f"  planned: {t.budget_plan.get('input_size')} px, {t.epochs} epochs",
              flush=True)
    if out.exists():
        shutil.rmtree(out)
    return Path(fit(proj, out, s, t).out_dir)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", default="synthetic", help="'synthetic' or a folder with "
                                                        "images/ and masks/")
    ap.add_argument("--photos", type=int, default=60, help="photos used (the first N)")
    ap.add_argument("--size", type=int, default=256, help="synthetic photo size")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n", type=int, default=15, help="proposals answered per round")
    ap.add_argument("--k", type=int, default=2, help="photos boxed per round")
    ap.add_argument("--budget", help="train each student as `b2p train --budget` does "
                                     "(e.g. 3m; overrides --epochs and --input-size)")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--backbone-weights", default="offline")
    ap.add_argument("--teacher", default=DEFAULT_TEACHER)
    ap.add_argument("--test-fraction", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pad", type=int, default=2)
    ap.add_argument("--arms", default="queue,file",
                    help="orders compared, of " + ", ".join(ARMS) + " (queue,file)")
    ap.add_argument("--out", type=Path)
    a = ap.parse_args(argv)
    arm_names = [x.strip() for x in a.arms.split(",") if x.strip()]
    if not arm_names or any(x not in ARMS for x in arm_names):
        ap.error(f"--arms takes some of {', '.join(ARMS)}, got {a.arms!r}")
    t_start = time.monotonic()

    if a.data == "synthetic":
        from ml.datasets.synthetic import write_dataset

        data = Path("/tmp") / f"b2p_review_synth_{a.photos}_{a.size}_{a.seed}"
        if not (data / "dataset.json").exists():
            write_dataset(data, a.photos, a.size, a.seed)
        name = "synthetic"
    else:
        data, name = Path(a.data), Path(a.data).name
    names = json.loads((data / "dataset.json").read_text())["classes"]
    masks = data / "masks"
    out = a.out or ROOT / "bench" / "results" / f"review_loop_{name}"
    work = out / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)

    base = Project.create(work / f"arm_{arm_names[0]}", data / "images", make_classes(names[1:]))
    keys = sorted(base.keys())[: a.photos]
    rng = np.random.default_rng(a.seed)
    order = list(rng.permutation(len(keys)))
    n_test = max(1, round(a.test_fraction * len(keys)))
    test = sorted(keys[i] for i in order[:n_test])
    pool = [k for k in keys if k not in set(test)]
    n_box = max(2, round(0.1 * len(keys)))
    boxed0 = sorted(keys[i] for i in order[n_test:n_test + n_box])
    base.remove_images([k for k in base.keys() if k not in set(keys)])
    h, w = gt_of(masks, keys[0]).shape
    min_area = max(12, round(3e-4 * h * w))

    from ml.teachers import make_teacher
    from ml.teachers.pseudo_label import pseudo_label_project

    for k in boxed0:
        box_photo(base, k, masks, a.pad, min_area)
    pseudo_label_project(base, make_teacher(a.teacher), keys=boxed0)
    for arm in arm_names[1:]:
        shutil.copytree(work / f"arm_{arm_names[0]}", work / f"arm_{arm}")
    arms = {arm: Project.open(work / f"arm_{arm}") for arm in arm_names}
    lead = arms[arm_names[0]]
    print(f"{name}: {len(keys)} photos, {len(test)} test, round 0 boxes {len(boxed0)}",
          flush=True)
    model0 = train(lead, work / "model_r0", a, names)
    # every arm validates on the photos model 0 validated on: the same calibration of model
    # 0, and later students' splits that differ only by what each arm added
    for proj in arms.values():
        if proj is not lead:
            proj.set_split(lead.split)
    calibrate(lead, model0)
    first = evaluate(model0, lead, test, masks, min_area)
    rows = [{"round": 0, "arm": arm, "decisions": 0, "boxed_photos": len(boxed0),
             "student": _plan(model0), **first} for arm in arms]
    print(_line(rows[0]), flush=True)
    models = {arm: model0 for arm in arms}
    decided = {arm: 0 for arm in arms}
    boxed = {arm: len(boxed0) for arm in arms}
    for r in range(1, a.rounds + 1):
        for arm, proj in arms.items():
            from ml.prediction.batch_predict import predict_project

            unboxed = [k for k in pool if not DEC.person_boxed(proj, k)]
            predict_project(proj, models[arm], keys=unboxed, device="cpu",
                            keep_previous=False)
            qq = queue_quality(proj, masks, min_area)
            items = ARMS[arm](proj)[: a.n]
            answers = [answer(proj, it, masks) for it in items]
            decided[arm] += len(answers)
            to_box = ([k for k, _ in photos_to_box(proj, a.k)] if arm != "file"
                      else [k for k in pool if not DEC.person_boxed(proj, k)][: a.k])
            for k in to_box:
                box_photo(proj, k, masks, a.pad, min_area)
            pseudo_label_project(proj, make_teacher(a.teacher), keys=to_box)
            boxed[arm] += len(to_box)
            taught = taught_background(proj, masks, min_area)  # what this round trains on
            models[arm] = train(proj, work / f"model_{arm}_r{r}", a, names)
            calibrate(proj, models[arm])
            row = {"round": r, "arm": arm, "decisions": decided[arm], "boxed_photos": boxed[arm],
                   "student": _plan(models[arm]),
                   "accepted": answers.count(DEC.ACCEPTED),
                   "rejected": answers.count(DEC.REJECTED), **qq, **taught,
                   **evaluate(models[arm], proj, test, masks, min_area)}
            rows.append(row)
            print(_line(row), flush=True)
    result = {"dataset": name, "photos": len(keys), "test": len(test), "pool": len(pool),
              "settings": vars(a) | {"data": str(a.data), "out": str(out)},
              "machine": platform.platform(), "seconds": round(time.monotonic() - t_start),
              "rows": rows, "comparisons": comparisons(rows)}
    (out / "review_loop.json").write_text(json.dumps(result, indent=1, default=str))
    (out / "review_loop.md").write_text(markdown(result))
    print(markdown(result))
    return 0


def calibrate(proj: Project, model_dir: Path) -> None:
    """Calibrate a new student's proposals on the validation photos and the decisions so far,
    before it is scored: the test rows count the proposals a person would be shown."""
    from ml.prediction.proposal_calibration import calibrate_model

    calibrate_model(proj, model_dir, decided=DEC.calibration_examples(proj))


def _line(row: dict) -> str:
    """A row as one JSON line for the log, without its per-photo counts."""
    return json.dumps({k: v for k, v in row.items() if k != "per_photo"})


def _plan(model_dir: Path) -> str:
    """The student's input size and epochs, as trained."""
    card = json.loads((model_dir / "config.json").read_text())
    return f"{card['student']['input_size']} px, {card['train']['epochs']} ep"


def _training(settings: dict) -> str:
    if settings.get("budget"):
        return f"`--budget {settings['budget']}`, teacher `{settings['teacher']}`"
    return (f"{settings['epochs']} epochs at {settings['input_size']} px, "
            f"teacher `{settings['teacher']}`")


def _f(v: object) -> str:
    return "" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def markdown(result: dict) -> str:
    cols = ["round", "arm", "decisions", "boxed_photos", "student", "binary_iou", "region_recall",
            "region_precision", "proposals", "queue_first100_real", "queue_holds_true",
            "missed_taught_background"]
    lines = [f"Review loop on {result['dataset']} ({result['photos']} photos, "
             f"{result['test']} untouched test photos; students: "
             f"{_training(result['settings'])}; {result['seconds']} s in all)",
             "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(_f(r.get(c)) for c in cols) + " |" for r in result["rows"]]
    if result.get("comparisons"):
        lines += ["", "Differences of box-free binary IoU, in points, with a 95 % paired bootstrap "
                  "interval over the test photos (which photos were drawn for the test, not "
                  "another training seed):", "",
                  "| comparison | difference (interval) | interval leaves out 0 |", "|---|---|---|"]
        lines += [f"| {c['comparison']} | {c['text']} | {'yes' if c['clear'] else 'no'} |"
                  for c in result["comparisons"]]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
