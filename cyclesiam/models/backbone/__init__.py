"""Backbone registry. A backbone returns a list of feature maps, finest first, and has
`out_channels`, `out_strides` (tuples, same order) and `ignored_prefixes` (pretrained-file
keys of layers it does not build)."""

from __future__ import annotations

from typing import Callable

from torch import nn

from cyclesiam.models.backbone.light import light
from cyclesiam.models.backbone.mobilenet_v2 import mobilenet_v2
from cyclesiam.models.backbone.resnet50 import resnet50

BACKBONES: dict[str, Callable[..., nn.Module]] = {
    "mobilenet_v2": mobilenet_v2,
    "resnet50": resnet50,
    "light": light,
}


def get_backbone(name: str, **kwargs) -> nn.Module:
    if name not in BACKBONES:
        raise ValueError(f"unknown backbone '{name}'; known: {sorted(BACKBONES)}")
    return BACKBONES[name](**kwargs)
