"""Re-score the models a `bench/quality.py` run saved, with today's box rules, no retraining.

    python bench/rescore.py bench/results/crackforest_cpu_round3 --data ../shared/data/crackforest

Reads OUT/quality.json (its rows and split) and OUT/work/ (the project with the same boxes and
the trained models), predicts the held-out photos once per model and scores the student alone
(box-constrained, no teacher fallback) under each box rule of :mod:`ml.prediction.box_decode`.
Teacher rows and box fill are copied from the run, since they do not depend on the student. Writes
OUT/rescored.json and OUT/rescored.md.

``--box-pad 0,4`` scores each model once per pad (how far a mask may reach past its box;
:data:`ml.prediction.box_constraint.BOX_PAD` unless told) and writes OUT/rescored_pad.{json,md};
``--models DIR ...`` scores those model folders instead of the run's rows, on the run's
project and split (a run of the same split that kept no project, e.g. ``--rows`` runs).
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import (  # noqa: E402
    METRICS,
    ROOT,
    command_line,
    dataset_classes,
    run_parser,
    score_labels,
)

sys.path.insert(0, str(ROOT))
from ml.prediction.box_decode import BOX_RULES  # noqa: E402
from ml.project.records import boxes_to_arrays  # noqa: E402
from ml.project.store import Project  # noqa: E402


def model_dir(work: Path, row: dict) -> Path:
    """Where quality.py saved the model of ``row`` (its own naming rule)."""
    tag = row["name"].replace(" ", "_").replace("+", "p")
    return work / "models" / (tag if row.get("teacher") is None else f"{row['teacher']}_{tag}")


def rescore(model: Path, proj: Project, test: list[str], masks_dir: Path,
            names: list[str], pads: tuple[int | None, ...] = (None,),
            rules: tuple[str, ...] = BOX_RULES) -> dict:
    """Scores of the student alone per box rule and pad: {(rule, pad): {metric: value}}.

    A pad of None is the Predictor's default.
    """
    from ml.prediction.predict import Predictor

    pred = Predictor.from_dir(model, device="cpu")
    default = pred.box_pad
    out: dict[tuple, dict[str, np.ndarray]] = {(r, p): {} for r in rules for p in pads}
    for k in test:
        xyxy, cls = boxes_to_arrays(proj.record(k).boxes)
        probs = pred.probabilities(proj.load_image(k))
        for rule, pad in out:
            pred.box_pad = default if pad is None else pad
            out[rule, pad][k], _ = pred.constrain(probs, xyxy, None, cls, False, rule=rule)
    return {key: score_labels(labels, masks_dir, names) for key, labels in out.items()}


def markdown(result: dict) -> str:
    cols = ["name", "teacher", "mode", "round-3 binary_iou"]
    cols += [f"{r} {m}" for r in BOX_RULES for m in ("binary_iou", "anomaly_miou")]
    cols += ["tight binary_recall", "tight binary_precision"]
    lines = [f"### {result['dataset']}: saved models re-scored with today's box rules "
             f"(held-out {result['test']} photos)", "",
             "Student alone (box-constrained, no teacher fallback). `round-3 binary_iou` is the "
             "run's own figure; `tight` is the default box rule now, `posterior` the 0.5 rule "
             "of the run (the two should agree on it). Teacher rows are the run's.", "",
             "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in result["rows"]:
        cells = [str(r.get(c) if r.get(c) is not None else "–") for c in cols[:3]]
        for c in cols[3:]:
            v = r.get(c)
            cells.append("–" if v is None else f"{v:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"Run: `{result['run_command']}`", f"Machine: {result['machine']}",
              f"Command: `{result['command']}` ({result['seconds']:.0f} s)"]
    return "\n".join(lines) + "\n"


def pad_markdown(result: dict) -> str:
    """The ``--box-pad`` table: the tight rule's figures per model and pad."""
    pads = result["pads"]
    cols = ["model"] + [f"pad {p} {m}" for p in pads
                        for m in ("binary_iou", "binary_recall", "binary_precision")]
    lines = [f"### {result['dataset']}: the student alone per box pad, tight rule (held-out "
             f"{result['test']} photos)", "", "| " + " | ".join(cols) + " |",
             "|" + "---|" * len(cols)]
    for r in result["rows"]:
        lines.append("| " + " | ".join([r["model"]] + [f"{r[c]:.3f}" for c in cols[1:]]) + " |")
    lines += ["", f"Machine: {result['machine']}",
              f"Command: `{result['command']}` ({result['seconds']:.0f} s)"]
    return "\n".join(lines) + "\n"


def by_pad(a, q: dict, test: list[str], names: list[str], proj: Project, t0: float,
           argv) -> int:
    """``--box-pad``: every model under each pad (tight rule), to rescored_pad.{json,md}."""
    models = a.models or [model_dir(a.run / "work", r) for r in q["rows"]
                          if r["name"] not in ("box fill", "teacher")]
    rows = []
    for m in models:
        if not m.is_dir():
            print(f"  no saved model at {m}")
            continue
        scores = rescore(m, proj, test, a.data / "masks", names, tuple(a.box_pad), ("tight",))
        row = {"model": f"{m.parent.parent.parent.name}/{m.name}"}
        for p in a.box_pad:
            row.update({f"pad {p} {k}": v for k, v in scores["tight", p].items()})
        print("  " + row["model"] + ": " + ", ".join(
            f"pad {p} {row[f'pad {p} binary_iou']:.3f}" for p in a.box_pad), flush=True)
        rows.append(row)
    return write(a.run / "rescored_pad", {"dataset": q["dataset"], "test": len(test),
                                          "pads": a.box_pad, "rows": rows}, pad_markdown,
                 argv, t0)


def write(stem: Path, result: dict, to_markdown, argv, t0: float) -> int:
    """Add the machine, command and time to ``result``; write STEM.json and STEM.md; print."""
    result = {**result, "machine": f"{platform.machine()} {__import__('os').cpu_count()} cpus",
              "command": command_line("rescore.py", argv),
              "seconds": round(time.monotonic() - t0, 1)}
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    md = to_markdown(result)
    stem.with_suffix(".md").write_text(md)
    print(md)
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = run_parser(__doc__)
    ap.add_argument("--box-pad", type=lambda v: [int(x) for x in v.split(",")],
                    metavar="PX[,PX...]", help="score each model per pad (tight rule)")
    ap.add_argument("--models", type=Path, nargs="+", metavar="DIR",
                    help="with --box-pad: these model folders instead of the run's rows")
    a = ap.parse_args(argv)
    t0 = time.monotonic()
    q = json.loads((a.run / "quality.json").read_text())
    test = json.loads((a.run / "split.json").read_text())["test"]
    names = dataset_classes(a.data)
    proj = Project.open(a.run / "work" / "project")
    if a.box_pad:
        return by_pad(a, q, test, names, proj, t0, argv)
    if a.models:
        ap.error("--models goes with --box-pad")
    rows = []
    for row in q["rows"]:
        new = {k: row.get(k) for k in ("name", "teacher", "mode")}
        new["round-3 binary_iou"] = row.get("binary_iou")
        model = model_dir(a.run / "work", row)
        if row["name"] in ("box fill", "teacher"):
            # no student, no box rule: the run's figures stand in every rule's columns
            new.update({f"{r} {m}": row.get(m) for r in BOX_RULES for m in METRICS})
        elif model.is_dir():
            scores = rescore(model, proj, test, a.data / "masks", names)
            for (rule, _), s in scores.items():
                new.update({f"{rule} {m}": v for m, v in s.items()})
            print(f"  {row['name']} from {row.get('teacher')}: tight "
                  f"{scores['tight', None]['binary_iou']:.3f}, posterior "
                  f"{scores['posterior', None]['binary_iou']:.3f}", flush=True)
        else:
            print(f"  {row['name']} from {row.get('teacher')}: no saved model at {model}")
            continue
        rows.append(new)
    return write(a.run / "rescored", {"dataset": q["dataset"], "test": len(test), "rows": rows,
                                      "run_command": q["command"]}, markdown, argv, t0)


if __name__ == "__main__":
    sys.exit(main())
