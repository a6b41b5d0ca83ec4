"""tracker.mask_refine none: the network mask as it is (probability above tracker.mask_threshold)."""

from __future__ import annotations

import numpy as np

from cyclesiam.tracking.mask_refine.base import MaskRefiner, RefineInput


class NoRefine(MaskRefiner):
    def refine(self, inp: RefineInput) -> np.ndarray:
        return inp.raw()
