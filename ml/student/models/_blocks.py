"""Convolution blocks shared by the student's decoder and the U-Net baseline."""

from __future__ import annotations

from torch import nn


def conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1) -> nn.Sequential:
    """``k``x``k`` conv (no bias: BN follows), batch norm, ReLU."""
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


def double_conv(cin: int, cout: int) -> nn.Sequential:
    """Two 3x3 conv-BN-ReLU blocks: one U-Net level."""
    return nn.Sequential(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))
