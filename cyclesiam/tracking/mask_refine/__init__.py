"""Mask refinements, chosen by tracker.mask_refine: what turns the mask head's probabilities on the
image into the target's mask (none | box | colour | grabcut; figures in docs/MODEL.md). A new
refinement is one file with a `MaskRefiner` subclass and one entry in MASK_REFINERS (the
choice in cyclesiam/config.py)."""

from __future__ import annotations

from cyclesiam.config import TrackerConfig
from cyclesiam.tracking.mask_refine.base import MaskRefiner, RefineInput
from cyclesiam.tracking.mask_refine.box import BoxRefine
from cyclesiam.tracking.mask_refine.colour import ColourRefine
from cyclesiam.tracking.mask_refine.grabcut import GrabCutRefine
from cyclesiam.tracking.mask_refine.none import NoRefine

MASK_REFINERS: dict[str, type[MaskRefiner]] = {
    "none": NoRefine,
    "box": BoxRefine,
    "colour": ColourRefine,
    "grabcut": GrabCutRefine,
}


def mask_refiner(cfg: TrackerConfig) -> MaskRefiner:
    """The refinement tracker.mask_refine names."""
    return MASK_REFINERS[cfg.mask_refine]()


__all__ = ["MASK_REFINERS", "MaskRefiner", "RefineInput", "mask_refiner"]
