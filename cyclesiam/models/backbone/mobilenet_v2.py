"""MobileNetV2 trunk with torchvision's exact parameter names (`features.N...`).

torchvision's ImageNet file `mobilenet_v2-b0353104.pth` loads into it strictly for the
blocks that are built; the blocks after `last_block` and the classifier are not built
and their keys are the only ones ignored (`ignored_prefixes`).

Block map (torchvision `features` index -> output channels, stride for a stride-32 net):
0: 32 /2 | 1: 16 /2 | 2-3: 24 /4 | 4-6: 32 /8 | 7-10: 64 /16 | 11-13: 96 /16 |
14-16: 160 /32 | 17: 320 /32 | 18: 1280 /32 (1x1 conv)
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

# (expand ratio t, output channels c, repeats n, first stride s), torchvision order
_SETTINGS = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class ConvBNReLU6(nn.Sequential):
    """torchvision `Conv2dNormActivation` layout: .0 conv, .1 BN, .2 ReLU6."""

    def __init__(self, inp: int, out: int, kernel: int = 3, stride: int = 1, groups: int = 1, dilation: int = 1):
        padding = (kernel - 1) // 2 * dilation
        super().__init__(
            nn.Conv2d(inp, out, kernel, stride, padding, dilation=dilation, groups=groups, bias=False),
            nn.BatchNorm2d(out),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, out: int, stride: int, expand: int, dilation: int = 1):
        super().__init__()
        hidden = int(round(inp * expand))
        self.use_residual = stride == 1 and inp == out
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(ConvBNReLU6(inp, hidden, kernel=1))
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden, dilation=dilation),
            nn.Conv2d(hidden, out, 1, 1, 0, bias=False),
            nn.BatchNorm2d(out),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return x + y if self.use_residual else y


def init_conv_bn(module: nn.Module) -> None:
    """torchvision's initialisation (Kaiming fan-out convs, unit BN): keeps activations
    from vanishing in a network trained without ImageNet weights."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


def _block_specs() -> list[tuple[int, int, int, int]]:
    """(in channels, out channels, stride, expand) of features[1..17]."""
    specs = []
    inp = 32
    for t, c, n, s in _SETTINGS:
        for i in range(n):
            specs.append((inp, c, s if i == 0 else 1, t))
            inp = c
    return specs


class MobileNetV2(nn.Module):
    """MobileNetV2 features[0..last_block]; returns the outputs of `out_blocks`.

    `max_stride`: blocks that would go beyond this stride keep stride 1 and dilate
    their depth-wise convs instead (SiamRPN++-style); 32 = the plain network.
    """

    def __init__(self, last_block: int = 13, out_blocks: Sequence[int] = (6, 13), max_stride: int = 32):
        super().__init__()
        if not 1 <= last_block <= 17:
            raise ValueError(f"last_block must be in 1..17, got {last_block}")
        if not out_blocks or max(out_blocks) != last_block or min(out_blocks) < 0:
            raise ValueError(f"out_blocks {tuple(out_blocks)} must end at last_block {last_block}")
        layers: list[nn.Module] = [ConvBNReLU6(3, 32, stride=2)]
        stride, dilation = 2, 1
        strides, channels = [2], [32]
        for inp, out, s, t in _block_specs()[:last_block]:
            # like torchvision's replace_stride_with_dilation: the first block of a
            # dilated stage keeps the previous dilation, the following ones use the new one
            block_dilation = dilation
            if s > 1 and stride * s > max_stride:
                dilation *= s
                s = 1
            stride *= s
            layers.append(InvertedResidual(inp, out, s, t, block_dilation))
            strides.append(stride)
            channels.append(out)
        self.features = nn.Sequential(*layers)
        self.out_blocks = tuple(sorted(out_blocks))
        self.out_channels = tuple(channels[i] for i in self.out_blocks)
        self.out_strides = tuple(strides[i] for i in self.out_blocks)
        self.ignored_prefixes = tuple(f"features.{i}." for i in range(last_block + 1, 19)) + ("classifier.",)
        init_conv_bn(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        outs = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.out_blocks:
                outs.append(x)
        return outs


def mobilenet_v2(**kwargs) -> MobileNetV2:
    """Default trunk: blocks 0..13 at stride 16 (96 ch), plus block 6 at stride 8 (32 ch) for the neck."""
    return MobileNetV2(**{"last_block": 13, "out_blocks": (6, 13), **kwargs})
