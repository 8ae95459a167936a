"""Fit a training run to a wall-clock budget: backbone mode, input size, crop and epochs.

:func:`plan` is pure: from the photos' sizes and the time one step takes for each candidate
setting (``cost``; :func:`ml.training.step_cost.measured_costs` times a few steps on this machine)
it walks a ladder of candidates, best first, and takes the first that trains at least
``min_epochs`` epochs within the budget, else the one that trains the most. The walk skips
candidates too coarse for the project's thin defects: a typical thin defect (its width read
from the boxes and their masks, :mod:`ml.training.widths`) must stay two input pixels wide, and
the plan's ``reason`` says how wide it stays at the scale chosen. On a CPU every
candidate is the frozen backbone with the feature cache (the backbone runs once per view, then
only the decoder trains); on a GPU the ladder starts with the paper's settings (BitFit, 518 px).
The expected time counts the setup, the cache fill, every epoch's steps and validation, and
the checkpoints.

:func:`plan_project` takes a run's two configs and returns them planned (the plan recorded in
``TrainConfig.budget_plan``); ``b2p train --budget`` calls it, and the GUI asks
:mod:`app.workers.plan`, a child process running :func:`plan_budgets`, so torch never loads in
the GUI for it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from ml.student.config import StudentConfig, TrainConfig
from ml.training.step_cost import Candidate, StepCost, measured_costs
from ml.training.widths import MIN_THIN_PX, Widths, project_widths

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
    reason: str = ""  # why this scale and this setting (plans before round 13 have none)

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
        return cls(**{k: d[k] for k in cls.__dataclass_fields__ if k in d})

    @classmethod
    def of(cls, cfg: TrainConfig) -> TrainPlan | None:
        """The plan :func:`apply_plan` recorded in ``cfg`` (None: the run was not planned)."""
        return cls.from_dict(cfg.budget_plan) if cfg.budget_plan else None


class BudgetError(ValueError):
    """The budget is too small for one epoch; ``minimum_s`` is what the cheapest setting needs."""

    def __init__(self, budget_s: float, minimum_s: float, device: str, why: str = "") -> None:
        super().__init__(f"a budget of {format_duration(budget_s)} is too short: one epoch "
                         f"on {device} (with setup and feature cache) needs at least "
                         f"{format_duration(minimum_s)}" + (f" ({why})" if why else ""))
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


def candidate_scale(cand: Candidate, image_sizes: Sequence[tuple[int, int]]) -> float:
    """Input pixels per photo pixel of the median photo (w, h) trained at ``cand``."""
    from ml.student.crops import photo_scale

    return float(np.median([photo_scale((h, w), cand.input_size, cand.crop)
                            for w, h in image_sizes]))


def _setting(c: Candidate) -> str:
    """``336 px`` or ``224 px crops``, as a plan's reason names a candidate."""
    return f"{c.input_size} px" + (" crops" if c.crop else "")


def plan(budget_s: float | None, device: str, image_sizes: Sequence[tuple[int, int]],
         cost: Callable[[Candidate], StepCost], batch_size: int = 4,
         ladder: Sequence[Candidate] | None = None, max_epochs: int = MAX_EPOCHS,
         min_epochs: int = MIN_EPOCHS, augment: bool = True,
         widths: Widths | None = None) -> TrainPlan:
    """The best candidate that fits ``budget_s`` (None: the best one, ``max_epochs``).

    Only candidates at or above the ``widths``' scale floor are walked (a typical thin defect
    stays :data:`ml.training.widths.MIN_THIN_PX` wide at the input; where none is, the finest
    ones): the first that trains ``min_epochs`` is taken, else the one that trains the most.
    ``cost`` is called only for the candidates the walk reaches. Raises :class:`BudgetError`
    when none of them can train one epoch; the plan's ``reason`` says why it chose its scale.
    """
    if not image_sizes:
        raise ValueError("no labelled photos to plan a training run for")
    if budget_s is not None and not budget_s > 0:
        raise ValueError(f"budget must be more than 0 s, got {budget_s}")
    ladder = list(ladder or default_ladder(device, image_sizes))
    if not ladder:
        raise ValueError("no candidate settings to plan with")
    scales = {c: candidate_scale(c, image_sizes) for c in ladder}
    floor = widths.scale_floor if widths is not None else 0.0
    keep = [c for c in ladder if scales[c] >= floor] or [
        c for c in ladder if scales[c] == max(scales.values())]
    best = None
    for cand in keep:
        setup, cache, epoch = estimate(cand, cost(cand), image_sizes, batch_size, augment)
        fits = max_epochs if budget_s is None else min(
            max_epochs, math.floor((budget_s - setup - cache) / max(epoch, 1e-9)))
        # the most epochs; among those that train none, the cheapest (its epoch is the minimum)
        rank = (max(fits, 0), -(setup + cache + epoch))
        if best is None or rank > best[0]:
            best = (rank, cand, setup, cache, epoch, fits)
        if fits >= min(min_epochs, max_epochs):
            break
    _, cand, setup, cache, epoch, fits = best
    why = _reason(cand, scales, floor, widths, [c for c in ladder if c not in keep])
    if fits < 1:
        raise BudgetError(budget_s, setup + cache + epoch, device,
                          f"at {_setting(cand)}; {why}" if widths is not None else "")
    if budget_s is not None:
        enough = min(min_epochs, max_epochs)
        within = f"{enough} epochs in {format_duration(budget_s)}"
        why += (f"; the finest setting that trains {within}" if fits >= enough else
                f"; none that keeps them {MIN_THIN_PX:g} px wide trains {within}: this one "
                "trains the most")
    return TrainPlan(cand.mode, cand.input_size, cand.crop, int(fits), batch_size, device,
                     budget_s, setup + cache + fits * epoch, setup, cache, epoch, why)


def _reason(cand: Candidate, scales: dict[Candidate, float], floor: float,
            widths: Widths | None, coarser: Sequence[Candidate]) -> str:
    """Why ``cand``'s scale: how wide a typical thin defect stays at it, and what the coarser
    settings left out would have made of it."""
    scale = scales[cand]
    if widths is None or not widths.boxes:
        return f"{_setting(cand)}: {scale:.2f} input px per photo px" + (
            f" ({widths.describe()})" if widths is not None else "")
    thin = widths.thin_px
    text = f"{widths.describe()}; at {_setting(cand)} they stay {thin * scale:.1f} px wide"
    if scale < floor:
        text += f", under the {MIN_THIN_PX:g} px they need (nothing finer is on offer)"
    if coarser:
        worst = min(coarser, key=scales.get)
        text += f" (at {_setting(worst)}: {thin * scales[worst]:.1f} px)"
    return text


FIXABLE = ("mode", "input_size", "crop")  # the plan's settings a person may fix


def plan_project(project, student: StudentConfig, cfg: TrainConfig, budget_s: float | None,
                 source: str = "teacher", fixed: Iterable[str] = (),
                 cost: Callable[[Candidate], StepCost] | None = None,
                 keys: Iterable[str] | None = None) -> tuple[StudentConfig, TrainConfig]:
    """The two configs fitted to ``budget_s`` on the project's photos with ``source`` masks,
    the plan recorded in ``cfg.budget_plan`` (:meth:`TrainPlan.of`).

    ``fixed`` names the settings of :data:`FIXABLE` a person chose, which the plan keeps; the
    configs' device, batch size, box loss and members set what one step costs. ``keys``: the
    photos the run will train on, where that is not all of them (``make demo`` holds some out).
    """
    p = next(_plans(project, student, cfg, [budget_s], source, fixed, cost, refuse=True,
                    keys=keys))[1]
    return apply_plan(p, student, cfg)


def plan_budgets(project, student: StudentConfig, cfg: TrainConfig,
                 budgets: Iterable[float | None], source: str = "teacher",
                 cost: Callable[[Candidate], StepCost] | None = None
                 ) -> Iterator[tuple[float | None, TrainPlan | BudgetError]]:
    """(budget, its plan or its :class:`BudgetError`) for each budget, as each is planned.

    Each setting is measured once for all of them. Other errors (no photos to train on) raise.
    """
    yield from _plans(project, student, cfg, budgets, source, (), cost, refuse=False)


def _plans(project, student: StudentConfig, cfg: TrainConfig, budgets: Iterable[float | None],
           source: str, fixed: Iterable[str], cost: Callable[[Candidate], StepCost] | None,
           refuse: bool, keys: Iterable[str] | None = None
           ) -> Iterator[tuple[float | None, TrainPlan | BudgetError]]:
    """:func:`plan` for each budget on the project's photos with ``source`` masks, or on those
    of them in ``keys`` (a too-short budget raises its :class:`BudgetError` when ``refuse``,
    else is yielded)."""
    from ml.common.device import resolve_device
    from ml.training.data import labelled_keys

    fixed = set(fixed)
    if fixed - set(FIXABLE):
        raise ValueError(f"a plan keeps only {', '.join(FIXABLE)}, not {sorted(fixed)}")
    student.check()
    cfg.check()
    if student.arch != "b2p":
        raise ValueError(f"a budget plans the b2p student, not {student.arch}")
    dev = resolve_device(cfg.device).type
    only = None if keys is None else set(keys)
    keys = [k for k in labelled_keys(project, source) if only is None or k in only]
    sizes = [project.image_size(k) for k in keys]
    if not sizes:
        raise ValueError(f"no photos with {source} masks to train on (run pseudo-labelling "
                         "first)")
    keep = {"mode": student.mode, "input_size": student.input_size, "crop": cfg.crop}
    keep = {k: v for k, v in keep.items() if k in fixed}
    if keep.get("crop", 0) < 0:  # crop=auto: the ladder holds what auto would pick
        del keep["crop"]
    ladder = restrict(default_ladder(dev, sizes), **keep)
    widths = project_widths(project, keys, source)
    cost = cost or measured_costs(dev, project.num_classes, cfg.batch_size, cfg.box_loss,
                                  student.members)
    for budget_s in budgets:
        try:
            p = plan(budget_s, dev, sizes, cost, cfg.batch_size, ladder, augment=cfg.augment,
                     widths=widths)
        except BudgetError as e:
            if refuse:
                raise
            yield budget_s, e
        else:
            yield budget_s, p


def apply_plan(p: TrainPlan, student: StudentConfig, cfg: TrainConfig
               ) -> tuple[StudentConfig, TrainConfig]:
    """(student, train) configs with the plan's settings, the budget and the plan recorded."""
    student = replace(student, mode=p.mode, input_size=p.input_size)
    cfg = replace(cfg, crop=p.crop, epochs=p.epochs, batch_size=p.batch_size,
                  budget_s=float(p.budget_s or 0.0), budget_plan=p.to_dict())
    return student, cfg
