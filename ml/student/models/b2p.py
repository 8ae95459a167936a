"""The Boxes2Pixels student: DINOv2 taps -> residual top-down fusion -> pixel-shuffle decoder.

Architecture (paper, Sec. "Student"): the four tapped ViT feature maps are projected to
``decoder_channels`` (1x1 conv, BN, ReLU) and fused top-down with residual 3x3 blocks. Three
pixel-shuffle x2 stages (256 -> 128 -> 64 -> 32 channels) upsample the fused map, a detail
branch (two stride-2 3x3 convs on the image) adds 1/4-resolution edges, a 3x3 mixer merges both
and two 1x1 heads give binary (defect vs background) and fine (per class) logits, bilinearly
upsampled to the input size.

Beyond the paper (``StudentConfig.full_res``, off by default): the upsampled logits are refined
at the input's own resolution by a residual of two 3x3 convs on the image and the logits
(:class:`FullResRefine`). The 1/4 grid is 4 input pixels a cell, wider than a 2-3 px crack;
the refinement lets edges in the image place the mask's border between cells. It acts only
within ``StudentConfig.refine_band`` px of the coarse mask's border. Its last conv starts at
zero, so a fresh model predicts exactly what it would without it.

Beyond the paper (``StudentConfig.members``, default 1): several decoders on the one backbone,
each from its own random start and each leaving out its own share of the training photos
(:mod:`ml.training.members`), trained side by side (:class:`Members`). Prediction averages their
class probabilities.

Resolution choice: ViT taps sit at stride 14, so three x2 pixel shuffles end at stride 1.75, not
the paper's 1/4. We run the shuffles on the full token grid (no token information is thrown
away) and resize their output to the detail branch's 1/4 grid with antialiased bilinear
interpolation, instead of shrinking the stride-14 map to 1/32 first, which would discard most
of the 37x37 tokens at 518 px.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from ml.student.config import StudentConfig
from ml.student.models._blocks import conv_bn_relu


class FuseBlock(nn.Module):
    """Deep map (resized to the skip's grid) + skip, refined by two 3x3 convs with a residual."""

    def __init__(self, ch: int) -> None:
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(ch, ch),
                                  nn.Conv2d(ch, ch, 3, 1, 1, bias=False), nn.BatchNorm2d(ch))

    def forward(self, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        if deep.shape[-2:] != skip.shape[-2:]:  # ViT taps share one grid; kept for generality
            deep = F.interpolate(deep, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        x = deep + skip
        return F.relu(x + self.body(x))


class ShuffleUp(nn.Sequential):
    """x2 upsampling: 3x3 conv to 4*cout channels, pixel shuffle, BN, ReLU."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(nn.Conv2d(cin, cout * 4, 3, 1, 1, bias=False), nn.PixelShuffle(2),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class FullResRefine(nn.Module):
    """Residual correction of upsampled logits from full-resolution image edges.

    ``band`` > 0: the correction acts only within ``band`` input pixels of the coarse mask's
    border (the fine head's argmax, defect against background), where a 4 px grid cannot place
    it; elsewhere the coarse logits stand. The idea is PointRend's (Kirillov et al., CVPR 2020):
    refine where the coarse prediction is unsure. Without the band, the refinement learnt the
    teacher's systematic misses inside large defects too (docs/RESULTS.md, rounds 8 and 11).
    """

    def __init__(self, logits: int, classes: int, band: int = 0, width: int = 16) -> None:
        super().__init__()
        self.classes, self.band = classes, band
        self.image = conv_bn_relu(3, width)
        self.body = nn.Sequential(conv_bn_relu(width + logits, width),
                                  nn.Conv2d(width, logits, 3, 1, 1))
        nn.init.zeros_(self.body[-1].weight)  # a fresh refinement changes nothing
        nn.init.zeros_(self.body[-1].bias)

    def forward(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        residual = self.body(torch.cat([self.image(x), logits], dim=1))
        if self.band > 0:
            residual = residual * self.border(logits)
        return logits + residual

    @torch.no_grad()
    def border(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, 1, H, W): 1 within ``band`` px of the coarse defect mask's border, else 0."""
        defect = (logits[:, :self.classes].argmax(dim=1, keepdim=True) != 0).to(logits.dtype)
        k = 2 * self.band + 1
        grown = F.max_pool2d(defect, k, 1, self.band)
        shrunk = -F.max_pool2d(-defect, k, 1, self.band)
        return grown - shrunk


class B2PDecoder(nn.Module):
    """Decoder of the student; ``detail`` and ``binary`` switch the ablations."""

    def __init__(self, in_channels: int, num_taps: int, num_classes: int, channels: int = 256,
                 detail: bool = True, binary: bool = True, full_res: bool = False,
                 refine_band: int = 0) -> None:
        super().__init__()
        self.proj = nn.ModuleList(conv_bn_relu(in_channels, channels, k=1)
                                  for _ in range(num_taps))
        self.fuse = nn.ModuleList(FuseBlock(channels) for _ in range(num_taps - 1))
        widths = [channels, channels // 2, channels // 4, channels // 8]  # 256 128 64 32
        self.up = nn.Sequential(*(ShuffleUp(a, b) for a, b in pairwise(widths)))
        self.detail = nn.Sequential(conv_bn_relu(3, 24, stride=2),
                                    conv_bn_relu(24, 32, stride=2)) if detail else None
        self.mix = conv_bn_relu(widths[-1] + (32 if detail else 0), 64)
        self.fine_head = nn.Conv2d(64, num_classes, 1)
        self.binary_head = nn.Conv2d(64, 2, 1) if binary else None
        self.refine = (FullResRefine(num_classes + (2 if binary else 0), num_classes, refine_band)
                       if full_res else None)

    def forward(self, feats: list[torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``feats``: tapped maps, shallow to deep; ``x``: the normalised image."""
        proj = [p(f) for p, f in zip(self.proj, feats, strict=True)]
        y = proj[-1]
        for fuse, skip in zip(reversed(self.fuse), reversed(proj[:-1]), strict=True):
            y = fuse(y, skip)
        y = self.up(y)
        quarter = ((x.shape[-2] + 3) // 4, (x.shape[-1] + 3) // 4)  # grid of two stride-2 convs
        if self.detail is not None:
            d = self.detail(x)
            quarter = d.shape[-2:]
        # Antialiased resizing has no bf16 kernel on every device: run it in fp32 (autocast
        # casts the next conv's input back).
        y = F.interpolate(y.float(), size=quarter, mode="bilinear", align_corners=False,
                          antialias=True)
        if self.detail is not None:
            y = torch.cat([y, d], dim=1)
        y = self.mix(y)
        size = x.shape[-2:]
        logits = self.fine_head(y)
        if self.binary_head is not None:
            logits = torch.cat([logits, self.binary_head(y)], dim=1)
        logits = F.interpolate(logits, size=size, mode="bilinear", align_corners=False)
        if self.refine is not None:
            logits = self.refine(logits, x)
        n = self.fine_head.out_channels
        out = {"fine": logits[:, :n]}
        if self.binary_head is not None:
            out["binary"] = logits[:, n:]
        return out


MEMBERS = "members"  # training-mode output key of :class:`Members`: each decoder's outputs


class Members(nn.Module):
    """Decoders on one backbone, trained each on its own, averaged at prediction.

    In training mode ``forward`` returns ``{MEMBERS: [each decoder's outputs]}``, so the loss
    scores every member by itself (averaging their logits first would train one wider
    decoder, not an ensemble). In eval mode it returns, under the usual keys, the log of the
    members' mean class probabilities: a softmax downstream gives that mean exactly.
    """

    def __init__(self, decoders: list[nn.Module]) -> None:
        super().__init__()
        self.decoders = nn.ModuleList(decoders)

    def forward(self, feats: list[torch.Tensor], x: torch.Tensor
                ) -> dict[str, torch.Tensor | list[dict[str, torch.Tensor]]]:
        outs = [d(feats, x) for d in self.decoders]
        if self.training:
            return {MEMBERS: outs}
        return {k: torch.stack([o[k].float().softmax(dim=1) for o in outs]).mean(dim=0)
                .clamp_min(1e-12).log() for k in outs[0]}


class Student(nn.Module):
    """Backbone + decoder. Takes float RGB in [0, 1]; returns ``{"fine", "binary"}`` logits."""

    def __init__(self, backbone: nn.Module, decoder: nn.Module, cfg: StudentConfig) -> None:
        super().__init__()
        self.backbone = backbone
        self.decoder = decoder
        self.cfg = cfg

    @property
    def features_cacheable(self) -> bool:
        """True when ``encode`` has nothing to train, so its output may be cached per image."""
        return not any(p.requires_grad for p in self.backbone.parameters())

    def encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.backbone(x)

    def decode(self, feats: list[torch.Tensor], x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decoder(feats, self.backbone.normalize(x))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decode(self.encode(x), x)
