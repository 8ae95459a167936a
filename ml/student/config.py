"""Configuration dataclasses with the paper's defaults; serialised next to every checkpoint."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, TypeVar

from ml.common.atomic import atomic_write_json

T = TypeVar("T")

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

    def save(self, path: str | Path) -> None:
        atomic_write_json(path, {"student": self.student.to_dict(), "train": self.train.to_dict(),
                                 "classes": self.classes, "backbone_source": self.backbone_source,
                                 "epoch": self.epoch, "best_metric": self.best_metric,
                                 "history": self.history, "app_version": self.app_version,
                                 "calibration": self.calibration})

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
                   dict(d.get("calibration") or {}))
