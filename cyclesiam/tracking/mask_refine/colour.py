"""tracker.mask_refine colour: a colour model of target against background, learnt on this frame
from the network mask and the box, averaged with the network's probability.

Foreground colours: ROI pixels inside the box where the network says target; background colours:
ROI pixels outside the box grown by 10 %. Each pixel's colour posterior h_fg / (h_fg + h_bg)
(8x8x8 BGR bins, equal priors) is averaged with the network probability and thresholded at 0.5
inside the grown box. Computed on the ROI scaled to at most 64 px a side (cost), then scaled back.
Without enough background or foreground samples (a box that fills the ROI) the raw mask is kept."""

from __future__ import annotations

import numpy as np

from cyclesiam.tracking.mask_refine.base import MaskRefiner, RefineInput
from cyclesiam.tracking.mask_refine.common import box_on_roi, fill_holes, resize_to, upscale_binary, work_size

WORK_SIDE = 64
BG_MARGIN = 0.10
MIN_SAMPLES = 16
COLOUR_WEIGHT = 0.5


def colour_bins(bgr: np.ndarray) -> np.ndarray:
    """Bin index 0..511 of every pixel (3 bits per channel)."""
    q = (bgr >> 5).astype(np.int32)
    return (q[..., 0] << 6) | (q[..., 1] << 3) | q[..., 2]


def colour_posterior(bins: np.ndarray, fg: np.ndarray, bg: np.ndarray) -> np.ndarray:
    """P(target | colour) per pixel from the fg / bg sample histograms (equal priors), float32."""
    h_fg = np.bincount(bins[fg], minlength=512) / max(int(fg.sum()), 1)
    h_bg = np.bincount(bins[bg], minlength=512) / max(int(bg.sum()), 1)
    post = h_fg / np.maximum(h_fg + h_bg, 1e-12)
    post[(h_fg + h_bg) == 0] = 0.5
    return post.astype(np.float32)[bins]


class ColourRefine(MaskRefiner):
    def refine(self, inp: RefineInput) -> np.ndarray:
        roi_shape = inp.prob.shape
        size = work_size(roi_shape, WORK_SIDE)
        prob = resize_to(inp.prob, size)
        inside = box_on_roi(inp, 0.0, size) > 0
        grown = box_on_roi(inp, BG_MARGIN, size) > 0
        fg, bg = inside & (prob > inp.threshold), ~grown
        if fg.sum() < MIN_SAMPLES or bg.sum() < MIN_SAMPLES:
            return inp.raw()
        bins = colour_bins(resize_to(inp.image, size))
        p = (1 - COLOUR_WEIGHT) * prob + COLOUR_WEIGHT * colour_posterior(bins, fg, bg)
        small = np.where((p > 0.5) & grown, 255, 0).astype(np.uint8)
        return upscale_binary(fill_holes(small), roi_shape)  # everything at work size: cost independent of the ROI
