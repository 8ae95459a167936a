"""The student's DINOv2 ViT-S/14 backbone: timm model, truncated after the deepest tap.

The decoder reads blocks ``taps`` (default 1, 2, 4, 7; 0-based), each through the final
LayerNorm. Blocks after the deepest tap are removed from the model, so they are never computed
and never stored in checkpoints (ViT-S keeps 8 of its 12 blocks).

Weight sources (``StudentConfig.backbone_weights``): ``none`` (random, for tests), ``official``
(Meta's .pth), ``offline`` (safetensors already in timm's layout), ``hf:PATH`` (a Hugging Face
``Dinov2Model`` state dict) or a PATH to a timm-layout safetensors/.pth file. Every source goes
through timm's checkpoint filter, which also resamples the position embeddings to the input size.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

MODES = ("bitfit", "frozen", "full")


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors or torch file (read with ``weights_only``: no code runs)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: backbone weights not found")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    sd = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: not a state dict")
    return sd  # "model" / "state_dict" wrappers are unwrapped by timm's checkpoint filter


def _hf_to_timm(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A Hugging Face ``Dinov2Model`` state dict (or a model wrapping it) in timm's layout."""
    from ..dinov2_onnx import hf_to_timm

    sd = {k.removeprefix("dinov2."): v for k, v in sd.items()}
    try:
        return hf_to_timm(sd)
    except KeyError as e:
        raise ValueError(f"not a Hugging Face Dinov2Model state dict (no tensor {e})") from None


def _source_path(weights: str) -> tuple[Path, str]:
    """(file, layout) for a weight source name; layout is 'timm' or 'hf'."""
    if weights in ("official", "offline"):
        from .. import weights as _weights  # lazy: only when real weights are wanted

        name = "dinov2_vits14" if weights == "official" else "dinov2_vits14_offline"
        return Path(_weights.ensure(name)), "timm"
    if weights.startswith("hf:"):
        return Path(weights[3:]).expanduser(), "hf"
    return Path(weights).expanduser(), "timm"


def load_backbone_weights(vit: nn.Module, weights: str) -> str:
    """Load ``weights`` into the (possibly truncated) timm ViT; return a readable source."""
    from timm.models.vision_transformer import checkpoint_filter_fn

    path, layout = _source_path(weights)
    sd = _read_state_dict(path)
    if layout == "hf":
        sd = _hf_to_timm(sd)
    sd = checkpoint_filter_fn(sd, vit)  # Meta layout -> timm, position embeddings resampled
    depth = len(vit.blocks)
    # Blocks past the deepest tap are not part of the truncated model: drop their weights.
    sd = {k: v for k, v in sd.items()
          if not (k.startswith("blocks.") and int(k.split(".")[1]) >= depth)
          and not k.startswith(("head.", "fc_norm."))}
    missing, unexpected = vit.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise ValueError(f"{path}: weights do not fit the backbone (missing: {missing[:4]}, "
                         f"unexpected: {unexpected[:4]})")
    labels = {"official": "official Meta DINOv2 ViT-S/14",
              "offline": "offline DINOv2-derived ViT-S/14"}
    return labels.get(weights, f"{layout} weights from {path.name}")


def set_trainable(vit: nn.Module, mode: str) -> None:
    """bitfit: only biases and LayerNorm scales train; frozen: nothing; full: everything."""
    for p in vit.parameters():
        p.requires_grad_(mode == "full")
    if mode == "bitfit":
        for module in vit.modules():
            for pname, p in module.named_parameters(recurse=False):
                if pname == "bias" or isinstance(module, nn.LayerNorm):
                    p.requires_grad_(True)


class Backbone(nn.Module):
    """DINOv2 ViT truncated after the deepest tap; returns the tapped features as NCHW maps."""

    def __init__(self, name: str = "vit_small_patch14_dinov2", input_size: int = 518,
                 taps: tuple[int, ...] = (1, 2, 4, 7), weights: str = "none",
                 mode: str = "bitfit") -> None:
        super().__init__()
        import timm

        if mode not in MODES:
            raise ValueError(f"unknown backbone mode '{mode}' (choose from {', '.join(MODES)})")
        with torch.device("meta"):  # the full model's depth, without allocating it
            full_depth = len(timm.create_model(name, pretrained=False, num_classes=0).blocks)
        if not taps or min(taps) < 0 or max(taps) >= full_depth:
            raise ValueError(f"taps {tuple(taps)} must be block indices in 0..{full_depth - 1}")
        # Build only the blocks up to the deepest tap (what timm's prune_intermediate_layers
        # leaves), so the discarded blocks are never even initialised; the prune call then
        # drops the classifier head and checks the indices.
        self.vit = timm.create_model(name, pretrained=False, img_size=input_size,
                                     dynamic_img_size=True, num_classes=0, depth=max(taps) + 1)
        self.patch_size = int(self.vit.patch_embed.patch_size[0])
        if input_size % self.patch_size:
            raise ValueError(f"input size {input_size} is not a multiple of the patch size "
                             f"{self.patch_size}")
        self.taps = tuple(self.vit.prune_intermediate_layers(
            list(taps), prune_norm=False, prune_head=True))
        if len(self.vit.blocks) != max(taps) + 1:
            raise RuntimeError(f"truncation kept {len(self.vit.blocks)} blocks, "
                               f"expected {max(taps) + 1}")
        self.source = "random init" if weights == "none" else load_backbone_weights(
            self.vit, weights)
        self.out_channels = int(self.vit.embed_dim)
        self.mode = mode
        set_trainable(self.vit, mode)
        # Preprocessing is derived from the weights' pretrained config, not re-typed.
        cfg = self.vit.pretrained_cfg
        self.register_buffer("mean", torch.tensor(cfg["mean"]).view(1, -1, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(cfg["std"]).view(1, -1, 1, 1), persistent=False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Float RGB in [0, 1] -> the normalisation the weights were trained with."""
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Tapped features ``(B, C, H/14, W/14)`` of a [0, 1] RGB batch."""
        h, w = x.shape[-2:]
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"input {h}x{w} is not a multiple of the patch size "
                             f"{self.patch_size}")
        x = self.normalize(x)
        # Frozen backbone: no graph needed (cheaper, and lets callers cache the features).
        with torch.set_grad_enabled(torch.is_grad_enabled() and self.mode != "frozen"):
            return self.vit.forward_intermediates(x, indices=list(self.taps), norm=True,
                                                  output_fmt="NCHW", intermediates_only=True)
