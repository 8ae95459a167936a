"""Saving and loading trained students: a folder with weights, model card and training state.

    MODEL_DIR/model.safetensors   the whole model state (truncated backbone, decoder, BN stats)
    MODEL_DIR/config.json         the :class:`ml.config.ModelCard` (how to rebuild the model)
    MODEL_DIR/train_state.pt      optional: optimizer / EMA / epoch, for resuming training

The model id is the start of the weights' SHA-256, so every stored mask names exactly the
weights that made it.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ._atomic import atomic_write_bytes
from .config import ModelCard

WEIGHTS_NAME = "model.safetensors"
CARD_NAME = "config.json"
TRAIN_STATE_NAME = "train_state.pt"


def _plain_tensors(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # safetensors refuses views and tensors sharing storage: give it contiguous copies.
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in state.items()}


def save_checkpoint(model_dir: str | Path, model: nn.Module, card: ModelCard,
                    optimizer_state: dict | None = None,
                    extra_state: dict[str, Any] | None = None) -> Path:
    """Write weights, card and (when given) training state into ``model_dir``; return it."""
    from safetensors.torch import save

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(model_dir / WEIGHTS_NAME, save(_plain_tensors(model.state_dict()),
                                                      metadata={"format": "pt"}))
    card.save(model_dir / CARD_NAME)
    if optimizer_state is not None or extra_state is not None:
        buf = io.BytesIO()
        torch.save({"optimizer": optimizer_state, **(extra_state or {})}, buf)
        atomic_write_bytes(model_dir / TRAIN_STATE_NAME, buf.getvalue())
    return model_dir


def _require(model_dir: Path) -> None:
    for name in (WEIGHTS_NAME, CARD_NAME):
        if not (model_dir / name).is_file():
            raise FileNotFoundError(f"{model_dir}: not a trained model (missing {name})")


def load_model(model_dir: str | Path, device: str | torch.device = "cpu"
               ) -> tuple[nn.Module, ModelCard]:
    """Rebuild the model from its card, load its weights and return it in eval mode."""
    from safetensors.torch import load_file

    from .models import build_model

    model_dir = Path(model_dir)
    _require(model_dir)
    card = ModelCard.load(model_dir / CARD_NAME)
    # The file holds every weight: build without fetching backbone weights.
    model = build_model(replace(card.student, backbone_weights="none"))
    state = load_file(str(model_dir / WEIGHTS_NAME))
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(f"{model_dir / WEIGHTS_NAME}: weights do not match config.json "
                         f"(missing: {missing[:4]}, unexpected: {unexpected[:4]})")
    return model.to(device).eval(), card


def load_train_state(model_dir: str | Path) -> dict[str, Any] | None:
    """The saved optimizer / EMA / epoch state, or None if there is none."""
    path = Path(model_dir) / TRAIN_STATE_NAME
    if not path.is_file():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)


def model_id(model_dir: str | Path) -> str:
    """First 12 hex digits of the SHA-256 of the weights file."""
    path = Path(model_dir) / WEIGHTS_NAME
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:12]
