"""Score the average of several saved students' probabilities, each student alone beside it.

    python bench/average.py RUN MODEL_DIR MODEL_DIR [...] --data ../shared/data/magnetic_tile

RUN is the ``--out`` folder of a ``bench/quality.py`` run: its ``split.json`` names the held-out
photos and ``work/project`` holds their boxes. The models must be students of that split (other
training seeds, for instance; their own runs' boxes are the same when made with the same
``--pad``). Every model predicts each held-out photo; the average of their class probabilities
is decoded by the product's box rule (student alone, no teacher fallback), as each model's
own. What a trained :class:`ml.student.models.b2p.Members` student does within one model, measured
across separately trained ones. Writes nothing unless ``--out FILE`` is given.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from quality import command_line, dataset_classes, run_parser, score_labels  # noqa: E402

from ml.project.records import boxes_to_arrays  # noqa: E402  (quality put the project root on the path)
from ml.project.store import Project  # noqa: E402

SHOWN = ("binary_iou", "binary_recall", "binary_precision", "anomaly_miou")


def score_average(models: list[Path], proj: Project, test: list[str], masks: Path,
                  names: list[str]) -> list[tuple[str, dict]]:
    """(name, scores) for each model alone, then for the average of all of them."""
    from ml.prediction.predict import Predictor

    preds = [Predictor.from_dir(m, device="cpu") for m in models]
    alone: list[dict[str, np.ndarray]] = [{} for _ in preds]
    mean: dict[str, np.ndarray] = {}
    for k in test:
        xyxy, cls = boxes_to_arrays(proj.record(k).boxes)
        image = proj.load_image(k)
        probs = [p.probabilities(image) for p in preds]
        for i, (p, pr) in enumerate(zip(preds, probs, strict=True)):
            alone[i][k], _ = p.constrain(pr, xyxy, None, cls, fallback=False)
        mean[k], _ = preds[0].constrain(np.mean(probs, axis=0), xyxy, None, cls,
                                        fallback=False)
    rows = [(str(m), score_labels(a, masks, names)) for m, a in zip(models, alone, strict=True)]
    return [*rows, (f"average of {len(models)}", score_labels(mean, masks, names))]


def markdown(rows: list[tuple[str, dict]], test: int, command: str, seconds: float) -> str:
    lines = [f"Held-out {test} photos, student alone (tight box rule, no teacher fallback).", "",
             "| model | " + " | ".join(SHOWN) + " |", "|---|" + "---|" * len(SHOWN)]
    lines += [f"| {name} | " + " | ".join(f"{s[m]:.3f}" for m in SHOWN) + " |"
              for name, s in rows]
    lines += ["", f"Command: `{command}` ({seconds:.0f} s, {platform.machine()} "
                  f"{__import__('os').cpu_count()} cpus)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = run_parser(__doc__)
    ap.add_argument("models", type=Path, nargs="+", help="trained model folders to average")
    ap.add_argument("--out", type=Path, help="also write the table to this file")
    a = ap.parse_args(argv)
    if len(a.models) < 2:
        ap.error("give at least two models to average")
    t0 = time.monotonic()
    test = json.loads((a.run / "split.json").read_text())["test"]
    rows = score_average(a.models, Project.open(a.run / "work" / "project"), test,
                         a.data / "masks", dataset_classes(a.data))
    md = markdown(rows, len(test), command_line("average.py", argv), time.monotonic() - t0)
    if a.out is not None:
        a.out.write_text(md)
    print(md)
    return 0


if __name__ == "__main__":
    sys.exit(main())
