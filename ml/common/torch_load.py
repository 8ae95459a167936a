"""The one way we read torch files: on CPU, tensors only (``weights_only``: no pickled code)."""

from __future__ import annotations

import os
from typing import Any


def load_torch_checkpoint(path: str | os.PathLike) -> Any:
    """``torch.load`` on CPU that refuses pickled code (``weights_only=True``)."""
    import torch  # lazily: the GUI and the CLI import the modules that use this at start

    return torch.load(path, map_location="cpu", weights_only=True)
