"""What a training run writes beside its weights, and reads back to resume.

:class:`SavedRun` is a mixin of :class:`ml.training.trainer.Trainer`: it writes the run's two model
folders (the best EMA weights with their card, and ``last/`` with the resume state: optimizer, raw
and EMA weights, scheduler, epoch, counters, history, RNG) and restores a trainer from ``last/``.
The folder layout and file formats belong to :mod:`ml.student.checkpoint`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from ml import __version__
from ml.student import checkpoint
from ml.student.checkpoint import LAST_NAME as LAST
from ml.student.checkpoint import ModelFolder
from ml.student.config import ModelCard, backbone_label

if TYPE_CHECKING:
    import numpy as np
    from timm.utils.model_ema import ModelEmaV3

    from ml.project.store import Project
    from ml.student.config import StudentConfig, TrainConfig

def load_train_state(run: str | Path | ModelFolder) -> dict[str, Any]:
    """The resume state beside the run's last checkpoint: ``optimizer`` plus our
    ``extra_state``."""
    run = run if isinstance(run, ModelFolder) else ModelFolder(run)
    state = run.last.train_state
    if state is None:
        raise FileNotFoundError(f"{run.last.path}: nothing to resume (train without "
                                "--resume first)")
    return state


class SavedRun:
    """Writing and restoring a trainer's state; the trainer owns the attributes below."""

    project: Project
    out_dir: Path
    student: StudentConfig
    cfg: TrainConfig
    model: torch.nn.Module
    ema: ModelEmaV3
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    rng: np.random.Generator
    start_epoch: int
    global_step: int
    history: list[dict]
    best_metric: float | None
    best_epoch: int

    def _resume(self, st: dict[str, Any]) -> None:
        """Optimizer, EMA, schedule, counters and RNG from the saved state."""
        checkpoint.load_state(self.ema.module, st["ema"]["model"], "EMA state")
        if st.get("optimizer") is not None:
            self.opt.load_state_dict(st["optimizer"])
        self.sched.load_state_dict(st["scheduler"])
        self.start_epoch = int(st["epoch"])
        self.global_step = int(st.get("global_step", 0))
        self.history = list(st.get("history", []))
        self.best_metric = st.get("best_metric")
        self.best_epoch = int(st.get("best_epoch", 0))
        self.free_threshold = dict(st.get("free_threshold") or {})
        rng = st.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "numpy" in rng:
            self.rng.bit_generator.state = rng["numpy"]

    def _card(self, epoch: int, best: bool) -> ModelCard:
        return ModelCard(self.student, self.cfg, [c.to_json() for c in self.project.classes],
                         backbone_label(self.student.backbone_weights),
                         self.best_epoch if best else epoch, self.best_metric,
                         list(self.history), __version__,
                         thin_widths=dict(getattr(self, "thin_widths", {})),
                         free_threshold=dict(getattr(self, "free_threshold", {})),
                         region_classes=list(getattr(self, "region_classes", [])))

    def _write(self, epoch: int, improved: bool) -> None:
        """``last/`` with the resume state; the best folder when ``improved`` (else its card)."""
        rng = {"torch": torch.get_rng_state(), "numpy": self.rng.bit_generator.state}
        extra = {"epoch": epoch, "global_step": self.global_step,
                 "raw_model": checkpoint.saved_state(self.model),
                 # as a checkpoint: what the backbone's weights file holds is left out
                 "ema": {"model": checkpoint.saved_state(self.ema.module),
                         "updates": self.global_step},
                 "scheduler": self.sched.state_dict(), "history": self.history,
                 "best_metric": self.best_metric, "best_epoch": self.best_epoch, "rng": rng,
                 "free_threshold": dict(getattr(self, "free_threshold", {}))}
        checkpoint.save_checkpoint(self.out_dir / LAST, self.ema.module, self._card(epoch, False),
                                   optimizer_state=self.opt.state_dict(), extra_state=extra)
        if improved or not checkpoint.is_model(self.out_dir):
            checkpoint.save_checkpoint(self.out_dir, self.ema.module, self._card(epoch, True))
        else:  # same best weights; the card gains this epoch's history
            checkpoint.save_card(self.out_dir, self._card(epoch, True))
