"""The one rule for choosing a torch device: training, prediction, teachers and benches use it.

torch is imported when a device is asked for, so importing this module stays cheap.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str | None = "auto") -> torch.device:
    """``auto`` (or None) picks CUDA when available; asking for CUDA without it is an error."""
    import torch

    name = "auto" if name is None else str(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in DEVICES:
        raise ValueError(f"unknown device '{name}' ({', '.join(DEVICES)})")
    if name == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("CUDA was asked for but is not available (use --device cpu)")
    return torch.device(name)


def describe_auto() -> str:
    """What ``auto`` finds, for people: ``cuda (<GPU name>)`` or ``cpu (no CUDA found)``."""
    import torch

    dev = resolve_device("auto")
    return f"cuda ({torch.cuda.get_device_name(0)})" if dev.type == "cuda" else \
        "cpu (no CUDA found)"
