"""The trainable models: a registry of builders, as segment-anything's ``build_sam``.

``build_model(cfg)`` looks ``cfg.arch`` up in :data:`MODELS`, a plain dict of small builders
that pass their settings to one private assembler per architecture:

    b2p   the Boxes2Pixels student (``b2p.py``: DINOv2 backbone + decoder; ablations through
          ``cfg.detail`` / ``cfg.binary`` / ``cfg.mode``)
    unet  the from-scratch U-Net baseline with the same output heads (``unet.py``)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from torch import nn

from ml.student.config import StudentConfig
from ml.student.models.b2p import B2PDecoder, Members, Student
from ml.student.models.backbone import Backbone
from ml.student.models.unet import UNet

__all__ = ["MODELS", "Backbone", "B2PDecoder", "Members", "Student", "UNet", "build_model",
           "count_parameters"]


def _build_student(cfg: StudentConfig) -> Student:
    cfg.check()
    backbone = Backbone(cfg.backbone, cfg.input_size, tuple(cfg.taps), cfg.backbone_weights,
                        cfg.mode)

    def decoder() -> B2PDecoder:
        return B2PDecoder(backbone.out_channels, len(cfg.taps), cfg.num_classes,
                          cfg.decoder_channels, cfg.detail, cfg.binary, cfg.full_res,
                          cfg.refine_band)

    # one member keeps the plain decoder, so its weights keep the paper's (and old cards') names
    head = decoder() if cfg.members == 1 else Members([decoder() for _ in range(cfg.members)])
    return Student(backbone, head, cfg)


def build_b2p(cfg: StudentConfig) -> nn.Module:
    """The paper's student (use ``cfg.detail`` / ``cfg.binary`` / ``cfg.mode`` for ablations)."""
    return _build_student(replace(cfg, arch="b2p"))


def build_unet(cfg: StudentConfig) -> nn.Module:
    """The from-scratch U-Net baseline with the same output heads."""
    return UNet(replace(cfg, arch="unet"))


MODELS: dict[str, Callable[[StudentConfig], nn.Module]] = {"b2p": build_b2p, "unet": build_unet}


def build_model(cfg: StudentConfig) -> nn.Module:
    """Build the model registered under ``cfg.arch``."""
    try:
        builder = MODELS[cfg.arch]
    except KeyError:
        raise ValueError(f"unknown model '{cfg.arch}' (known: {', '.join(MODELS)})") from None
    return builder(cfg)


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return (sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params))
