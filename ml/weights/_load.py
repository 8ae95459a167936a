"""Reading a registered file's tensors, fetched first when needed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ml.common.progress import ProgressFn
from ml.common.torch_load import load_torch_checkpoint
from ml.weights._fetch import ensure
from ml.weights._registry import get_source

if TYPE_CHECKING:
    import torch


def load_state(name: str, progress: ProgressFn | None = None) -> dict[str, torch.Tensor]:
    """The verified state dict of ``name`` (downloaded if needed), backbones in timm layout."""
    path = ensure(name, progress)
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        state = load_torch_checkpoint(path)
    if get_source(name).kind == "dinov2":
        state.pop("mask_token", None)  # Meta's file carries it; timm's ViT has none
    return state
