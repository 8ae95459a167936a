"""Fit a training run to a wall-clock budget: backbone mode, input size, crop and epochs.

:func:`plan` is pure: from the photos' sizes and the time one step takes for each candidate
setting (``cost``; :func:`ml.training.step_cost.measured_costs` times a few steps on this machine)
it walks a ladder of candidates, best first, and takes the first that trains at least
``min_epochs`` epochs within the budget, else the cheapest that trains one. On a CPU every
candidate is the frozen backbone with the feature cache (the backbone runs once per view, then
only the decoder trains); on a GPU the ladder starts with the paper's settings (BitFit, 518 px).
The expected time counts the setup, the cache fill, every epoch's steps and validation, and
the checkpoints.

    python -m ml.training.budget PROJECT --budget 15m [--device auto]   # one JSON line: the plan
    python -m ml.training.budget PROJECT --budget 15m --budget 5m --budget converged   # a line each

(the GUI runs this in a child process, so torch never loads in the GUI for it; it asks for
every budget it offers at once, each setting measured once, so switching the choice is
instant).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace

from ml.student.config import StudentConfig, TrainConfig
from ml.training.step_cost import Candidate, StepCost, measured_costs

SETUP_S = 5.0  # model build, weights and split, before the first photo is read
LOAD_S_PER_IMAGE = 0.05  # read and downscale one photo into the training cache
SAVE_S_PER_EPOCH = 0.5  # last/ state and, when improved, the best model
MIN_EPOCHS = 10  # fewer than this at a setting: try a cheaper one
MAX_EPOCHS = 100  # the paper's; the plan never asks for more

_UNITS = {"s": 1, "m": 60, "min": 60, "h": 3600}
CONVERGED = "converged"  # the budget choice without a time: train until early stopping ends it


@dataclass(frozen=True)
class TrainPlan:
    """What :func:`plan` picked and how long it expects the run to take."""

    mode: str
    input_size: int
    crop: int
    epochs: int
    batch_size: int
    device: str
    budget_s: float | None  # None: until converged (the most epochs, early stopping ends it)
    expected_s: float
    setup_s: float
    cache_s: float
    epoch_s: float

    def describe(self) -> str:
        """``plan: frozen, 224 px, 12 epochs, expected 9 min 40 s``."""
        crop = f", crops of {self.crop} px" if self.crop else ""
        return (f"plan: {self.mode}, {self.input_size} px{crop}, {self.epochs} epochs, "
                f"expected {format_duration(self.expected_s)}")

    def about(self) -> str:
        """``about 14 min on this CPU`` (until converged: at most that, it may end sooner)."""
        where = "this GPU" if self.device == "cuda" else "this CPU"
        text = f"about {rough_duration(self.expected_s)} on {where}"
        if self.budget_s is None:
            return f"at most {text} (early stopping may end it sooner)"
        return text

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        """One line for the GUI: the fields, ``text`` (:meth:`describe`) and ``about``."""
        return json.dumps({**self.to_dict(), "text": self.describe(), "about": self.about()})

    @classmethod
    def from_dict(cls, d: dict) -> TrainPlan:
        return cls(**{k: d[k] for k in cls.__dataclass_fields__})


class BudgetError(ValueError):
    """The budget is too small for one epoch; ``minimum_s`` is what the cheapest setting needs."""

    def __init__(self, budget_s: float, minimum_s: float, device: str) -> None:
        super().__init__(f"a budget of {format_duration(budget_s)} is too short: one epoch "
                         f"on {device} (with setup and feature cache) needs at least "
                         f"{format_duration(minimum_s)}")
        self.minimum_s = minimum_s


def parse_budget(text: str) -> float:
    """Seconds of ``90s``, ``10m``, ``1.5h`` (a bare number is seconds); ValueError otherwise."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(s|m|min|h)?\s*", str(text).lower())
    if m is None:
        raise ValueError(f"budget {text!r} is not a duration like 90s, 10m or 1h")
    seconds = float(m.group(1)) * _UNITS[m.group(2) or "s"]
    if not seconds > 0:
        raise ValueError(f"budget {text!r} must be more than 0")
    return seconds


def parse_budget_choice(text: str) -> float | None:
    """:func:`parse_budget`, or None for ``converged`` (no time limit)."""
    if str(text).strip().lower() in (CONVERGED, "until converged", "none"):
        return None
    return parse_budget(text)


def rough_duration(seconds: float) -> str:
    """An estimate for people: ``40 s``, ``14 min``, ``1 h 5 min`` (whole minutes, 5 over 1 h)."""
    if seconds < 60:
        return format_duration(seconds)
    step = 60 if seconds < 3600 else 300
    return format_duration(round(seconds / step) * step)


def format_duration(seconds: float) -> str:
    """``9 min 40 s``, ``1 h 5 min``, ``45 s``."""
    s = max(0, int(round(seconds)))
    h, rem = divmod(s, 3600)
    m, s = divmod(rem, 60)
    if h:
        return f"{h} h {m} min" if m else f"{h} h"
    if m:
        return f"{m} min {s} s" if s else f"{m} min"
    return f"{s} s"


def default_ladder(device: str, image_sizes: Sequence[tuple[int, int]]) -> list[Candidate]:
    """Candidates best first: frozen + cache on a CPU, the paper's BitFit at 518 px on a GPU.

    Where photos are larger than the input, the native-crop candidate that training's
    ``crop=auto`` would pick (:func:`ml.student.crops.resolve_crop`) comes before each size.
    """
    from ml.student.crops import CROP_AUTO, resolve_crop

    base = ([Candidate("bitfit", 518), Candidate("frozen", 518), Candidate("frozen", 224)]
            if device == "cuda" else
            [Candidate("frozen", 448), Candidate("frozen", 336), Candidate("frozen", 224)])
    out = []
    for c in base:
        crop = resolve_crop(CROP_AUTO, c.input_size, [(h, w) for w, h in image_sizes])
        if crop > 0:
            out.append(Candidate(c.mode, c.input_size, crop))
        out.append(c)
    return out


def restrict(ladder: Sequence[Candidate], mode: str | None = None, input_size: int | None = None,
             crop: int | None = None) -> list[Candidate]:
    """The candidates that keep the settings a person fixed (one made of them if none does)."""
    out = [c for c in ladder if (mode is None or c.mode == mode)
           and (input_size is None or c.input_size == input_size)
           and (crop is None or c.crop == crop)]
    if out:
        return out
    first = ladder[0] if ladder else Candidate("frozen", 224)
    return [Candidate(mode or first.mode, input_size or first.input_size,
                      first.crop if crop is None else crop)]


def views_per_photo(size: tuple[int, int], cand: Candidate) -> int:
    """Training views of one photo (w, h): 1, or its grid of crops as ``ml.training.data`` cuts
    it."""
    if cand.crop <= 0:
        return 1
    from ml.student.crops import cache_long_side, grid_origins

    w, h = size
    scale = min(1.0, cache_long_side(cand.input_size, cand.crop) / max(w, h, 1))
    cw, ch = max(1, round(w * scale)), max(1, round(h * scale))
    return len(grid_origins(ch, cand.crop)) * len(grid_origins(cw, cand.crop))


def _split(n: int, val_fraction: float) -> int:
    """Validation photos of ``n`` labelled ones, by the rule ``ml.training.data.split_keys``
    uses."""
    from ml.training.data import MIN_VAL_IMAGES

    if n < MIN_VAL_IMAGES:
        return 0
    return min(max(1, round(val_fraction * n)), n - 1)


def estimate(cand: Candidate, cost: StepCost, image_sizes: Sequence[tuple[int, int]],
             batch_size: int = 4, augment: bool = True,
             val_fraction: float = 0.2) -> tuple[float, float, float]:
    """(setup s, cache fill s, one epoch s) of ``cand`` on these photos."""
    n = len(image_sizes)
    n_val = _split(n, val_fraction)
    views = [views_per_photo(s, cand) for s in image_sizes]
    train_views = sum(views[: n - n_val])
    val_views = sum(views[n - n_val:]) if n_val else train_views
    bs = max(1, batch_size)
    setup = SETUP_S + LOAD_S_PER_IMAGE * n
    if cand.mode == "frozen":  # flipped twins are cached and stepped through as well
        items = train_views * (2 if augment else 1)
        cache = (items + (val_views if n_val else 0)) * cost.encode_s
    else:
        items, cache = train_views, 0.0
    epoch = (math.ceil(items / bs) * cost.step_s + math.ceil(val_views / bs) * cost.eval_s
             + SAVE_S_PER_EPOCH)
    return setup, cache, epoch


def plan(budget_s: float | None, device: str, image_sizes: Sequence[tuple[int, int]],
         cost: Callable[[Candidate], StepCost], batch_size: int = 4,
         ladder: Sequence[Candidate] | None = None, max_epochs: int = MAX_EPOCHS,
         min_epochs: int = MIN_EPOCHS, augment: bool = True) -> TrainPlan:
    """The best candidate that fits ``budget_s`` (None: the best one, ``max_epochs``).

    ``cost`` is called only for the candidates the walk reaches. Raises :class:`BudgetError`
    when even the cheapest candidate cannot train one epoch.
    """
    if not image_sizes:
        raise ValueError("no labelled photos to plan a training run for")
    if budget_s is not None and not budget_s > 0:
        raise ValueError(f"budget must be more than 0 s, got {budget_s}")
    ladder = list(ladder or default_ladder(device, image_sizes))
    if not ladder:
        raise ValueError("no candidate settings to plan with")
    best = None
    for cand in ladder:
        setup, cache, epoch = estimate(cand, cost(cand), image_sizes, batch_size, augment)
        fits = max_epochs if budget_s is None else min(
            max_epochs, math.floor((budget_s - setup - cache) / max(epoch, 1e-9)))
        best = (cand, setup, cache, epoch, fits)
        if fits >= min(min_epochs, max_epochs):
            break
    cand, setup, cache, epoch, fits = best
    if fits < 1:
        raise BudgetError(budget_s, setup + cache + epoch, device)
    return TrainPlan(cand.mode, cand.input_size, cand.crop, int(fits), batch_size, device,
                     budget_s, setup + cache + fits * epoch, setup, cache, epoch)


def plan_project(project, budget_s: float | None, device: str = "auto",
                 source: str = "teacher", batch_size: int = 4, mode: str | None = None,
                 input_size: int | None = None, crop: int | None = None,
                 cost: Callable[[Candidate], StepCost] | None = None,
                 box_loss: float = 0.0, members: int = 1) -> TrainPlan:
    """:func:`plan` for a project's photos with ``source`` masks, measured on ``device``
    (with the box terms' cost when ``box_loss`` > 0, and every decoder of ``members``)."""
    from ml.common.device import resolve_device
    from ml.training.data import labelled_keys

    dev = resolve_device(device).type
    sizes = [project.image_size(k) for k in labelled_keys(project, source)]
    if not sizes:
        raise ValueError(f"no photos with {source} masks to train on (run pseudo-labelling "
                         "first)")
    if crop is not None and crop < 0:  # crop=auto: the ladder holds what auto would pick
        crop = None
    ladder = restrict(default_ladder(dev, sizes), mode, input_size, crop)
    cost = cost or measured_costs(dev, project.num_classes, batch_size, box_loss, members)
    return plan(budget_s, dev, sizes, cost, batch_size, ladder)


def plan_budgets(project, budgets: Iterable[float | None], device: str = "auto",
                 source: str = "teacher", batch_size: int = 4,
                 cost: Callable[[Candidate], StepCost] | None = None, box_loss: float = 0.0,
                 members: int = 1) -> Iterator[tuple[float | None, TrainPlan | BudgetError]]:
    """(budget, its plan or its :class:`BudgetError`) for each budget, as each is planned.

    Each setting is measured once for all of them. Other errors (no photos to train on) raise.
    """
    from ml.common.device import resolve_device

    cost = cost or measured_costs(resolve_device(device).type, project.num_classes, batch_size,
                                  box_loss, members)
    for budget_s in budgets:
        try:
            yield budget_s, plan_project(project, budget_s, device, source, batch_size,
                                         cost=cost)
        except BudgetError as e:
            yield budget_s, e


def apply_plan(p: TrainPlan, student: StudentConfig, cfg: TrainConfig
               ) -> tuple[StudentConfig, TrainConfig]:
    """(student, train) configs with the plan's settings, the budget and the plan recorded."""
    student = replace(student, mode=p.mode, input_size=p.input_size)
    cfg = replace(cfg, crop=p.crop, epochs=p.epochs, batch_size=p.batch_size,
                  budget_s=float(p.budget_s or 0.0), budget_plan=p.to_dict())
    return student, cfg


def main(argv: list[str] | None = None) -> int:
    """Print a JSON line per budget: its plan or ``{"budget_s", "error"}``; exit 1 on any error.

    An error that is no budget's (no project, no photos to train on) is one ``{"error"}`` line.
    """
    ap = argparse.ArgumentParser(prog="python -m ml.training.budget",
                                 description=__doc__.splitlines()[0])
    ap.add_argument("project")
    ap.add_argument("--budget", action="append",
                    help=f"90s, 10m, 1h or {CONVERGED}; repeat it for a plan each, printed in "
                    "order; omitted: until converged")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--source", default="teacher")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--box-loss", type=float, default=0.0,
                    help="the run's box-loss weight: its terms cost step time")
    ap.add_argument("--members", type=int, default=1,
                    help="the run's decoders (StudentConfig.members): each costs step time")
    a = ap.parse_args(argv)
    failed = False
    try:
        from ml.project.store import Project

        budgets = [parse_budget_choice(b) for b in a.budget or [CONVERGED]]
        project = Project.open(a.project)
        for budget_s, p in plan_budgets(project, budgets, a.device, a.source, a.batch_size,
                                        box_loss=a.box_loss, members=a.members):
            if isinstance(p, BudgetError):
                failed = True
                print(json.dumps({"budget_s": budget_s, "error": str(p)}), flush=True)
            else:
                print(p.to_json(), flush=True)  # the GUI shows each as it comes
    except Exception as e:  # one line for the GUI, whatever went wrong
        print(json.dumps({"error": str(e)}), flush=True)
        return 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
