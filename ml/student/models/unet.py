"""A plain U-Net trained from scratch: the paper's baseline, with the student's output heads.

Four levels (32, 64, 128, 256 channels at strides 1, 2, 4, 8), a 512-channel bottleneck at 1/16,
transposed-conv upsampling and skip concatenation. ``encode`` returns the encoder's maps (skips,
then the bottleneck) and ``decode`` the heads, so a training loop can treat it like the student;
its encoder always trains, so ``features_cacheable`` is False.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from ml.student.config import StudentConfig
from ml.student.models._blocks import double_conv
from ml.weights import IMAGENET_MEAN, IMAGENET_STD


class UNet(nn.Module):
    """U-Net over float RGB in [0, 1]; any input size (padded to a multiple of 16 inside)."""

    features_cacheable = False

    def __init__(self, cfg: StudentConfig, base: int = 32, levels: int = 4) -> None:
        super().__init__()
        self.cfg = cfg
        widths = [base * 2**i for i in range(levels)]  # 32 64 128 256
        self.stride = 2**levels
        self.down = nn.ModuleList(double_conv(a, b) for a, b in pairwise([3, *widths]))
        self.bottom = double_conv(widths[-1], widths[-1] * 2)
        self.upconv = nn.ModuleList(nn.ConvTranspose2d(w * 2, w, 2, stride=2)
                                    for w in reversed(widths))
        self.up = nn.ModuleList(double_conv(w * 2, w) for w in reversed(widths))
        self.fine_head = nn.Conv2d(base, cfg.num_classes, 1)
        self.binary_head = nn.Conv2d(base, 2, 1) if cfg.binary else None
        # Same ImageNet statistics as the student's weights, from the weights registry.
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
                             persistent=False)

    def _pad(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        ph, pw = -h % self.stride, -w % self.stride
        return F.pad(x, (0, pw, 0, ph), mode="replicate") if ph or pw else x

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Skip maps at strides 1..8, then the bottleneck at 1/16."""
        y = self._pad((x - self.mean) / self.std)
        feats = []
        for i, block in enumerate(self.down):
            y = block(y if i == 0 else F.max_pool2d(y, 2))
            feats.append(y)
        feats.append(self.bottom(F.max_pool2d(y, 2)))
        return feats

    def decode(self, feats: list[torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
        y = feats[-1]
        for upconv, block, skip in zip(self.upconv, self.up, reversed(feats[:-1]), strict=True):
            y = block(torch.cat([upconv(y), skip], dim=1))
        h, w = x.shape[-2:]
        out = {"fine": self.fine_head(y)[..., :h, :w]}
        if self.binary_head is not None:
            out["binary"] = self.binary_head(y)[..., :h, :w]
        return out

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(x), x)
