"""What a training run tells its caller: frozen event dataclasses and the run's result.

:meth:`ml.training.trainer.Trainer.fit` yields these; the worker process writes them as JSON lines
(:func:`to_json`) and the GUI reads them back (:func:`from_json`); the CLI, the GUI and the
benches match on their type, never on string keys. Kept free of torch so the GUI can import it.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.evaluation.free_threshold import MIN_PHOTOS


@dataclass(frozen=True)
class TrainResult:
    """How a run ended: where the model is, how far it got and what it scored."""

    out_dir: Path
    epochs_run: int
    best_epoch: int
    best_metric: float | None
    history: list[dict] = field(default_factory=list)
    stopped: bool = False
    trainable_params: int = 0
    seconds: float = 0.0
    early_stopped: bool = False
    cached: bool = False  # frozen-mode feature cache used
    epoch_chosen: bool = True  # False: too few validation photos to choose by, the last is kept

    def kept_line(self) -> str:
        """Which epoch the model folder holds and why, for the CLI and the Train panel."""
        best = "n/a" if self.best_metric is None else f"{self.best_metric:.3f}"
        if self.epoch_chosen:
            return f"best val anomaly mIoU {best} at epoch {self.best_epoch}"
        return (f"kept the last epoch ({self.best_epoch}, val anomaly mIoU {best}): under "
                f"{MIN_PHOTOS} validation photos, too few to choose an epoch by")


@dataclass(frozen=True)
class Setup:
    """The run is built: sizes, and where it starts (a resumed run starts past step 0)."""

    trainable_params: int
    total_params: int
    train_images: int
    val_images: int  # 0 when validating on the training images (too few labelled)
    val_on_train: bool
    epochs: int
    total_steps: int
    start_epoch: int
    start_step: int
    device: str
    caches_features: bool  # frozen mode: backbone features are computed once first


@dataclass(frozen=True)
class CacheProgress:
    """Backbone features of ``done`` of ``total`` views are cached."""

    done: int
    total: int


@dataclass(frozen=True)
class Step:
    """One optimiser step; ``eta_s`` from this session's pace (None before the first step)."""

    step: int  # global, 1-based: a resumed run continues the count
    total_steps: int
    epoch: int  # 1-based
    epochs: int
    loss: float
    loss_binary: float
    loss_fine: float
    corrected_frac: float
    lr: float
    eta_s: float | None
    loss_box: float = 0.0  # the box-consistency terms (0 when off)


@dataclass(frozen=True)
class Validation:
    """End of an epoch: the epoch's mean losses and the EMA model's validation scores."""

    epoch: int
    step: int
    total_steps: int
    loss: float
    loss_binary: float
    loss_fine: float
    corrected_frac: float
    lr: float
    val_anomaly_miou: float
    val_anomaly_f1: float
    val_binary_iou: float
    val_miou: float
    val_on_train: bool
    improved: bool
    train_seconds: float
    seconds: float
    loss_box: float = 0.0

    def history_entry(self) -> dict[str, Any]:
        """The row this epoch adds to the model card's history."""
        d = dataclasses.asdict(self)
        for k in ("step", "total_steps", "improved"):
            d.pop(k)
        return d


@dataclass(frozen=True)
class Checkpoint:
    """State saved after ``epoch``: ``path`` holds the resume state; ``best`` if it is the best."""

    epoch: int
    path: Path
    best: bool


@dataclass(frozen=True)
class Done:
    """The run ended by itself (all epochs, or early stopping)."""

    result: TrainResult


@dataclass(frozen=True)
class Stopped:
    """The caller asked to stop; the state is saved and ``--resume`` continues it."""

    result: TrainResult


@dataclass(frozen=True)
class Error:
    """The run failed; ``message`` is one line, ``details`` the traceback where there is one."""

    message: str
    details: str = ""

    @classmethod
    def from_exception(cls, e: BaseException, details: str = "") -> Error:
        return cls(f"{type(e).__name__}: {e}", details)


@dataclass(frozen=True)
class Note:
    """Something went wrong that does not stop training (e.g. the worker kept its priority)."""

    message: str


TrainEvent = (Setup | CacheProgress | Step | Validation | Checkpoint | Done | Stopped | Error
              | Note)
EVENT_TYPES: tuple[type, ...] = (Setup, CacheProgress, Step, Validation, Checkpoint, Done,
                                 Stopped, Error, Note)


def event_name(cls: type) -> str:
    """``CacheProgress`` -> ``cache_progress``: the ``event`` field of the JSON line."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", cls.__name__).lower()


_BY_NAME = {event_name(c): c for c in EVENT_TYPES}


def _plain(v: Any) -> Any:
    """JSON values: paths to str, NaN and inf to None, dataclasses to dicts."""
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return {f.name: _plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
    if isinstance(v, dict):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, Path):
        return str(v)
    return v


def to_json(event: TrainEvent) -> dict[str, Any]:
    """A JSON-ready dict with the event's name under ``event``."""
    return {"event": event_name(type(event)), **_plain(event)}


def _result(d: dict[str, Any]) -> TrainResult:
    names = {f.name for f in dataclasses.fields(TrainResult)}
    kw = {k: v for k, v in d.items() if k in names}
    return TrainResult(**{**kw, "out_dir": Path(kw["out_dir"])})


def from_json(d: dict[str, Any]) -> TrainEvent:
    """The event a :func:`to_json` dict describes; ValueError for an unknown or malformed one."""
    cls = _BY_NAME.get(str(d.get("event")))
    if cls is None:
        raise ValueError(f"unknown training event {d.get('event')!r}")
    kw = {f.name: d[f.name] for f in dataclasses.fields(cls) if f.name in d}
    if cls in (Done, Stopped):
        kw["result"] = _result(kw["result"])
    elif cls is Checkpoint:
        kw["path"] = Path(kw["path"])
    try:
        return cls(**kw)
    except TypeError as e:
        raise ValueError(f"malformed {event_name(cls)} event: {e}") from e
