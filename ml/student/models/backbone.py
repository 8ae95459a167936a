"""The student's DINOv2 ViT-S/14 backbone: timm model, truncated after the deepest tap.

The decoder reads blocks ``taps`` (default 1, 2, 4, 7; 0-based), each through the final
LayerNorm. Blocks after the deepest tap are removed from the model, so they are never computed
and never stored in checkpoints (ViT-S keeps 8 of its 12 blocks).

Weight sources (``StudentConfig.backbone_weights``): ``none`` (random, for tests), ``official``
(Meta's .pth), ``offline`` (safetensors already in timm's layout), ``hf:PATH`` (a Hugging Face
``Dinov2Model`` state dict) or a PATH to a timm-layout safetensors/.pth file. Every source goes
through timm's checkpoint filter, which also resamples the position embeddings to the input size.

The backbone remembers which file its weights came from (:class:`BackboneWeights`: source and
SHA-256) and which of its parameters still hold that file's values, so a checkpoint can leave
them out and read them back from the file (see ``ml/student/checkpoint.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ml import weights as _weights
from ml.common.hashing import sha256_file
from ml.common.torch_load import load_torch_checkpoint
from ml.student.config import BACKBONE_FILES, backbone_label

MODES = ("bitfit", "frozen", "full")
# Parameters that timm's checkpoint filter computes rather than copies (position embeddings are
# resampled to the input size): never "as in the file", so checkpoints always keep them.
_DERIVED = ("vit.pos_embed",)


@dataclass(frozen=True)
class BackboneWeights:
    """The file a backbone's pretrained weights were read from."""

    source: str  # StudentConfig.backbone_weights: official | offline | hf:PATH | PATH
    sha256: str  # of the file read


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors or torch file (read with ``weights_only``: no code runs)."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    sd = load_torch_checkpoint(path)
    if not isinstance(sd, dict):
        raise ValueError(f"{path}: not a state dict")
    return sd  # "model" / "state_dict" wrappers are unwrapped by timm's checkpoint filter


def _hf_to_timm(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A Hugging Face ``Dinov2Model`` state dict (or a model wrapping it) in timm's layout."""
    from ml.weights.dinov2_onnx import hf_to_timm

    sd = {k.removeprefix("dinov2."): v for k, v in sd.items()}
    try:
        return hf_to_timm(sd)
    except KeyError as e:
        raise ValueError(f"not a Hugging Face Dinov2Model state dict (no tensor {e})") from None


def _source_path(weights: str) -> tuple[Path, str, str]:
    """(file, layout, SHA-256) for a weight source name; layout is 'timm' or 'hf'."""
    if weights in BACKBONE_FILES:
        name = BACKBONE_FILES[weights]
        path = Path(_weights.ensure(name))  # verified against the registry's hash
        return path, "timm", _weights.expected_sha256(name)
    path = Path(weights[3:] if weights.startswith("hf:") else weights).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: backbone weights not found")
    return path, "hf" if weights.startswith("hf:") else "timm", sha256_file(path)


def pretrained_source(arch: str, weights: str) -> _weights.WeightSource:
    """The registry entry whose preprocessing a backbone of ``arch`` with ``weights`` uses.

    Random, ``hf:`` and PATH weights are taken to follow the arch's reference source.
    """
    if weights in BACKBONE_FILES:
        return _weights.get_source(BACKBONE_FILES[weights])
    return _weights.source_for_arch(arch)


def load_backbone_weights(vit: nn.Module, weights: str, sha256: str | None = None
                          ) -> tuple[str, BackboneWeights]:
    """Load ``weights`` into the (possibly truncated) timm ViT: (readable source, its file).

    With ``sha256`` the file must have that hash (a checkpoint names the file it was trained
    on); a different file is refused before anything is loaded.
    """
    from timm.models.vision_transformer import checkpoint_filter_fn

    path, layout, digest = _source_path(weights)
    if sha256 is not None and digest != sha256:
        raise ValueError(f"backbone weights '{weights}' ({path}) have SHA-256 {digest[:16]}..., "
                         f"but the model was trained on {sha256[:16]}...: put the original "
                         "file back (b2p weights import) or use the model on the machine "
                         "that trained it")
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
    return (backbone_label(weights, f"{path.name} ({layout} layout)"),
            BackboneWeights(weights, digest))


def _trains(module: nn.Module, pname: str, mode: str) -> bool:
    """bitfit: only biases and LayerNorm scales train; frozen: nothing; full: everything."""
    return mode == "full" or (mode == "bitfit" and (pname == "bias"
                                                    or isinstance(module, nn.LayerNorm)))


def set_trainable(vit: nn.Module, mode: str) -> None:
    """Set ``requires_grad`` of every ViT parameter by the fine-tuning ``mode``."""
    for module in vit.modules():
        for pname, p in module.named_parameters(recurse=False):
            p.requires_grad_(_trains(module, pname, mode))


def _channels(values: tuple[float, ...]) -> torch.Tensor:
    """Per-channel constants shaped to broadcast over an NCHW batch."""
    return torch.tensor(values, dtype=torch.float32).view(1, -1, 1, 1)


class Backbone(nn.Module):
    """DINOv2 ViT truncated after the deepest tap; returns the tapped features as NCHW maps."""

    def __init__(self, name: str = "vit_small_patch14_dinov2", input_size: int | None = None,
                 taps: tuple[int, ...] = (1, 2, 4, 7), weights: str = "none",
                 mode: str = "bitfit") -> None:
        super().__init__()
        import timm

        # Preprocessing (and the default input size) come from the weights' registry entry,
        # as timm's PretrainedCfg: never re-typed here.
        self.pretrained = pretrained_source(name, weights)
        self.register_buffer("mean", _channels(self.pretrained.mean), persistent=False)
        self.register_buffer("std", _channels(self.pretrained.std), persistent=False)
        input_size = input_size or self.pretrained.input_size
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
        self.source = "random init"
        self.weights: BackboneWeights | None = None  # the file the weights came from
        self._as_in_file: set[str] = set()  # parameters still holding that file's values
        if weights != "none":
            self.load_weights(weights)
        self.out_channels = int(self.vit.embed_dim)
        self.mode = mode
        set_trainable(self.vit, mode)

    def load_weights(self, weights: str, sha256: str | None = None) -> None:
        """Read pretrained ``weights`` (checked against ``sha256`` when given) into the ViT."""
        self.source, self.weights = load_backbone_weights(self.vit, weights, sha256)
        self.pretrained = pretrained_source(self.pretrained.arch, weights)
        self.mean.copy_(_channels(self.pretrained.mean))
        self.std.copy_(_channels(self.pretrained.std))
        self._as_in_file = {n for n, _ in self.named_parameters()} - set(_DERIVED)

    def overwritten(self, names: Iterable[str]) -> None:
        """Note that parameters ``names`` no longer hold the weights file's values."""
        self._as_in_file.difference_update(names)

    def file_keys(self) -> set[str]:
        """Parameters that still hold the weights file's values (frozen or not)."""
        return set(self._as_in_file) if self.weights is not None else set()

    def pretrained_keys(self) -> set[str]:
        """Parameters that equal the weights file and that ``mode`` keeps frozen."""
        if self.weights is None:
            return set()
        return {f"{mname}.{pname}" if mname else pname
                for mname, module in self.named_modules()
                for pname, _ in module.named_parameters(recurse=False)
                if not _trains(module, pname, self.mode)
                and (f"{mname}.{pname}" if mname else pname) in self._as_in_file}

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
