"""``b2p train``: train the student on a project's masks; Ctrl-C stops with a checkpoint.

``--ddp`` trains data-parallel in processes started by torchrun (one per GPU, or CPU processes
on gloo); rank 0 alone prints and writes (``ml/training/distributed.py``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

from app.cli import CLIError
from app.cli._progress import TrainBars, stop_on_ctrl_c

DDP_LAUNCH = "torchrun --nproc-per-node N -m app.cli train PROJECT --out MODEL_DIR --ddp"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the student on the project's masks",
                       description="Train the Boxes2Pixels student on the project's teacher (or "
                                   "reviewed) masks. Ctrl-C stops after the current step and "
                                   "saves a checkpoint; --resume continues it.")
    p.add_argument("project", type=Path)
    p.add_argument("--out", type=Path, required=True, metavar="MODEL_DIR",
                   help="output folder (best model + last/ state for --resume)")
    p.add_argument("--mode", choices=("bitfit", "frozen", "full"),
                   help="what trains in the backbone (default: bitfit)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--budget", metavar="TIME",
                   help="fit the run to a wall-clock budget (90s, 10m, 1h): picks the mode, "
                        "input size, crop and epochs for this device, prints the plan first; "
                        "--mode/--input-size/--crop given too are kept")
    p.add_argument("--input-size", type=int, help="network input in pixels, multiple of 14")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--crop", type=_crop, metavar="auto|0|N",
                   help="training crops: auto (default: native crops of the input size where "
                        "photos are at least 1.25x as large, else whole photos), 0 (whole "
                        "photo resized) or N (native crops of N px)")
    p.add_argument("--box-loss", type=float, metavar="W",
                   help="weight of the box-consistency loss (projection, pairwise, outside; "
                        "default 0: off)")
    p.add_argument("--teacher-confidence", action="store_true", default=None,
                   help="weight the loss by the teacher's per-pixel confidence (off by default: "
                        "it lowered held-out IoU on both real sets, docs/RESULTS.md)")
    p.add_argument("--full-res", action="store_true", default=None,
                   help="refine the student's masks at input resolution near their borders "
                        "(beyond the paper; off by default: -3 points on magnetic_tile, +1 on "
                        "crackforest, +7 on the synthetic demo; docs/RESULTS.md, round 11)")
    p.add_argument("--members", type=int, metavar="N",
                   help="decoders trained side by side on one backbone, each leaving out its "
                        "own fifth of the photos, their probabilities averaged (beyond the "
                        "paper; default 1; each costs about one more training pass)")
    p.add_argument("--rounds", type=int, default=1,
                   help="2: a second round learns from round 1's box-constrained masks fused "
                        "with the teacher's (into MODEL_DIR/round2)")
    p.add_argument("--backbone-weights", metavar="official|offline|none|PATH")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--source", choices=("teacher", "reviewed"), default="teacher",
                   help="masks to learn from (default: teacher)")
    p.add_argument("--resume", action="store_true", help="continue MODEL_DIR/last")
    p.add_argument("--from", dest="init_from", type=Path, metavar="MODEL_DIR",
                   help="fine-tune from a trained model")
    p.add_argument("--seed", type=int)
    p.add_argument("--ddp", action="store_true",
                   help="data-parallel over the processes torchrun starts: "
                        f"{DDP_LAUNCH} (--batch-size is per process)")
    p.set_defaults(func=run_train)


@contextmanager
def _ddp_group(args: argparse.Namespace):
    """Joins torchrun's process group under --ddp (and leaves it); yields True on the process
    that prints (rank 0, or the only one)."""
    if not args.ddp:
        yield True
        return
    from ml.training import distributed

    if args.budget is not None:
        raise CLIError("--budget plans a run on one device; drop --budget or --ddp")
    try:
        group = distributed.init_from_env(args.device)
        yield group.is_main
    finally:
        distributed.teardown()


def _open_project(path: Path, ddp: bool):
    """The project; under --ddp rank 0 opens it first (an older one is upgraded once)."""
    from ml.project.store import Project

    if not ddp:
        return Project.open(path)
    from ml.training import distributed

    group = distributed.current()
    project = Project.open(path) if group.is_main else None
    group.barrier()
    return project if project is not None else Project.open(path)


def _crop(text: str) -> int:
    """``auto`` -> -1, else a non-negative integer."""
    if text.strip().lower() == "auto":
        return -1
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"want auto or a number of pixels, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"want auto, 0 or a positive size, got {value}")
    return value


def _configs(args: argparse.Namespace, num_classes: int):
    from ml.student.checkpoint import LAST_NAME, load_card
    from ml.student.config import ConfigError, StudentConfig, TrainConfig

    student = StudentConfig(num_classes=num_classes)
    train = TrainConfig()
    if args.resume:  # continue the saved run's settings (a budget run keeps its planned epochs)
        try:
            train = load_card(args.out / LAST_NAME).train
        except FileNotFoundError:
            pass  # run_train says there is nothing to resume
    if args.init_from is not None:
        try:
            student = load_card(args.init_from).student
        except FileNotFoundError as e:
            raise CLIError(str(e)) from None
    s_over = {"mode": args.mode, "input_size": args.input_size,
              "backbone_weights": args.backbone_weights, "full_res": args.full_res,
              "members": args.members}
    t_over = {"epochs": args.epochs, "batch_size": args.batch_size, "crop": args.crop,
              "device": args.device, "seed": args.seed, "box_loss": args.box_loss,
              "teacher_confidence": args.teacher_confidence}
    student = replace(student, **{k: v for k, v in s_over.items() if v is not None})
    train = replace(train, **{k: v for k, v in t_over.items() if v is not None})
    if args.rounds < 1:
        raise CLIError("--rounds must be at least 1")
    try:
        return student.check(), train.check()
    except ConfigError as e:
        raise CLIError(str(e)) from None


def _budget_seconds(args: argparse.Namespace) -> float | None:
    """The --budget in seconds (None without one); CLIError for a bad or conflicting one."""
    if args.budget is None:
        return None
    from ml.training.budget import parse_budget

    try:
        seconds = parse_budget(args.budget)
    except ValueError as e:
        raise CLIError(f"--budget: {e}") from None
    if args.epochs is not None:
        raise CLIError("give --budget or --epochs, not both")
    if args.resume:
        raise CLIError("--resume continues the saved plan; drop --budget")
    return seconds


def _plan(args: argparse.Namespace, project, student, cfg, budget_s: float):
    """Configs fitted to the budget (keeping --mode, --input-size and --crop where given)."""
    from ml.training.budget import FIXABLE

    fixed = [name for name in FIXABLE if getattr(args, name) is not None]
    # a too-short budget (BudgetError) is a ValueError: one line on stderr, exit 1
    return planned(project, student, cfg, budget_s, f"--budget {args.budget}", args.source,
                   fixed)


def planned(project, student, cfg, budget_s: float, what: str, source: str = "teacher",
            fixed: Iterable[str] = (), keys: Iterable[str] | None = None, indent: str = ""):
    """Configs fitted to ``budget_s`` by ml.training.budget; the plan and why are printed
    before training starts (``what``: the budget as the person gave it)."""
    from ml.training.budget import TrainPlan, plan_project

    print(f"{indent}measuring a training step for {what} ...", flush=True)
    student, cfg = plan_project(project, student, cfg, budget_s, source, fixed, keys=keys)
    p = TrainPlan.of(cfg)
    print(f"{indent}{p.describe()} on {p.device}\n{indent}why: {p.reason}", flush=True)
    return student, cfg


def run_train(args: argparse.Namespace) -> int:
    if args.ddp:
        from ml.training.distributed import launched

        if not launched():  # exit 2 as argparse does: the command line is wrong
            print("b2p train: error: --ddp trains in the processes torchrun starts; launch it "
                  f"as: {DDP_LAUNCH} (N: processes, one per GPU)", file=sys.stderr)
            return 2
    with _ddp_group(args) as main:
        return _train(args, main)


def _train(args: argparse.Namespace, main: bool) -> int:
    from ml.student.checkpoint import can_resume
    from ml.training.rounds import train_rounds

    budget_s = _budget_seconds(args)
    project = _open_project(args.project, args.ddp)
    student, cfg = _configs(args, project.num_classes)
    if args.resume and not can_resume(args.out):
        raise CLIError(f"{args.out}: nothing to resume (no training state saved there)")
    if budget_s is not None:
        student, cfg = _plan(args, project, student, cfg, budget_s)
    bars = TrainBars() if main else None  # under --ddp rank 0 alone reports
    with stop_on_ctrl_c("this step") as flag:
        try:
            result = train_rounds(project, args.out, student, cfg, rounds=args.rounds,
                                  mask_source=args.source, resume=args.resume,
                                  init_from=args.init_from, on_event=bars,
                                  should_stop=lambda: flag[0])
        finally:
            if bars is not None:
                bars.close()
    if not main:
        return 130 if result.stopped else 0
    if cfg.budget_plan:
        from ml.training.budget import format_duration

        print(f"budget {format_duration(cfg.budget_s)}: planned "
              f"{format_duration(cfg.budget_plan['expected_s'])}, the run took "
              f"{format_duration(result.seconds)}")
    print(f"{'stopped' if result.stopped else 'done'} after {result.epochs_run} epochs "
          f"({result.seconds:.0f} s); {result.kept_line()}; model in {result.out_dir}")
    _print_free_threshold(result.out_dir)
    if result.stopped:
        print(f"continue with: b2p train {args.project} --out {args.out} --resume")
        return 130
    return 0


def _print_free_threshold(model_dir: Path) -> None:
    """The box-free threshold the run chose (photos without boxes use it)."""
    from ml.evaluation.free_threshold import summary_line
    from ml.student.checkpoint import is_model, load_card

    line = summary_line(load_card(model_dir).free_threshold) if is_model(model_dir) else None
    if line:
        print(line)
