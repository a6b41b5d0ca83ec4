"""Siamese network: backbones, neck, correlation, heads, builder, inference preparation."""

from cyclesiam.models.builder import build_model
from cyclesiam.models.fuse import prepare_for_inference
from cyclesiam.models.siamese import SiameseNet, gather_positions

__all__ = ["SiameseNet", "build_model", "gather_positions", "prepare_for_inference"]
