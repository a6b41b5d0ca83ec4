"""RPN head on the correlation map: one shared 3x3 tower, then 1x1 score (2k) and box (4k)."""

from __future__ import annotations

import torch
from torch import nn

from cyclesiam.models.backbone.mobilenet_v2 import init_conv_bn


class RPNHead(nn.Module):
    def __init__(self, in_channels: int, head_channels: int, num_anchors: int):
        super().__init__()
        self.tower = nn.Sequential(
            nn.Conv2d(in_channels, head_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(head_channels),
            nn.ReLU(inplace=True),
        )
        init_conv_bn(self.tower)
        self.cls = nn.Conv2d(head_channels, 2 * num_anchors, 1)
        self.loc = nn.Conv2d(head_channels, 4 * num_anchors, 1)
        for conv in (self.cls, self.loc):
            nn.init.normal_(conv.weight, std=0.01)
            nn.init.zeros_(conv.bias)

    def forward(self, corr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """corr [B,C,R,R] -> cls [B,2k,R,R], loc [B,4k,R,R], tower features [B,F,R,R]."""
        feat = self.tower(corr)
        return self.cls(feat), self.loc(feat), feat
