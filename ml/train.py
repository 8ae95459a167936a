"""Training the student on a project's masks (``b2p train``, the GUI's Retrain).

AdamW on the trainable parameters, cosine learning rate per step, gradient clipping, an EMA of
the weights (the EMA model is validated and saved), early stopping on validation anomaly mIoU,
bf16 autocast on CUDA. In ``frozen`` mode the backbone features of every fixed view are computed
once (:class:`FeatureCache`) and only the decoder runs per step.

Output folder (layout and format: ``ml/checkpoint.py``): the best EMA weights and their card
(what ``ml.checkpoint.load_model`` and prediction read); ``last/`` holds the latest state with
the resume state (optimizer, raw and EMA weights, scheduler, epoch, RNG) for ``resume``.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__, checkpoint, models
from . import data as D
from .checkpoint import LAST_NAME as LAST
from .config import ModelCard, StudentConfig, TrainConfig
from .losses import B2PLoss
from .metrics import confusion, scores
from .progress import Progress, ProgressFn, Reporter, StopFn
from .store import Project

_BACKBONE_SOURCES = {"official": "official Meta DINOv2 ViT-S/14",
                     "offline": "offline DINOv2 ViT-S/14 (converted)", "none": "random init"}


@dataclass
class TrainResult:
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


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available; asking for CUDA without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for but is not available (use --device cpu)")
    if name not in ("cpu", "cuda"):
        raise ValueError(f"unknown device '{name}' (auto, cpu, cuda)")
    return torch.device(name)


def cosine_lambda(total_steps: int):
    """Per-step learning-rate factor: half a cosine from 1 to 0 over ``total_steps``."""
    def f(step: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
    return f


def _finite(v: float | None) -> float:
    return 0.0 if v is None or math.isnan(v) else float(v)


def load_train_state(model_dir: str | Path) -> dict[str, Any]:
    """The resume state beside the last checkpoint: ``optimizer`` plus our ``extra_state``."""
    state = checkpoint.load_train_state(Path(model_dir) / LAST)
    if state is None:
        raise FileNotFoundError(f"{Path(model_dir) / LAST}: nothing to resume (train without "
                                "--resume first)")
    return state


class Ema:
    """Exponential moving average of a model's trainable weights and floating buffers.

    The decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so a short
    run (a few hundred steps on a small project) is not dominated by the initial weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.model = copy.deepcopy(model).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.decay, self.updates = decay, 0
        self._names = [n for n, p in model.named_parameters() if p.requires_grad]

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.updates += 1
        w = 1.0 - min(self.decay, (1 + self.updates) / (10 + self.updates))
        mine, src = dict(self.model.named_parameters()), dict(model.named_parameters())
        for n in self._names:
            mine[n].lerp_(src[n].detach(), w)
        for b, sb in zip(self.model.buffers(), model.buffers(), strict=True):
            if b.dtype.is_floating_point:
                b.lerp_(sb, w)
            else:
                b.copy_(sb)

    def state_dict(self) -> dict[str, Any]:
        # as a checkpoint: what the backbone's weights file holds is left out
        return {"model": checkpoint.saved_state(self.model), "updates": self.updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        checkpoint.load_state(self.model, state["model"], "EMA state")
        self.updates = int(state["updates"])


class _Run:
    """One training run: holds the model, optimiser, data and bookkeeping between epochs."""

    def __init__(self, project: Project, out_dir: Path, student: StudentConfig,
                 cfg: TrainConfig, mask_source: str, labels: dict | None, loss_kind: str,
                 progress: ProgressFn | None, should_stop: StopFn | None) -> None:
        self.project, self.out_dir, self.student, self.cfg = project, out_dir, student, cfg
        self.progress = progress
        self.should_stop = should_stop or (lambda: False)
        self.device = resolve_device(cfg.device)
        self.amp = cfg.amp and self.device.type == "cuda"
        self.num_classes = student.num_classes
        self.loss = B2PLoss(cfg, self.num_classes, loss_kind)
        self.history: list[dict] = []
        self.best_metric: float | None = None
        self.best_epoch = 0
        self.start_epoch = 0
        self.global_step = 0
        self.rng = np.random.default_rng(cfg.seed)
        self.cache: D.FeatureCache | None = None
        self._data(mask_source, labels)

    # ------------------------------------------------------------ setup
    def _data(self, source: str, labels: dict | None) -> None:
        keys = D.labelled_keys(self.project, source, labels)
        if not keys:
            raise ValueError(f"no images with {source if labels is None else 'given'} masks "
                             "to train on (run pseudo-labelling first)")
        self.train_keys, val_keys = D.split_keys(self.project, keys, self.cfg.val_fraction,
                                                 self.cfg.seed)
        self.val_on_train = not val_keys
        self.val_keys = val_keys or self.train_keys
        long_side = D.cache_long_side(self.student.input_size, self.cfg.crop)
        self.samples = D.load_samples(self.project, keys, source, labels, long_side,
                                      self.num_classes)
        self.val_views = D.fixed_views(self.samples, self.val_keys, self.cfg.crop)
        self.val_set = D.FixedViews(self.samples, self.val_views, self.student.input_size)
        # Random crops: as many per epoch as a grid would give, so epochs compare across modes.
        n_train = len(D.fixed_views(self.samples, self.train_keys, self.cfg.crop))
        self.train_set = D.RandomViews(self.samples, self.train_keys, self.student.input_size,
                                       self.cfg.crop, self.cfg.augment, n_train, self.rng)

    def build_model(self, init_from: Path | None, state: dict | None) -> None:
        """The model, with weights from ``state`` (resume) or ``init_from`` when given."""
        torch.manual_seed(self.cfg.seed)
        from_file = state is not None or init_from is not None
        # Weights that come from a model folder: it names the backbone file it needs.
        self.model = models.build_model(replace(self.student, backbone_weights="none")
                                        if from_file else self.student)
        if state is not None:  # before the feature cache: its backbone must be the saved one
            checkpoint.load_weights(self.model, self.out_dir / LAST, state["raw_model"])
        elif init_from is not None:
            self._init_from(Path(init_from))
        self.model.to(self.device)
        self.trainable, self.total = models.count_parameters(self.model)

    def build_optimizer(self) -> None:
        """AdamW, the per-step cosine schedule and the EMA; after the cache sets the epoch."""
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=self.cfg.lr,
                                     weight_decay=self.cfg.weight_decay)
        self.n_items = self.cache.train_count if self.cache is not None else len(self.train_set)
        self.total_steps = math.ceil(self.n_items / self.cfg.batch_size) * self.cfg.epochs
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt,
                                                       cosine_lambda(self.total_steps))
        self.ema = Ema(self.model, self.cfg.ema)

    def _init_from(self, src: Path) -> None:
        card = checkpoint.load_card(src)
        if (card.student.arch, card.student.num_classes) != (self.student.arch,
                                                             self.num_classes):
            raise ValueError(f"{src}: model is {card.student.arch} with "
                             f"{card.student.num_classes} classes; cannot fine-tune it as "
                             f"{self.student.arch} with {self.num_classes}")
        checkpoint.load_weights(self.model, src)

    def resume(self, state: dict[str, Any]) -> None:
        """Optimizer, EMA, schedule, counters and RNG from the saved state."""
        st = state
        self.ema.load_state_dict(st["ema"])
        if st.get("optimizer") is not None:
            self.opt.load_state_dict(st["optimizer"])
        self.sched.load_state_dict(st["scheduler"])
        self.start_epoch = int(st["epoch"])
        self.global_step = int(st.get("global_step", 0))
        self.history = list(st.get("history", []))
        self.best_metric = st.get("best_metric")
        self.best_epoch = int(st.get("best_epoch", 0))
        rng = st.get("rng", {})
        if "torch" in rng:
            torch.set_rng_state(rng["torch"])
        if "numpy" in rng:
            self.rng.bit_generator.state = rng["numpy"]

    # ------------------------------------------------------------ steps
    def _emit(self, done: int, total: int, message: str, **extra: Any) -> None:
        if self.progress is not None:
            self.progress(Progress(done, total, message, extra))

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp)

    def _batch(self, idx: list[int]) -> tuple[list | None, torch.Tensor, torch.Tensor]:
        if self.cache is not None:
            return self.cache.batch(idx, self.device)
        x, y = D.collate([self.train_set[i] for i in idx])
        return None, x.to(self.device), y.to(self.device)

    def _forward(self, model, feats, x) -> dict[str, torch.Tensor]:
        with self._autocast():
            return model.decode(feats, x) if feats is not None else model(x)

    def train_step(self, idx: list[int], epoch: int) -> dict[str, float]:
        self.model.train()
        feats, x, y = self._batch(idx)
        out = self._forward(self.model, feats, x)
        loss, parts = self.loss(out, y, epoch)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grad_clip)
        self.opt.step()
        self.sched.step()
        self.ema.update(self.model)
        self.global_step += 1
        return {"loss": float(loss.detach()), **parts}

    @torch.no_grad()
    def validate(self) -> dict[str, Any]:
        model = self.ema.model
        model.eval()
        cm = np.zeros((self.num_classes, self.num_classes), np.int64)
        bs = self.cfg.batch_size
        for i in range(0, len(self.val_views), bs):
            views = self.val_views[i:i + bs]
            if self.cache is not None:
                feats, x, y = self.cache.batch([self.cache.index[v] for v in views], self.device)
            else:
                x, y = D.collate([self.val_set[j] for j in range(i, i + len(views))])
                feats, x = None, x.to(self.device)
            pred = self._forward(model, feats, x)["fine"].argmax(1)
            cm += confusion(pred, y, self.num_classes)
        return scores(cm, self.project.class_names()[: self.num_classes])

    # ------------------------------------------------------------ saving
    def card(self, epoch: int, best: bool) -> ModelCard:
        return ModelCard(self.student, self.cfg, [c.to_json() for c in self.project.classes],
                         _BACKBONE_SOURCES.get(self.student.backbone_weights,
                                               self.student.backbone_weights),
                         self.best_epoch if best else epoch, self.best_metric,
                         list(self.history), __version__)

    def save(self, epoch: int, improved: bool) -> None:
        rng = {"torch": torch.get_rng_state(), "numpy": self.rng.bit_generator.state}
        extra = {"epoch": epoch, "global_step": self.global_step,
                 "raw_model": checkpoint.saved_state(self.model), "ema": self.ema.state_dict(),
                 "scheduler": self.sched.state_dict(), "history": self.history,
                 "best_metric": self.best_metric, "best_epoch": self.best_epoch, "rng": rng}
        checkpoint.save_checkpoint(self.out_dir / LAST, self.ema.model, self.card(epoch, False),
                                   optimizer_state=self.opt.state_dict(), extra_state=extra)
        if improved or not checkpoint.is_model(self.out_dir):
            checkpoint.save_checkpoint(self.out_dir, self.ema.model, self.card(epoch, True))
        else:  # same best weights; the card gains this epoch's history
            checkpoint.save_card(self.out_dir, self.card(epoch, True))


def train(project: Project, out_dir: str | Path, student: StudentConfig, cfg: TrainConfig,
          mask_source: str = "teacher", labels: dict[str, np.ndarray] | None = None,
          resume: bool = False, init_from: Path | None = None,
          progress: ProgressFn | None = None, should_stop: StopFn | None = None,
          loss_kind: str | None = None) -> TrainResult:
    """Train a student on ``project``'s masks into ``out_dir``; see the module docstring.

    ``labels`` (key -> label map) replaces the project's masks (oracle runs). ``resume``
    continues ``out_dir/last`` from its epoch (its student config wins, so the weights fit;
    ``cfg.epochs`` may be raised). ``init_from`` fine-tunes from a trained model folder.
    ``loss_kind`` overrides ``cfg.loss`` ("ce": plain cross-entropy, the U-Net baseline).
    """
    t0 = time.monotonic()
    out_dir = Path(out_dir)
    if resume:
        student = checkpoint.load_card(out_dir / LAST).student
    student = replace(student, num_classes=student.num_classes or project.num_classes)
    if student.num_classes != project.num_classes and labels is None:
        raise ValueError(f"student has {student.num_classes} classes, project "
                         f"{project.num_classes}")
    run = _Run(project, out_dir, student, cfg, mask_source, labels, loss_kind or cfg.loss, progress,
               should_stop)
    state = load_train_state(out_dir) if resume else None
    run.build_model(init_from, state)
    run._emit(0, 0, f"trainable {run.trainable:,} / total {run.total:,} params", phase="setup",
              trainable_params=run.trainable, total_params=run.total,
              val_on_train=run.val_on_train, train_images=len(run.train_keys),
              val_images=0 if run.val_on_train else len(run.val_keys))
    stopped = not _fill_cache(run)
    run.build_optimizer()
    if state is not None:
        run.resume(state)
    epoch, early = run.start_epoch, False
    if not stopped:
        epoch, stopped, early = _epochs(run)
    if stopped:
        run.save(epoch, improved=False)
    return TrainResult(out_dir, epoch, run.best_epoch, run.best_metric, run.history, stopped,
                       run.trainable, time.monotonic() - t0, early, run.cache is not None)


def _fill_cache(run: _Run) -> bool:
    """Frozen mode: encode every fixed view once. False if the caller asked to stop meanwhile."""
    if run.student.mode != "frozen" or not getattr(run.model, "features_cacheable", False):
        return True
    views = D.fixed_views(run.samples, run.train_keys, run.cfg.crop, flips=run.cfg.augment)
    known = set(views)
    cache = D.FeatureCache(run.samples, views + [v for v in run.val_views if v not in known],
                           run.student.input_size)

    def tick(done: int, total: int) -> None:
        run._emit(done, total, "caching backbone features", phase="cache")

    if not cache.fill(run.model, run.device, run.cfg.batch_size, run._autocast, tick,
                      run.should_stop):
        return False
    cache.train_count = len(views)  # the first views are the training ones
    run.cache = cache
    return True


def _epochs(run: _Run) -> tuple[int, bool, bool]:
    """Run epochs until the end, early stopping or a stop request: (epochs done, stopped, early)."""
    cfg = run.cfg
    rep = Reporter(run.total_steps, run.progress, run.should_stop)
    rep.done = run.global_step
    n_items = run.n_items
    for epoch in range(run.start_epoch, cfg.epochs):
        t_epoch = time.monotonic()
        order = run.rng.permutation(n_items).tolist()
        sums: dict[str, float] = {}
        n = 0
        for i in range(0, n_items, cfg.batch_size):
            if rep.stopped():
                return epoch, True, False
            parts = run.train_step(order[i:i + cfg.batch_size], epoch)
            n += 1
            for k, v in parts.items():
                sums[k] = sums.get(k, 0.0) + v
            lr = run.sched.get_last_lr()[0]
            rep.step(1, f"epoch {epoch + 1}/{cfg.epochs}", epoch=epoch + 1, phase="train",
                     loss=parts["loss"], loss_binary=parts["binary"], loss_fine=parts["fine"],
                     corrected_frac=parts["corrected_frac"], lr=lr)
        train_s = time.monotonic() - t_epoch
        m = run.validate()
        metric = _finite(m["anomaly_miou"])
        improved = run.best_metric is None or metric > run.best_metric
        if improved:
            run.best_metric, run.best_epoch = metric, epoch + 1
        avg = {k: v / max(n, 1) for k, v in sums.items()}
        entry = {"epoch": epoch + 1, "loss": avg.get("loss", 0.0),
                 "loss_binary": avg.get("binary", 0.0), "loss_fine": avg.get("fine", 0.0),
                 "corrected_frac": avg.get("corrected_frac", 0.0), "lr": lr,
                 "val_anomaly_miou": metric, "val_anomaly_f1": _finite(m["anomaly_f1"]),
                 "val_binary_iou": _finite(m["binary_iou"]), "val_miou": _finite(m["miou"]),
                 "val_on_train": run.val_on_train, "train_seconds": train_s,
                 "seconds": time.monotonic() - t_epoch}
        run.history.append(entry)
        shown = {k: v for k, v in entry.items() if k not in ("seconds", "train_seconds")}
        run._emit(rep.done, rep.total, f"epoch {epoch + 1}: val anomaly mIoU {metric:.3f}",
                  **shown, phase="val")
        run.save(epoch + 1, improved)
        if epoch + 1 - run.best_epoch >= cfg.patience:
            return epoch + 1, False, True
    return max(cfg.epochs, run.start_epoch), False, False
