"""Sizes of a model folder for the default student (random init): weights and resume state.

Two backbones: ``none`` (random init, no weights file: the checkpoint keeps the full state) and
the same random ViT written to a timm-layout file and used as ``backbone_weights=PATH``, the
path every real weights file (official, offline) takes: the checkpoint leaves out what the file
holds. The resume state is built as ``ml.training.state`` builds it (raw weights, EMA, AdamW
moments).

    .venv/bin/python bench/checkpoint_size.py
"""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import save_file
from timm.utils.model_ema import ModelEmaV3

from ml.student.checkpoint import TRAIN_STATE_NAME, WEIGHTS_NAME, save_checkpoint, saved_state
from ml.student.config import ModelCard, StudentConfig
from ml.student.models import build_model, count_parameters


def _folder_sizes(model: torch.nn.Module, cfg: StudentConfig, where: Path) -> tuple[int, int]:
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-3)
    for p in params:  # one step, so the optimizer holds its moments
        p.grad = torch.zeros_like(p)
    opt.step()
    ema = ModelEmaV3(model, decay=0.999, use_warmup=True)
    extra = {"epoch": 1, "raw_model": saved_state(model),
             "ema": {"model": saved_state(ema.module), "updates": 1}}
    save_checkpoint(where, ema.module, ModelCard(student=cfg), opt.state_dict(), extra)
    return (where / WEIGHTS_NAME).stat().st_size, (where / TRAIN_STATE_NAME).stat().st_size


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        torch.manual_seed(0)
        vit = build_model(StudentConfig(backbone_weights="none")).backbone.vit
        backbone_file = tmp / "backbone.safetensors"
        save_file({k: v.contiguous() for k, v in vit.state_dict().items()}, backbone_file)
        for weights in ("none", str(backbone_file)):
            for mode in ("bitfit", "frozen"):
                cfg = replace(StudentConfig(), backbone_weights=weights, mode=mode)
                torch.manual_seed(0)
                model = build_model(cfg)
                trainable, total = count_parameters(model)
                w, s = _folder_sizes(model, cfg, tmp / f"{mode}-{len(weights)}")
                label = "none (random init)" if weights == "none" else "PATH (weights file)"
                print(f"{label:20s} {mode:6s} trainable {trainable:>10,} / {total:,}: "
                      f"{WEIGHTS_NAME} {w / 1e6:6.1f} MB, {TRAIN_STATE_NAME} {s / 1e6:6.1f} MB")


if __name__ == "__main__":
    main()
