"""What a mask refinement gets and gives: the network's probabilities on the image region its
window covers, the tracker's box, the image; a binary mask on that region."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


@dataclass
class RefineInput:
    bgr: np.ndarray  # the whole image, uint8 HxWx3
    prob: np.ndarray  # float32 [r1 - r0, c1 - c0]: the mask head's probabilities on the ROI
    roi: tuple[int, int, int, int]  # (r0, r1, c0, c1) in the image, not empty
    box: tuple[float, float, float, float]  # the tracker's box (x, y, w, h), image pixels
    threshold: float  # tracker.mask_threshold

    @property
    def image(self) -> np.ndarray:
        """The ROI's pixels (a view)."""
        r0, r1, c0, c1 = self.roi
        return self.bgr[r0:r1, c0:c1]

    def raw(self) -> np.ndarray:
        """The network mask as today: probability above the threshold -> uint8 0/255 on the ROI."""
        return np.where(self.prob > self.threshold, 255, 0).astype(np.uint8)


class MaskRefiner(ABC):
    """One strategy: ROI probabilities (+ box, image) -> uint8 0/255 mask on the ROI. The largest
    component and the rotated box are taken afterwards by the masks stage. Stateless."""

    @abstractmethod
    def refine(self, inp: RefineInput) -> np.ndarray: ...
