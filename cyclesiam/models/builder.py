"""Assemble backbone -> neck -> correlation -> heads from a ModelConfig."""

from __future__ import annotations

from pathlib import Path

from cyclesiam.config import ConfigError, ModelConfig
from cyclesiam.models.backbone import BACKBONES, get_backbone
from cyclesiam.models.backbone.pretrained import load_pretrained
from cyclesiam.models.head_mask import MaskHead
from cyclesiam.models.head_rpn import RPNHead
from cyclesiam.models.neck import Neck
from cyclesiam.models.siamese import SiameseNet


def build_model(model_cfg: ModelConfig, backbone_weights: str | Path | None = None) -> SiameseNet:
    """A SiameseNet for `model_cfg`; `backbone_weights` (ImageNet / user file, torchvision
    names, `.safetensors` or `.pth`) initialises the backbone, strictly."""
    validate_model_config(model_cfg)
    backbone = get_backbone(model_cfg.backbone)
    if backbone.out_strides[0] != model_cfg.anchor.stride:
        raise ConfigError(
            f"backbone '{model_cfg.backbone}' has stride {backbone.out_strides[0]} but anchor.stride is "
            f"{model_cfg.anchor.stride}"
        )
    if backbone_weights:
        load_pretrained(backbone, backbone_weights)
    neck = Neck(backbone.out_channels, backbone.out_strides, model_cfg.channels)
    rpn = RPNHead(model_cfg.channels, model_cfg.head_channels, model_cfg.anchor.num_anchors)
    mask_head = MaskHead(model_cfg.head_channels, model_cfg.mask_hidden, model_cfg.mask_size) if model_cfg.mask else None
    return SiameseNet(backbone, neck, rpn, mask_head, model_cfg.template_feature_crop)


def validate_model_config(cfg: ModelConfig) -> None:
    if cfg.backbone not in BACKBONES:
        raise ConfigError(f"model.backbone '{cfg.backbone}' unknown; known: {sorted(BACKBONES)}")
    for key in ("channels", "head_channels", "template_size", "search_size", "template_feature_crop", "mask_size", "mask_hidden"):
        if getattr(cfg, key) < 1:
            raise ConfigError(f"model.{key} must be >= 1, got {getattr(cfg, key)}")
    if cfg.search_size < cfg.template_size:
        raise ConfigError(f"model.search_size {cfg.search_size} < template_size {cfg.template_size}")
    if cfg.anchor.num_anchors < 1 or any(r <= 0 for r in cfg.anchor.ratios) or any(s <= 0 for s in cfg.anchor.scales):
        raise ConfigError("model.anchor needs at least one positive ratio and scale")
