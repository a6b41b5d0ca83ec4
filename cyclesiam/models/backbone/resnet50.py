"""ResNet-50 trunk conv1..layer3 as in SiamMask: layer3 dilated (stride 1, dilation 2),
so the output is 1024 channels at stride 8. Parameter names are torchvision's
(`conv1`, `bn1`, `layer1.0.conv1`, ..., `layer3.5.downsample.1`), so a torchvision
ResNet-50 file (the user's) loads; its `layer4.*` and `fc.*` keys are ignored.
"""

from __future__ import annotations

import torch
from torch import nn

from cyclesiam.models.backbone.mobilenet_v2 import init_conv_bn


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inp: int, planes: int, stride: int = 1, dilation: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        out = planes * self.expansion
        self.conv1 = nn.Conv2d(inp, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        y = self.bn3(self.conv3(y))
        return self.relu(y + identity)


def _layer(inp: int, planes: int, blocks: int, stride: int, dilation: int, first_dilation: int) -> nn.Sequential:
    out = planes * Bottleneck.expansion
    downsample = None
    if stride != 1 or inp != out:
        downsample = nn.Sequential(nn.Conv2d(inp, out, 1, stride, bias=False), nn.BatchNorm2d(out))
    layers = [Bottleneck(inp, planes, stride, first_dilation, downsample)]
    layers += [Bottleneck(out, planes, 1, dilation) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ResNet50(nn.Module):
    """conv1..layer3, output [layer3] (1024 ch, stride 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = _layer(64, 64, 3, stride=1, dilation=1, first_dilation=1)
        self.layer2 = _layer(256, 128, 4, stride=2, dilation=1, first_dilation=1)
        # torchvision replace_stride_with_dilation: stride 2 -> 1, first block keeps dilation 1
        self.layer3 = _layer(512, 256, 6, stride=1, dilation=2, first_dilation=1)
        self.out_channels = (1024,)
        self.out_strides = (8,)
        self.ignored_prefixes = ("layer4.", "fc.")
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return [x]


def resnet50(**kwargs) -> ResNet50:
    return ResNet50(**kwargs)
