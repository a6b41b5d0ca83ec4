"""Neck: adjust every backbone output to C channels and fuse them at the finest stride
(coarser maps upsampled bilinearly and added), plus the template centre crop."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from cyclesiam.models.backbone.mobilenet_v2 import init_conv_bn


class Neck(nn.Module):
    def __init__(self, in_channels: Sequence[int], in_strides: Sequence[int], channels: int):
        super().__init__()
        if len(in_channels) != len(in_strides) or not in_channels:
            raise ValueError("in_channels and in_strides must be non-empty and of equal length")
        if list(in_strides) != sorted(in_strides):
            raise ValueError(f"backbone outputs must be finest first, got strides {tuple(in_strides)}")
        self.scales = tuple(s // in_strides[0] for s in in_strides)
        self.adjust = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, channels, 1, bias=False), nn.BatchNorm2d(channels)) for c in in_channels
        )
        init_conv_bn(self)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        out = self.adjust[0](feats[0])
        height, width = out.shape[-2:]
        for feat, adjust, scale in zip(feats[1:], self.adjust[1:], self.scales[1:]):
            # adjust before upsampling (fewer channels to interpolate); bilinear keeps the
            # fused map translation-equivariant at stride 8, so template and search align
            up = F.interpolate(adjust(feat), scale_factor=float(scale), mode="bilinear", align_corners=False)
            out = out + up[:, :, :height, :width]
        return out


def crop_template(feat: torch.Tensor, size: int) -> torch.Tensor:
    """Centre crop of template features to size x size (SiamMask: 7 of 15)."""
    height, width = feat.shape[-2:]
    if size >= height and size >= width:
        return feat
    top, left = (height - size) // 2, (width - size) // 2
    return feat[:, :, top : top + size, left : left + size]
