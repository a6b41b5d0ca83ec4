"""tracker.mask_refine grabcut: OpenCV GrabCut (one iteration) seeded by the network mask and the box.

Labels on the ROI scaled to at most 96 px a side: outside the box grown by 10 % = background;
inside it, network mask = probable target, the rest = probable background. GrabCut's colour
models and graph cut then move the boundary onto image edges. Without both kinds of labels the
raw mask is kept, and
so it is when the cut leaves (almost) nothing."""

from __future__ import annotations

import cv2
import numpy as np

from cyclesiam.tracking.mask_refine.base import MaskRefiner, RefineInput
from cyclesiam.tracking.mask_refine.common import box_on_roi, resize_to, upscale_binary, work_size

WORK_SIDE = 96
BG_MARGIN = 0.10
ITERATIONS = 1
MIN_SAMPLES = 16


class GrabCutRefine(MaskRefiner):
    def refine(self, inp: RefineInput) -> np.ndarray:
        roi_shape = inp.prob.shape
        size = work_size(roi_shape, WORK_SIDE)
        prob = resize_to(inp.prob, size)
        grown = box_on_roi(inp, BG_MARGIN, size) > 0
        fg = grown & (prob > inp.threshold)
        labels = np.full(size, cv2.GC_BGD, np.uint8)
        labels[grown] = cv2.GC_PR_BGD
        labels[fg] = cv2.GC_PR_FGD
        if fg.sum() < MIN_SAMPLES or (labels != cv2.GC_PR_FGD).sum() < MIN_SAMPLES:
            return inp.raw()
        image = np.ascontiguousarray(resize_to(inp.image, size))
        bgd, fgd = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
        cv2.grabCut(image, labels, None, bgd, fgd, ITERATIONS, cv2.GC_INIT_WITH_MASK)
        small = np.where((labels == cv2.GC_FGD) | (labels == cv2.GC_PR_FGD), 255, 0).astype(np.uint8)
        if (small > 0).sum() < MIN_SAMPLES:  # the cut gave everything to the background (no colour contrast)
            return inp.raw()
        return upscale_binary(small, roi_shape)
