"""Training the student on a project's masks (``b2p train``, the GUI's Retrain).

AdamW on the trainable parameters, cosine learning rate per step, gradient clipping, an EMA of
the weights (timm's ``ModelEmaV3``; the EMA model is validated and saved), early stopping on
validation anomaly mIoU (on 5 validation photos or more; on fewer the last epoch is kept),
bf16 autocast on CUDA. In ``frozen`` mode the backbone features of
every fixed view are computed once (:class:`FeatureCache`) and only the decoder runs per step.

:class:`Trainer` builds the run (data, model, optimiser, schedule, EMA; a resumed run loads its
state) and :meth:`Trainer.fit` yields typed events (:mod:`ml.training.events`) while it trains;
:func:`train` drives it for callers that only want the result.

Output folder (layout and format: ``ml/student/checkpoint.py``): the best EMA weights and their card
(what ``ml.student.checkpoint.load_model`` and prediction read); ``last/`` holds the latest state
with the resume state (optimizer, raw and EMA weights, scheduler, epoch, RNG) for ``resume``
(written and read back by :class:`ml.training.state.SavedRun`).

Under ``torchrun`` (``b2p train --ddp``) the same loop trains data-parallel: a process group is
up, and :mod:`ml.training.distributed` shares the items, wraps the student in DDP, sums validation
and lets rank 0 alone write (its docstring lists the choices).
"""

from __future__ import annotations

import math
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from timm.utils.model_ema import ModelEmaV3

from ml.common.device import resolve_device
from ml.common.progress import StopFn
from ml.evaluation.free_threshold import MIN_PHOTOS, ScoreCurve
from ml.evaluation.metrics import confusion, scores
from ml.project.store import Project
from ml.student import checkpoint, models
from ml.student.checkpoint import LAST_NAME as LAST
from ml.student.config import SHAPE_FIELDS, StudentConfig, TrainConfig
from ml.student.crops import cache_long_side, resolve_crop
from ml.training import data as D
from ml.training import distributed as dist
from ml.training.box_loss import BoxLoss
from ml.training.events import (
    CacheProgress,
    Checkpoint,
    Done,
    Error,
    Setup,
    Step,
    Stopped,
    TrainEvent,
    TrainResult,
    Validation,
)
from ml.training.losses import B2PLoss
from ml.training.members import member_subsets
from ml.training.state import SavedRun, load_train_state
from ml.training.step import apply_gradients, training_loss
from ml.training.widths import class_shapes


def cosine_lambda(total_steps: int):
    """Per-step learning-rate factor: half a cosine from 1 to 0 over ``total_steps``."""
    def f(step: int) -> float:
        return 0.5 * (1.0 + math.cos(math.pi * min(step, total_steps) / max(total_steps, 1)))
    return f


def _finite(v: float | None) -> float:
    return 0.0 if v is None or math.isnan(v) else float(v)


class Trainer(SavedRun):
    """One training run. ``__init__`` builds everything; :meth:`fit` trains and yields events.

    ``labels`` (key -> label map) replaces the project's masks (oracle runs). ``resume``
    continues ``out_dir/last`` from its epoch (its student config wins, so the weights fit;
    ``cfg.epochs`` may be raised). ``init_from`` fine-tunes from a trained model folder.
    ``loss_kind`` overrides ``cfg.loss`` ("ce": plain cross-entropy, the U-Net baseline).
    """

    def __init__(self, project: Project, out_dir: str | Path, student: StudentConfig,
                 cfg: TrainConfig, mask_source: str = "teacher",
                 labels: dict[str, np.ndarray] | None = None, resume: bool = False,
                 init_from: Path | None = None, loss_kind: str | None = None,
                 should_stop: StopFn | None = None) -> None:
        self.project, self.out_dir, self.cfg = project, Path(out_dir), cfg
        self.run = checkpoint.ModelFolder(self.out_dir)  # opened once: card, weights, state
        self.should_stop = should_stop or (lambda: False)
        state = load_train_state(self.run) if resume else None
        if resume:
            student = self.run.last.card.student
        student = replace(student, num_classes=student.num_classes or project.num_classes)
        if student.num_classes != project.num_classes and labels is None:
            raise ValueError(f"student has {student.num_classes} classes, project "
                             f"{project.num_classes}")
        self.student, self.num_classes = student, student.num_classes
        self.dist = dist.current()  # a process group is up: train data-parallel (ml/distributed)
        self.device = self.dist.device if self.dist.active else resolve_device(cfg.device)
        self.cfg = replace(self.cfg, world_size=self.dist.world)
        self.amp = cfg.amp and self.device.type == "cuda"
        self.loss = B2PLoss(cfg, self.num_classes, loss_kind or cfg.loss)
        self.box_loss = BoxLoss(cfg) if cfg.box_loss > 0 else None
        self.history: list[dict] = []
        self.best_metric: float | None = None
        self.best_epoch = 0
        self.free_threshold: dict = {}  # the best epoch's box-free threshold (its card's)
        self.start_epoch = 0
        self.global_step = 0
        self.rng = np.random.default_rng(cfg.seed)
        self.cache: D.FeatureCache | None = None
        self._data(mask_source, labels)
        self._build_model(init_from, state)
        self._build_optimizer()
        if state is not None:
            self._resume(state)
        self.result: TrainResult | None = None

    # ------------------------------------------------------------ setup
    def _data(self, source: str, labels: dict | None) -> None:
        keys = D.labelled_keys(self.project, source, labels)
        if not keys:
            raise ValueError(f"no images with {source if labels is None else 'given'} masks "
                             "to train on (run pseudo-labelling first)")
        self.train_keys, val_keys = D.split_keys(self.project, keys, self.cfg.val_fraction,
                                                 self.cfg.seed, save=self.dist.is_main)
        self.val_on_train = not val_keys
        self.val_keys = val_keys or self.train_keys
        # an epoch (and its box-free threshold) is chosen on MIN_PHOTOS validation photos or more;
        # on 1-3 the chosen epoch lost to the last in 12 of 15 students (docs/RESULTS.md, 17)
        self.choose_epoch = not self.val_on_train and len(val_keys) >= MIN_PHOTOS
        # the classes the teacher traced as lines (how wide) and as blobs: the card tells them
        self.thin_widths, self.region_classes = class_shapes(self.project, self.train_keys)
        # the card records the crop this run used, so prediction sees the same pixel scale
        sizes = [(r.height, r.width) for r in map(self.project.record, self.train_keys)]
        self.cfg = replace(self.cfg, crop=resolve_crop(self.cfg.crop, self.student.input_size,
                                                       sizes))
        long_side = cache_long_side(self.student.input_size, self.cfg.crop)
        self.samples = D.load_samples(self.project, keys, source, labels, long_side,
                                      self.num_classes, confidence=self.cfg.teacher_confidence)
        self.val_views = D.fixed_views(self.samples, self.val_keys, self.cfg.crop)
        self.val_share = self.dist.share(len(self.val_views))  # the views this rank scores
        self.val_set = D.FixedViews(self.samples, self.val_views, self.student.input_size)
        # Random crops: as many per epoch as a grid would give, so epochs compare across modes.
        n_train = len(D.fixed_views(self.samples, self.train_keys, self.cfg.crop))
        self.train_set = D.RandomViews(self.samples, self.train_keys, self.student.input_size,
                                       self.cfg.crop, self.cfg.augment, n_train, self.rng,
                                       with_boxes=self.box_loss is not None)

    def _build_model(self, init_from: Path | None, state: dict | None) -> None:
        """The model, with weights from ``state`` (resume) or ``init_from`` when given."""
        torch.manual_seed(self.cfg.seed)
        from_file = state is not None or init_from is not None
        # Weights that come from a model folder: it names the backbone file it needs.
        self.model = models.build_model(replace(self.student, backbone_weights="none")
                                        if from_file else self.student)
        if state is not None:  # before the feature cache: its backbone must be the saved one
            self.run.last.load_weights(self.model, state["raw_model"])
        elif init_from is not None:
            self._init_from(checkpoint.ModelFolder(init_from))
        self.model.to(self.device)
        self.trainable, self.total = models.count_parameters(self.model)
        self.caches_features = (self.student.mode == "frozen"
                                and getattr(self.model, "features_cacheable", False))
        if self.caches_features:  # training views first, then the validation views not among them
            views = D.fixed_views(self.samples, self.train_keys, self.cfg.crop,
                                  flips=self.cfg.augment)  # DDP: each rank caches its share
            self.cache_train_views = [views[i] for i in self.dist.share(len(views), True,
                                                                        self.cfg.seed)]
            known = set(self.cache_train_views)
            self._cache_views = self.cache_train_views + [
                v for v in (self.val_views[i] for i in self.val_share) if v not in known]

    def _build_optimizer(self) -> None:
        """AdamW, the per-step cosine schedule and the EMA."""
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.opt = torch.optim.AdamW(self.params, lr=self.cfg.lr,
                                     weight_decay=self.cfg.weight_decay)
        self.n_items = (len(self.cache_train_views) if self.caches_features
                        else len(self.train_set))
        self.sampler = None if self.caches_features else self.dist.sampler(self.n_items,
                                                                           self.cfg.seed)
        self.n_items = len(self.sampler) if self.sampler is not None else self.n_items
        self.net = self.dist.wrap(self.model)  # step(feats, x); DDP when a group is up
        self.member_keep = None  # (members, items): which items each decoder learns from
        if self.student.members > 1:
            items = ([v.key for v in self.cache_train_views] if self.caches_features else
                     [self.train_set.keys[i % len(self.train_set.keys)]
                      for i in range(len(self.train_set))])
            self.member_keep = torch.from_numpy(member_subsets(
                items, self.student.members, self.cfg.val_fraction, self.cfg.seed))
        self.total_steps = math.ceil(self.n_items / self.cfg.batch_size) * self.cfg.epochs
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt,
                                                       cosine_lambda(self.total_steps))
        # The decay warms up as 1 - 1 / (1 + n / 10) after n steps (timm's warmup with gamma 10,
        # power 1), so a short run on a small project is not dominated by the initial weights.
        self.ema = ModelEmaV3(self.model, decay=self.cfg.ema, use_warmup=True,
                              warmup_gamma=10.0, warmup_power=1.0)

    def _init_from(self, src: checkpoint.ModelFolder) -> None:
        card = src.card
        differ = [f"{name} {getattr(card.student, name)!r} (asked: "
                  f"{getattr(self.student, name)!r})" for name in SHAPE_FIELDS
                  if getattr(card.student, name) != getattr(self.student, name)]
        if differ:
            raise ValueError(f"{src.path}: cannot fine-tune a model built otherwise: "
                             f"{'; '.join(differ)}. Keep the model's settings or train anew")
        src.load_weights(self.model)

    # ------------------------------------------------------------ the run
    def fit(self) -> Iterator[TrainEvent]:
        """Train to the end, early stopping or a stop request, yielding what happens.

        Ends with :class:`Done` or :class:`Stopped` (``self.result`` is then set); a failure
        yields :class:`Error` and raises.
        """
        t0 = time.monotonic()
        try:
            yield Setup(self.trainable, self.total, len(self.train_keys),
                        0 if self.val_on_train else len(self.val_keys), self.val_on_train,
                        self.cfg.epochs, self.total_steps, self.start_epoch, self.global_step,
                        str(self.device), bool(self.caches_features))
            stopped = False
            if self.caches_features:
                stopped = yield from self._fill_cache()
            epoch, early = self.start_epoch, False
            stopped = self.dist.any(stopped)
            if not stopped:
                epoch, stopped, early = yield from self._epochs()
            if stopped:
                yield self._save(epoch, improved=False)
            self.result = TrainResult(self.out_dir, epoch, self.best_epoch, self.best_metric,
                                      list(self.history), stopped, self.trainable,
                                      time.monotonic() - t0, early, self.cache is not None,
                                      self.choose_epoch)
            yield Stopped(self.result) if stopped else Done(self.result)
        except Exception as e:
            yield Error.from_exception(e, traceback.format_exc())
            raise

    def _fill_cache(self) -> Iterator[TrainEvent]:
        """Frozen mode: encode every fixed view once. Returns True if asked to stop meanwhile."""
        cache = D.FeatureCache(self.samples, self._cache_views, self.student.input_size,
                               with_boxes=self.box_loss is not None)
        for done, total in cache.fill(self.model, self.device, self.cfg.batch_size,
                                      self._autocast):
            yield CacheProgress(done, total)
            if done < total and self.should_stop():
                return True
        cache.train_count = len(self.cache_train_views)
        self.cache = cache
        return False

    def _epochs(self) -> Iterator[TrainEvent]:
        """Epochs until the end, early stopping or a stop request; returns (epoch, stopped, early).

        The ETA comes from this session's steps and time, so a resumed run's is right too.
        """
        cfg = self.cfg
        t_start, session_steps = time.monotonic(), 0
        for epoch in range(self.start_epoch, cfg.epochs):
            t_epoch = time.monotonic()
            order = self._order(epoch)
            sums: dict[str, float] = {}
            n = 0
            for i in range(0, self.n_items, cfg.batch_size):
                if self.dist.any(self.should_stop()):
                    return epoch, True, False
                parts = self._train_step(order[i:i + cfg.batch_size], epoch)
                n += 1
                session_steps += 1
                for k, v in parts.items():
                    sums[k] = sums.get(k, 0.0) + v
                lr = self.sched.get_last_lr()[0]
                rate = (time.monotonic() - t_start) / session_steps
                yield Step(self.global_step, self.total_steps, epoch + 1, cfg.epochs,
                           parts["loss"], parts["binary"], parts["fine"],
                           parts["corrected_frac"], lr,
                           rate * max(self.total_steps - self.global_step, 0),
                           loss_box=parts.get("box", 0.0))
            train_s = time.monotonic() - t_epoch
            m = self._validate()
            metric = _finite(m["anomaly_miou"])
            # too few validation photos to choose an epoch by: each epoch replaces the kept one
            improved = (not self.choose_epoch or self.best_metric is None
                        or metric > self.best_metric)
            if improved:
                self.best_metric, self.best_epoch = metric, epoch + 1
                chosen = m["curve"].choice() if self.choose_epoch else None
                self.free_threshold = chosen.to_json() if chosen else {}
            avg = {k: v / max(n, 1) for k, v in sums.items()}
            val = Validation(epoch + 1, self.global_step, self.total_steps,
                             avg.get("loss", 0.0), avg.get("binary", 0.0), avg.get("fine", 0.0),
                             avg.get("corrected_frac", 0.0), lr, metric,
                             _finite(m["anomaly_f1"]), _finite(m["binary_iou"]),
                             _finite(m["miou"]), self.val_on_train, improved, train_s,
                             time.monotonic() - t_epoch, loss_box=avg.get("box", 0.0))
            self.history.append(val.history_entry())
            yield val
            yield self._save(epoch + 1, improved)
            if epoch + 1 - self.best_epoch >= cfg.patience:
                return epoch + 1, False, True
        return max(cfg.epochs, self.start_epoch), False, False

    # ------------------------------------------------------------ steps
    def _order(self, epoch: int) -> list[int]:
        """The items this process trains on in ``epoch``, in order (DDP: its own share)."""
        self.dist.reseed(self.rng, self.cfg.seed, epoch)
        if self.sampler is None:
            return self.rng.permutation(self.n_items).tolist()
        self.sampler.set_epoch(epoch)
        return list(self.sampler)

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp)

    def _batch(self, idx: list[int]) -> tuple[list | None, torch.Tensor, torch.Tensor,
                                               torch.Tensor | None, torch.Tensor | None]:
        """(cached features or None, images, targets, confidence weights or None, box rasters
        when the box loss is on)."""
        boxes = None
        if self.cache is not None:
            if self.box_loss is not None:
                boxes = self.cache.box_batch(idx, self.device)
            feats, x, y = self.cache.batch(idx, self.device)
            return feats, x, y, self.cache.weight_batch(idx, self.device), boxes
        x, y, *rest = D.collate([self.train_set[i] for i in idx])
        if self.train_set.with_boxes:
            boxes = rest.pop().to(self.device)
        w = rest[0].to(self.device) if rest else None
        return None, x.to(self.device), y.to(self.device), w, boxes

    def _forward(self, model, feats, x) -> dict[str, torch.Tensor]:
        with self._autocast():
            return model.decode(feats, x) if feats is not None else model(x)

    def _train_step(self, idx: list[int], epoch: int) -> dict[str, float]:
        self.model.train()
        feats, x, y, w, boxes = self._batch(idx)
        with self._autocast():
            out = self.net(feats, x)
        keep = self.member_keep[:, idx] if self.member_keep is not None else None
        loss, parts = training_loss(out, y, epoch, self.loss, w, self.box_loss, boxes, x, keep)
        apply_gradients(loss, self.opt, self.params, self.cfg.grad_clip)
        self.sched.step()
        self.global_step += 1
        self.dist.average_buffers(self.model)  # every rank: same weights, so the same EMA
        self.ema.update(self.model, step=self.global_step)
        return self.dist.mean({"loss": float(loss.detach()), **parts})

    @torch.no_grad()
    def _validate(self) -> dict[str, Any]:
        model = self.ema.module
        model.eval()
        cm = np.zeros((self.num_classes, self.num_classes), np.int64)
        curve = ScoreCurve()  # the box-free threshold's pixels (ml.evaluation.free_threshold)
        bs = self.cfg.batch_size
        for i in range(0, len(self.val_share), bs):  # DDP: this rank's share, then summed
            chunk = self.val_share[i:i + bs]
            if self.cache is not None:
                feats, x, y = self.cache.batch([self.cache.index[self.val_views[j]]
                                                for j in chunk], self.device)
            else:
                x, y, *_ = D.collate([self.val_set[j] for j in chunk])
                feats, x = None, x.to(self.device)
            fine = self._forward(model, feats, x)["fine"].float()
            cm += confusion(fine.argmax(1), y, self.num_classes)
            curve.add((1.0 - fine.softmax(1)[:, 0]).cpu().numpy(), y.cpu().numpy())
        cm = self.dist.sum(cm)
        curve = ScoreCurve(*self.dist.sum(curve.counts()))  # DDP: every rank's pixels
        return {**scores(cm, self.project.class_names()[: self.num_classes]), "curve": curve}

    def _save(self, epoch: int, improved: bool) -> Checkpoint:
        """Rank 0 writes; every rank then waits for it, so the folder is whole for all."""
        if self.dist.is_main:
            self._write(epoch, improved)
        self.dist.barrier()
        return Checkpoint(epoch, self.out_dir / LAST, improved)



def train(project: Project, out_dir: str | Path, student: StudentConfig, cfg: TrainConfig,
          mask_source: str = "teacher", labels: dict[str, np.ndarray] | None = None,
          resume: bool = False, init_from: Path | None = None,
          on_event: Callable[[TrainEvent], None] | None = None,
          should_stop: StopFn | None = None, loss_kind: str | None = None) -> TrainResult:
    """Build a :class:`Trainer` and run it to its end; ``on_event`` sees every event."""
    trainer = Trainer(project, out_dir, student, cfg, mask_source, labels, resume, init_from,
                      loss_kind, should_stop)
    for event in trainer.fit():
        if on_event is not None:
            on_event(event)
    assert trainer.result is not None  # fit() ends with Done or Stopped, or raises
    return trainer.result
