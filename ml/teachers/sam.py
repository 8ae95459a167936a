"""The SAM teacher: one image embedding per photo, then every box decoded in one batched call.

torch and segment_anything are imported only once the checkpoint has been found, so a missing
checkpoint is reported at once.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ml.common.device import resolve_device
from ml.common.torch_load import load_torch_checkpoint
from ml.teachers._base import Region, Teacher

if TYPE_CHECKING:
    import torch

MODEL_TYPES = ("vit_b", "vit_l", "vit_h")
# Bound on mask elements (boxes x masks x H x W) decoded at once: SamPredictor upsamples every
# mask to full image size, so a 20 MP photo gets a few boxes per chunk instead of 64.
MAX_MASK_ELEMENTS = 64 * 1024 * 1024


def weights_hint(model_type: str) -> str:
    name = f"sam_{model_type}"
    return (f"SAM {model_type} needs its checkpoint: run `b2p weights download {name}` or "
            f"`b2p weights import {name} FILE`, or pass a checkpoint path")


def resolve_checkpoint(model_type: str, checkpoint: str | os.PathLike | None = None) -> Path:
    """The checkpoint to load: the given path, else the verified cached ``sam_<type>`` file."""
    if checkpoint is not None:
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: SAM checkpoint not found")
        return path
    from ml import weights

    found = weights.find(f"sam_{model_type}")
    if found is None:
        raise RuntimeError(weights_hint(model_type))
    return Path(found)


def build_sam(model_type: str) -> torch.nn.Module:
    """An untrained SAM of ``model_type`` (weights are loaded separately, safely)."""
    from segment_anything import sam_model_registry

    if model_type not in MODEL_TYPES:
        raise ValueError(f"unknown SAM model type '{model_type}' (known: {', '.join(MODEL_TYPES)})")
    return sam_model_registry[model_type](checkpoint=None)


def load_checkpoint(sam: torch.nn.Module, path: str | os.PathLike) -> None:
    """Load a state dict into ``sam`` with ``weights_only=True``: pickled code is refused."""
    path = Path(path)
    try:
        state = load_torch_checkpoint(path)
    except pickle.UnpicklingError as e:
        raise RuntimeError(f"{path}: refused to load, the file holds more than tensors "
                           f"({str(e).splitlines()[0]})") from e
    except (OSError, EOFError, RuntimeError) as e:
        raise RuntimeError(f"{path}: not a readable checkpoint ({str(e).splitlines()[0]})") from e
    if isinstance(state, dict) and isinstance(state.get("model"), dict):
        state = state["model"]  # some fine-tuned SAMs wrap their weights
    if not isinstance(state, dict):
        raise RuntimeError(f"{path}: not a state dict ({type(state).__name__})")
    try:
        sam.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise RuntimeError(f"{path}: weights do not fit this SAM model "
                           f"({str(e).splitlines()[0]})") from e


class SamTeacher(Teacher):
    """Segment Anything prompted with each box.

    ``set_image`` computes the embedding once; ``predict`` decodes all boxes of the image
    together (``chunk`` boxes per decoder call at most, fewer on huge photos). With
    ``multimask`` the best of SAM's three masks by predicted IoU is kept per box.
    """

    def __init__(self, *, model_type: str = "vit_b", checkpoint: str | os.PathLike | None = None,
                 device: str = "auto", multimask: bool = False, random_init: bool = False,
                 model: Any = None, chunk: int = 64, **common) -> None:
        super().__init__(**common)
        if chunk < 1:
            raise ValueError(f"chunk must be >= 1, got {chunk}")
        if model is None and model_type not in MODEL_TYPES:
            raise ValueError(f"unknown SAM model type '{model_type}' "
                             f"(known: {', '.join(MODEL_TYPES)})")
        self.model_type = model_type
        self.multimask = bool(multimask)
        self.chunk = int(chunk)
        self.checkpoint: Path | None = None
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got '{device}'")
        # Find the weights before importing torch and building the model: fail fast.
        if checkpoint is not None or (model is None and not random_init):
            self.checkpoint = resolve_checkpoint(model_type, checkpoint)
        from segment_anything import SamPredictor

        self.device = resolve_device(device)
        sam = build_sam(model_type) if model is None else model  # injected: tests, callers
        if self.checkpoint is not None:
            load_checkpoint(sam, self.checkpoint)
        self.random_init = bool(random_init and self.checkpoint is None)
        sam.to(self.device).eval()
        self._predictor = SamPredictor(sam)

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"sam_{self.model_type}"

    def _options(self) -> dict:
        return {"model_type": self.model_type, "multimask": self.multimask,
                "checkpoint": self.checkpoint.name if self.checkpoint else None,
                "random_init": self.random_init, "device": self.device.type}

    def _prepare(self, image: np.ndarray) -> None:
        self._predictor.set_image(image, image_format="RGB")

    def _box_masks(self, boxes: np.ndarray,
                   padded: list[Region]) -> list[tuple[Region, np.ndarray]]:
        import torch

        assert self._image is not None
        h, w = self._image.shape[:2]
        pred = self._predictor
        per_box = 3 if self.multimask else 1
        chunk = max(1, min(self.chunk, MAX_MASK_ELEMENTS // (h * w * per_box)))
        out: list[tuple[Region, np.ndarray]] = []
        for s in range(0, len(boxes), chunk):
            part = torch.as_tensor(boxes[s:s + chunk], dtype=torch.float32, device=pred.device)
            prompts = pred.transform.apply_boxes_torch(part, (h, w))
            masks, iou, _ = pred.predict_torch(None, None, boxes=prompts,
                                               multimask_output=self.multimask)
            if self.multimask:
                masks = masks[torch.arange(masks.shape[0]), iou.argmax(dim=1)]
            else:
                masks = masks[:, 0]
            for j in range(masks.shape[0]):
                # Keep only what survives clipping, so memory follows the box size.
                r = padded[s + j] if self.clip_to_box else (0, 0, w, h)
                crop = masks[j, r[1]:r[3], r[0]:r[2]]
                out.append((r, crop.cpu().numpy().astype(bool)))
            del masks, iou
        return out
