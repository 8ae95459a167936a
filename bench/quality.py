"""Quality benchmark: does the student beat its noisy teacher and the baselines?

Box-only supervision on photos with pixel ground truth: boxes come from the ground-truth
masks' connected components (padded), a teacher turns them into pseudo-masks, every model
learns from those pseudo-masks only, and every row is scored against the ground-truth masks
of a held-out split. At test time every model gets the same boxes. A learned row's scores are
the student alone, box-constrained with no teacher fallback (with the fallback, a student that
finds nothing would score as its teacher); the product's output (a box the student leaves
empty takes the teacher's mask) is kept as ``product_*`` beside ``fallback_share``, the share
of boxes that fell back, the old box rule (0.5 posterior, :mod:`ml.prediction.box_decode`) as
``posterior_binary_iou``, and scores without the box constraint as ``nobox_*``.

    python bench/quality.py --data ../shared/data/magnetic_tile [--quick]
        [--teachers grabcut,box] [--out DIR] [--rows b2p,unet,...]

Writes OUT/quality.json, OUT/quality.md and OUT/split.json, and for the first trained row
OUT/examples_SET.png (whole photos) and OUT/panel_SET.png (a seeded sample of boxes: photo |
teacher | student, ``ml.evaluation.panel``).
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from box_free import box_free_markdown, box_free_scores  # noqa: E402
from quality_figure import box_panel, figure  # noqa: E402

from ml.common.classes import make_classes  # noqa: E402
from ml.common.images import label_file, load_label  # noqa: E402
from ml.datasets.importers import import_masks, read_dataset_classes  # noqa: E402
from ml.evaluation.metrics import score_masks  # noqa: E402
from ml.project.store import Project, boxes_to_arrays, is_project  # noqa: E402
from ml.student.config import StudentConfig, TrainConfig  # noqa: E402

BOX_LOSS = 0.5  # box-term weight of the box-loss rows: as heavy as each teacher term
METRICS = ["miou", "anomaly_miou", "anomaly_f1", "binary_iou", "binary_recall",
           "binary_precision"]
QUICK_NOTE = "quick run: rows are smoke tests, not results"


@dataclass
class RowSpec:
    """One trained row: its name in quality.json and how it differs from the full method."""

    name: str
    student: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    oracle: bool = False
    ablation: bool = False  # may run in --ablation-mode (the fast mode within a CPU budget)
    rounds: int = 1  # > 1: later rounds learn from the previous round's fused masks


# The full method first; every other row changes one thing.
ROWS = [
    RowSpec("b2p"),
    RowSpec("unet", {"arch": "unet"}, {"loss": "ce"}),
    RowSpec("unet+b2p loss", {"arch": "unet"}),
    RowSpec("b2p -selfcorr", train={"self_correct": False}, ablation=True),
    # the paper's literal rule: tau against the class-weighted (uncalibrated) softmax
    RowSpec("b2p raw tau", train={"tau_calibrated": False}),
    RowSpec("b2p -binary", {"binary": False}, ablation=True),
    RowSpec("b2p -detail", {"detail": False}, ablation=True),
    RowSpec("b2p frozen", {"mode": "frozen"}),
    # beyond the paper: learn from the box itself (ml/training/box_loss.py), its ablation, two
    # rounds (ml/training/rounds.py) and whole photos instead of the auto crops (--crop auto)
    RowSpec("b2p +box loss", train={"box_loss": BOX_LOSS}),
    RowSpec("b2p +box loss -pairwise", train={"box_loss": BOX_LOSS, "box_pairwise": 0.0}),
    RowSpec("b2p 2 rounds", rounds=2),
    RowSpec("b2p whole image", train={"crop": 0}),
    # logits refined at input resolution (ml/student/models/b2p.py FullResRefine)
    RowSpec("b2p +full res", {"full_res": True}),
    # three decoders on one backbone, probabilities averaged (ml/student/models/b2p.py Members)
    RowSpec("b2p 3 members", {"members": 3}),
    RowSpec("b2p oracle", oracle=True),
]


def split_dataset(keys: list[str], test_fraction: float, seed: int) -> tuple[list, list]:
    rng = np.random.default_rng(seed)
    order = list(rng.permutation(len(keys)))
    n_test = max(1, int(round(len(keys) * test_fraction)))
    test = sorted(keys[i] for i in order[:n_test])
    return sorted(set(keys) - set(test)), test


def ground_truth(masks_dir: Path, keys: list[str]) -> dict[str, np.ndarray]:
    """Each photo's ground-truth mask, found by the rule every scorer uses."""
    out = {}
    for k in keys:
        f = label_file(masks_dir, k)
        if f is None:
            raise FileNotFoundError(f"{masks_dir}: no ground-truth mask for {k}")
        out[k] = load_label(f)
    return out


def score_labels(preds: dict[str, np.ndarray], masks_dir: Path, names: list[str]) -> dict:
    """The summary METRICS of ``preds`` (by photo key) against the ground truth."""
    r = score_masks(preds, masks_dir, preds.get, names)
    if r.failed:
        raise ValueError(f"could not score {r.failed}")
    s = r.scores
    return {m: float(s[m]) for m in METRICS}


def dataset_classes(data: Path) -> list[str]:
    """Class names of a data set's masks (background first), else background and defect."""
    return read_dataset_classes(data / "masks") or ["background", "defect"]


def dataset_name(data: Path) -> str:
    """The name in ``data/dataset.json``, else the folder's name."""
    meta = data / "dataset.json"
    return json.loads(meta.read_text()).get("name", data.name) if meta.exists() else data.name


def boxed_keys(proj: Project, limit: int = 0) -> list[str]:
    """The project's photos with boxes, sorted; the first ``limit`` only when it is > 0."""
    keys = sorted(k for k in proj.keys() if proj.record(k).boxes)
    return keys[:limit] if limit else keys


def command_line(script: str, argv: list[str] | None) -> str:
    """How ``script`` was run, for the tables (``argv``: main's, else the process's)."""
    return f"python bench/{script} " + shlex.join(argv if argv is not None else sys.argv[1:])


def run_parser(doc: str | None) -> argparse.ArgumentParser:
    """The parser of a script that reads a quality run's folder: RUN and ``--data``."""
    ap = argparse.ArgumentParser(description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run", type=Path, help="the --out folder of a bench/quality.py run")
    ap.add_argument("--data", type=Path, required=True, help="the data set it ran on")
    return ap


def show_table(md: str, out: Path | None) -> int:
    """Print a markdown table, and write it to ``out`` when given; main's exit status."""
    from ml.common.atomic import atomic_write_text

    print(md)
    if out:
        atomic_write_text(out, md)
    return 0


def make_project(work: Path, data: Path, names: list[str], pad: int) -> Project:
    proj_dir = work / "project"
    if is_project(proj_dir):
        import shutil

        shutil.rmtree(proj_dir)
    proj = Project.create(proj_dir, data / "images", make_classes(names[1:]))
    import_masks(proj, data / "masks", pad=pad)
    return proj


def teacher_labels(proj: Project, teacher_name: str) -> dict[str, np.ndarray]:
    from ml.teachers import make_teacher
    from ml.teachers.pseudo_label import pseudo_label_project

    t0 = time.monotonic()
    pseudo_label_project(proj, make_teacher(teacher_name))
    out = {k: proj.load_mask(k) for k in proj.keys()}
    print(f"  teacher {teacher_name}: {time.monotonic() - t0:.1f} s for {len(out)} images")
    return {k: v for k, v in out.items() if v is not None}


def train_row(spec: RowSpec, proj: Project, labels: dict[str, np.ndarray], out: Path,
              base_student: dict, base_train: dict, ablation_mode: str) -> tuple[Path, dict]:
    from ml.training.rounds import train_rounds

    scfg = StudentConfig(**{**base_student, **spec.student})
    if spec.ablation:
        scfg = replace(scfg, mode=ablation_mode)
    tcfg = TrainConfig(**{**base_train, **spec.train})
    res = train_rounds(proj, out, scfg, tcfg, rounds=spec.rounds, labels=labels)
    return res.out_dir, {"mode": scfg.mode if scfg.arch == "b2p" else "scratch",
                 "trainable_params": int(res.trainable_params),
                 "train_seconds": round(float(res.seconds), 1), "epochs_run": res.epochs_run,
                 "best_epoch": res.best_epoch}


def eval_model(model_dir: Path, proj: Project, test: list[str], masks_dir: Path,
               teacher: dict, names: list[str], tiled: bool,
               device: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(scores of the student alone, of the product and unboxed; the student's masks by key)."""
    from ml.prediction.predict import Predictor

    pred = Predictor.from_dir(model_dir, device=device, tiled=tiled)
    from ml.prediction.speckle import output_cell

    alone, product, free, posterior, cells = {}, {}, {}, {}, {}
    n_boxes = n_fell_back = 0
    for k in test:
        xyxy, cls = boxes_to_arrays(proj.record(k).boxes)
        probs = pred.probabilities(proj.load_image(k))
        alone[k], _ = pred.constrain(probs, xyxy, None, cls, fallback=False)
        posterior[k], _ = pred.constrain(probs, xyxy, None, cls, False, rule="posterior")
        product[k], fell_back = pred.constrain(probs, xyxy, teacher.get(k), cls)
        free[k] = probs.argmax(axis=0).astype(np.uint8)
        cells[k] = output_cell(pred.input_scale(free[k].shape))
        n_boxes, n_fell_back = n_boxes + len(xyxy), n_fell_back + fell_back
    row = score_labels(alone, masks_dir, names)
    row.update({f"product_{m}": v for m, v in score_labels(product, masks_dir, names).items()})
    row["fallback_share"] = n_fell_back / max(n_boxes, 1)
    row["posterior_binary_iou"] = score_labels(posterior, masks_dir, names)["binary_iou"]
    row.update(box_free_scores(free, cells, masks_dir, names))  # bench/box_free.py
    return row, alone


def box_fill(proj: Project, keys: list[str]) -> dict[str, np.ndarray]:
    from ml.teachers import make_teacher

    t = make_teacher("box")
    out = {}
    for k in keys:
        t.set_image(proj.load_image(k))
        out[k] = t.predict(*boxes_to_arrays(proj.record(k).boxes))
    return out


def markdown(result: dict) -> str:
    scored = [*METRICS, "product_binary_iou", "fallback_share", "posterior_binary_iou",
              "nobox_binary_iou"]
    cols = ["name", "teacher", "mode", *scored, "trainable_params", "train_seconds"]
    lines = [f"### {result['dataset']} — held-out {len(result['split']['test'])} images", ""]
    if result.get("note"):
        lines += [f"**{result['note']}**", ""]
    lines += ["Learned rows score the student alone (boxes, no teacher fallback); "
              "`product_binary_iou` is the product's output, where a box the student leaves "
              "empty takes the teacher's mask (`fallback_share` of the boxes); "
              "`posterior_binary_iou` is the student alone under the first release's box rule "
              "(prior-corrected probability > 0.5) instead of the tightness rule.", "",
              "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in result["rows"]:
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append("–" if v is None else f"{v:.3f}" if isinstance(v, float) and c in
                         scored else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    lines += box_free_markdown(result["rows"])
    lines += ["", f"Settings: {json.dumps(result['settings'])}", f"Machine: {result['machine']}",
              f"Command: `{result['command']}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--quick", action="store_true",
                    help="small subset, few epochs (< 5 min): a smoke test, its rows are no result")
    ap.add_argument("--teachers", default="grabcut,box",
                    help="teachers, comma-separated: grabcut, box, ridge, auto, sam")
    ap.add_argument("--rows", default=",".join(r.name for r in ROWS),
                    help="rows trained from the first teacher")
    ap.add_argument("--other-rows", default="b2p", help="rows trained from the other teachers")
    ap.add_argument("--rows-for", action="append", default=[], metavar="TEACHER=ROWS",
                    help="rows trained from one teacher, instead of --rows/--other-rows "
                         "(repeatable; TEACHER= alone: its teacher row only)")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--epochs", type=int)
    ap.add_argument("--input-size", type=int, default=224)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--crop", type=lambda t: -1 if t == "auto" else int(t), default="auto",
                    help="training crops: auto (native crops where photos are >= 2x the "
                         "input; prediction then tiles at that scale), 0 (whole photos) or N")
    ap.add_argument("--backbone-weights", default="offline")
    ap.add_argument("--mode", default="bitfit", help="backbone mode of the B2P rows")
    ap.add_argument("--ablation-mode", help="mode of the ablation rows (default: --mode)")
    ap.add_argument("--device", default="cpu", help="cpu | cuda | auto")
    ap.add_argument("--pad", type=int, default=2, help="pixels around ground-truth boxes")
    ap.add_argument("--test-fraction", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--tiled", action="store_true")
    a = ap.parse_args(argv)

    t_start = time.monotonic()
    if any("=" not in spec for spec in a.rows_for):
        ap.error("--rows-for takes TEACHER=ROWS, e.g. --rows-for grabcut=b2p")
    per_teacher = dict(spec.split("=", 1) for spec in a.rows_for)
    names = dataset_classes(a.data)
    dataset = dataset_name(a.data)
    out = a.out or ROOT / "bench" / "results" / (dataset + ("_quick" if a.quick else ""))
    out.mkdir(parents=True, exist_ok=True)
    work = out / "work"
    proj = make_project(work, a.data, names, a.pad)
    keys = [k for k in proj.keys() if proj.record(k).boxes]
    train_keys, test = split_dataset(keys, a.test_fraction, a.seed)
    if a.quick:
        train_keys, test = train_keys[:24], test[:12]
    masks_dir = a.data / "masks"
    gts = ground_truth(masks_dir, test)
    n = len(names)
    epochs = a.epochs or (4 if a.quick else 30)
    base_student = {"num_classes": n, "input_size": a.input_size, "mode": a.mode,
                    "backbone_weights": a.backbone_weights}
    base_train = {"epochs": epochs, "batch_size": a.batch_size, "crop": a.crop, "patience": 10,
                  "seed": a.seed, "device": a.device}
    split = {"seed": a.seed, "test_fraction": a.test_fraction, "train": train_keys, "test": test}
    (out / "split.json").write_text(json.dumps(split, indent=1))
    rows: list[dict] = []

    def emit() -> None:
        result = {"dataset": dataset, "note": QUICK_NOTE if a.quick else None,
                  "split": {"seed": a.seed, "train": len(train_keys), "test": test},
                  "rows": rows, "settings": {**base_student, **base_train, "pad": a.pad,
                                             "ablation_mode": a.ablation_mode or a.mode,
                                             "tiled": a.tiled, "quick": a.quick},
                  "machine": f"{platform.machine()} {platform.processor() or ''} "
                             f"{__import__('os').cpu_count()} cpus, "
                             f"torch threads {__import__('torch').get_num_threads()}",
                  "command": command_line("quality.py", argv),
                  "seconds": round(time.monotonic() - t_start, 1)}
        (out / "quality.json").write_text(json.dumps(result, indent=1))
        (out / "quality.md").write_text(markdown(result))

    print(f"{dataset}: {len(train_keys)} train / {len(test)} test images, classes {names}")
    bf = box_fill(proj, test)
    rows.append({"name": "box fill", "teacher": None, **score_labels(bf, masks_dir, names)})
    emit()
    oracle_done = figure_done = False
    for i, teacher in enumerate(t for t in a.teachers.split(",") if t):
        wanted = [s for s in per_teacher.get(teacher, a.other_rows if i else a.rows).split(",")
                  if s]
        tl = teacher_labels(proj, teacher) if teacher != "box" else box_fill(proj, keys)
        if teacher != "box":
            rows.append({"name": "teacher", "teacher": teacher,
                         **score_labels({k: tl[k] for k in test}, masks_dir, names)})
            emit()
        train_labels = {k: tl[k] for k in train_keys if k in tl}
        for spec in ROWS:
            if spec.name not in wanted or (spec.oracle and oracle_done):
                continue
            labels = train_labels
            if spec.oracle:
                labels = ground_truth(masks_dir, train_keys)
                oracle_done = True
            tag = spec.name.replace(" ", "_").replace("+", "p")
            model_dir = work / "models" / (tag if spec.oracle else f"{teacher}_{tag}")
            print(f"  training {spec.name} on {'ground truth' if spec.oracle else teacher}")
            model_dir, info = train_row(spec, proj, labels, model_dir, base_student, base_train,
                                        a.ablation_mode or a.mode)
            scores_, boxed = eval_model(model_dir, proj, test, masks_dir, tl, names, a.tiled,
                                        a.device)
            row = {"name": spec.name, "teacher": None if spec.oracle else teacher, **info,
                   **scores_}
            rows.append(row)
            if not figure_done and not spec.oracle:
                figure(out / f"examples_{dataset}.png", f"{dataset}: {spec.name} from {teacher} "
                       f"(binary IoU {row['binary_iou']:.3f} on {len(test)} held-out photos)",
                       proj, test, gts, tl, boxed)
                box_panel(out / f"panel_{dataset}.png", proj, test, tl, boxed, a.seed)
                figure_done = True
            print(f"    binary IoU {row['binary_iou']:.3f} (product "
                  f"{row['product_binary_iou']:.3f}, {row['fallback_share']:.0%} of boxes fell "
                  f"back), anomaly mIoU {row['anomaly_miou']:.3f} ({info['train_seconds']} s)")
            emit()
    emit()
    print(markdown(json.loads((out / "quality.json").read_text())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
