"""Configuration dataclasses with the paper's defaults; serialised next to every checkpoint."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from ml.common.atomic import atomic_write_json
from ml.common.classes import default_class_weights

T = TypeVar("T")

# A b2p student's input is a whole number of the DINOv2 backbone's 14 px patches.
PATCH = 14
MODES = ("bitfit", "frozen", "full")

# The teacher `b2p pseudo-label`, the GUI's Pseudo-label dock and `make demo` use unless told:
# students learnt more from it than from GrabCut on every set measured (docs/RESULTS.md).
DEFAULT_TEACHER = "auto"


def _from_dict(cls: type[T], d: dict[str, Any]) -> T:
    """Build a dataclass from a dict, ignoring unknown keys and turning lists into tuples."""
    names = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    kw = {}
    for k, v in d.items():
        if k in names:
            kw[k] = tuple(v) if isinstance(v, list) else v
    return cls(**kw)


class ConfigError(ValueError):
    """Settings out of range: one line naming each and the rule it breaks."""


def nearest_input_size(size: float) -> int:
    """The input size :meth:`StudentConfig.check` accepts nearest to ``size`` (a multiple of
    :data:`PATCH`, at least one patch): the GUI rounds what was typed with it."""
    return max(PATCH, round(size / PATCH) * PATCH)


def _check(what: str, rules: list[tuple[str, Any, bool, str]]) -> None:
    """Raise :class:`ConfigError` listing every ``(name, value, ok, rule)`` that is not ok, as
    ultralytics' ``check_cfg`` does for its settings."""
    bad = [f"{name} {value!r} {rule}" for name, value, ok, rule in rules if not ok]
    if bad:
        raise ConfigError(f"{what}: " + "; ".join(bad))


# what a student's weights are shaped by: fine-tuning a model keeps each of them
SHAPE_FIELDS = ("arch", "num_classes", "backbone", "taps", "decoder_channels", "detail",
                "binary", "full_res", "members")


@dataclass
class StudentConfig:
    """The Boxes2Pixels student (and its ablations / the U-Net baseline through ``arch``)."""

    arch: str = "b2p"  # registered builder: b2p | unet
    num_classes: int = 3  # background + defect classes (paper: background, dirt, damage)
    input_size: int = 518  # multiple of 14
    backbone: str = "vit_small_patch14_dinov2"
    backbone_weights: str = "offline"  # official | offline | hf:PATH | PATH | none
    taps: tuple[int, ...] = (1, 2, 4, 7)  # 0-based ViT blocks read by the decoder
    decoder_channels: int = 256
    mode: str = "bitfit"  # bitfit | frozen | full
    detail: bool = True  # detail branch on the raw image
    full_res: bool = False  # beyond the paper: logits refined at input resolution (thin defects)
    # px of input round the coarse mask's border where ``full_res`` may change it; 0: anywhere
    # (round 8's refinement, which cards without this key were trained with)
    refine_band: int = 4
    members: int = 1  # beyond the paper: decoders on one backbone, probabilities averaged
    binary: bool = True  # binary defect head (asymmetric Dice)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> StudentConfig:
        """This config, or :class:`ConfigError` with one line naming each setting out of range
        (the CLI and the GUI show it as it is)."""
        size, b2p = self.input_size, self.arch == "b2p"
        _check("student settings", [
            ("classes", self.num_classes, self.num_classes >= 2,
             "must be at least 2 (background and one defect class)"),
            ("input size", size, size % PATCH == 0 and size >= PATCH if b2p else size >= 1,
             f"must be a multiple of {PATCH}, the backbone's patch (nearest: "
             f"{nearest_input_size(size)})" if b2p else "must be at least 1"),
            ("mode", self.mode, self.mode in MODES, f"must be one of {', '.join(MODES)}"),
            ("members", self.members, self.members >= 1, "must be at least 1"),
            ("taps", self.taps, len(self.taps) >= 1 and min(self.taps, default=0) >= 0,
             "must name at least one backbone block, counted from 0"),
            ("decoder channels", self.decoder_channels, self.decoder_channels >= 1,
             "must be at least 1"),
            ("refine band", self.refine_band, self.refine_band >= 0, "must be 0 or more"),
        ])
        return self

    def shaped_as(self, base: StudentConfig) -> StudentConfig:
        """This config with ``base``'s :data:`SHAPE_FIELDS` (to fine-tune a model of ``base``)."""
        return replace(self, **{name: getattr(base, name) for name in SHAPE_FIELDS})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StudentConfig:
        return _from_dict(cls, d)


@dataclass
class TrainConfig:
    """Optimisation and loss settings; paper defaults unless noted."""

    epochs: int = 100
    batch_size: int = 4
    lr: float = 5e-4
    weight_decay: float = 1e-2
    grad_clip: float = 1.0
    ema: float = 0.999
    patience: int = 25  # early stopping on validation anomaly mIoU
    # loss
    loss: str = "b2p"  # b2p | ce (plain cross-entropy: the U-Net baseline row)
    binary_weight: float = 0.5
    fine_weight: float = 0.5
    dice_beta: float = 0.4  # weight of false positives in the asymmetric Dice
    class_weights: tuple[float, ...] = ()  # () -> (0.4, 4, 4, ...) for the class count
    self_correct: bool = True
    tau: float = 0.9
    tau_calibrated: bool = True  # compare tau with class-weight-corrected probabilities
    warmup_epochs: int = 0  # epochs without self-correction
    # data (beyond the paper: augmentation and native-resolution crops)
    val_fraction: float = 0.2
    seed: int = 0
    augment: bool = True
    # -1 (auto): native crops of the input size when photos are >= 2x the input, else 0;
    # 0: resize whole image to input_size; >0: random native crops of this size
    crop: int = -1
    device: str = "auto"  # auto | cpu | cuda
    amp: bool = True  # bf16 autocast on CUDA
    num_workers: int = 0
    world_size: int = 1  # processes that trained it (torchrun --ddp); batch_size is per process
    # a wall-clock budget (``b2p train --budget``, the GUI's choice) and what ml.training.budget
    # planned
    budget_s: float = 0.0  # 0: none given
    budget_plan: dict = field(default_factory=dict)  # ml.training.budget.TrainPlan.to_dict()
    # weight the loss by the teacher's per-pixel confidence; off: from `auto` it cost 9.3
    # binary-IoU points on magnetic_tile and 1.6 on crackforest (docs/RESULTS.md, round 7)
    teacher_confidence: bool = False
    # box consistency (beyond the paper: ml/training/box_loss.py); 0 keeps the paper's loss
    box_loss: float = 0.0  # weight of the box terms beside the teacher's loss
    box_pairwise: float = 1.0  # colour-pairwise term, relative to the projection term
    box_outside: float = 1.0  # background outside boxes on photos whose defects are all boxed
    box_color_sim: float = 0.3  # Lab similarity above which neighbours should agree (BoxInst)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check(self) -> TrainConfig:
        """This config, or :class:`ConfigError` with one line naming each setting out of range."""
        _check("training settings", [
            ("epochs", self.epochs, self.epochs >= 1, "must be at least 1"),
            ("batch size", self.batch_size, self.batch_size >= 1, "must be at least 1"),
            ("lr", self.lr, self.lr > 0, "must be more than 0"),
            ("weight decay", self.weight_decay, self.weight_decay >= 0, "must be 0 or more"),
            ("ema", self.ema, 0 <= self.ema < 1, "must be from 0 up to, not including, 1"),
            ("patience", self.patience, self.patience >= 1, "must be at least 1 epoch"),
            ("loss", self.loss, self.loss in ("b2p", "ce"), "must be b2p or ce"),
            ("tau", self.tau, 0 < self.tau <= 1, "must be above 0 and at most 1"),
            ("val fraction", self.val_fraction, 0 <= self.val_fraction < 1,
             "must be from 0 up to, not including, 1"),
            ("crop", self.crop, self.crop >= -1, "must be -1 (auto), 0 (whole photos) or a size"),
            ("box loss", self.box_loss, self.box_loss >= 0, "must be 0 (off) or more"),
            ("box pairwise", self.box_pairwise, self.box_pairwise >= 0, "must be 0 or more"),
            ("box outside", self.box_outside, self.box_outside >= 0, "must be 0 or more"),
            ("budget", self.budget_s, self.budget_s >= 0, "must be 0 (none) or more seconds"),
        ])
        return self

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        return _from_dict(cls, d)


@dataclass
class ModelCard:
    """What is written beside a checkpoint as ``config.json``."""

    student: StudentConfig = field(default_factory=StudentConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    classes: list[dict] = field(default_factory=list)  # ClassInfo.to_json() per class
    backbone_source: str = ""  # human-readable: official Meta / offline DINOv2-derived / random
    epoch: int = 0
    best_metric: float | None = None
    history: list[dict] = field(default_factory=list)
    app_version: str = ""
    # region-confidence calibration and per-class proposal thresholds (ml.evaluation.calibration)
    calibration: dict = field(default_factory=dict)
    # class id (str) -> typical width (photo px) of the classes the teacher found to be thin
    # lines: the tight box rule draws them as centre lines (ml.prediction.box_decode)
    thin_widths: dict = field(default_factory=dict)
    # the box-free decision threshold chosen on the validation photos
    # (ml.evaluation.free_threshold; empty: the argmax decides)
    free_threshold: dict = field(default_factory=dict)
    # class ids the teacher's survey called regions (blobs): box-free proposals of these are
    # looked for at the lower threshold (ml.prediction.predict.proposal_threshold)
    region_classes: list = field(default_factory=list)

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, {"student": self.student.to_dict(), "train": self.train.to_dict(),
                                 "classes": self.classes, "backbone_source": self.backbone_source,
                                 "epoch": self.epoch, "best_metric": self.best_metric,
                                 "history": self.history, "app_version": self.app_version,
                                 "calibration": self.calibration,
                                 "thin_widths": self.thin_widths,
                                 "free_threshold": self.free_threshold,
                                 "region_classes": self.region_classes})

    @classmethod
    def load(cls, path: str | Path) -> ModelCard:
        d = json.loads(Path(path).read_text(encoding="utf-8"))
        student = d.get("student", {})
        if "refine_band" not in student:  # written before the band: its refinement acts anywhere
            student = {**student, "refine_band": 0}
        return cls(StudentConfig.from_dict(student),
                   TrainConfig.from_dict(d.get("train", {})), list(d.get("classes", [])),
                   d.get("backbone_source", ""), int(d.get("epoch", 0)), d.get("best_metric"),
                   list(d.get("history", [])), d.get("app_version", ""),
                   dict(d.get("calibration") or {}), dict(d.get("thin_widths") or {}),
                   dict(d.get("free_threshold") or {}),
                   [int(c) for c in d.get("region_classes") or []])


def class_weights(cfg: TrainConfig, num_classes: int) -> tuple[float, ...]:
    """The configured CE class weights, or the paper's (0.4, 4, 4, ...) for ``num_classes``."""
    w = tuple(cfg.class_weights) or default_class_weights(num_classes)
    if len(w) != num_classes:
        raise ValueError(f"class_weights has {len(w)} entries for {num_classes} classes")
    return w


# The backbone weight sources with a registry entry (``ml.weights``), in order of preference;
# other files share the arch's reference entry. Torch-free here, so teachers can read it.
BACKBONE_FILES = {"official": "dinov2_vits14", "offline": "dinov2_vits14_offline"}

# How a backbone's weights are named to a person (model cards, the report, the trainer's log)
_BACKBONE_LABELS = {"official": "official Meta DINOv2 ViT-S/14",
                    "offline": "offline DINOv2-derived ViT-S/14 (converted)",
                    "none": "random init"}


def backbone_label(weights: str, file_name: str = "") -> str:
    """A person's name for ``StudentConfig.backbone_weights`` (``file_name``: a weights file)."""
    if weights in _BACKBONE_LABELS:
        return _BACKBONE_LABELS[weights]
    return f"weights from {file_name}" if file_name else weights
