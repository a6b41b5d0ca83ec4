"""tracker.mask_refine box: the network mask cut to the tracker's box (grown by 5 % a side), holes filled.

Why: the mask head, trained on ellipse seeds, spreads past the object onto the background
(arm, table); the box is the tracker's better-localised estimate, so pixels far outside it are
dropped, and the inside of the kept part is closed."""

from __future__ import annotations

import numpy as np

from cyclesiam.tracking.mask_refine.base import MaskRefiner, RefineInput
from cyclesiam.tracking.mask_refine.common import box_on_roi, fill_holes

BOX_MARGIN = 0.05


class BoxRefine(MaskRefiner):
    def refine(self, inp: RefineInput) -> np.ndarray:
        return fill_holes(inp.raw() & box_on_roi(inp, BOX_MARGIN))
