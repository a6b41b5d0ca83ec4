"""Masks stage: the mask head at each moving target's chosen position, back-projected to the image,
then refined by the strategy of tracker.mask_refine (tracking/mask_refine/)."""

from __future__ import annotations

import math

import numpy as np
import torch

from cyclesiam.config import TrackerConfig
from cyclesiam.mask import MaskResult, backproject_probabilities, binary_to_polygon, box_polygon, roi_result_to_image
from cyclesiam.tracking.mask_refine import MaskRefiner, RefineInput, mask_refiner
from cyclesiam.tracking.network import Network
from cyclesiam.tracking.search import SearchRows
from cyclesiam.tracking.target import Target


def compute_masks(net: Network, cfg: TrackerConfig, bgr: np.ndarray, members: list[Target], rows: list[int],
                  found: SearchRows) -> None:
    """Set mask and polygon of members[b] for b in rows (one search row per member)."""
    feat, post = found.feat, found.post
    r2 = feat.shape[-1] * feat.shape[-2]
    rows_t = torch.as_tensor(rows, device=feat.device)
    pos = torch.as_tensor(post.best[rows] % r2, device=feat.device)
    vectors = feat.flatten(2)[rows_t, :, pos]  # [n, F]
    probs = torch.sigmoid(net.backend.mask(vectors).float()).cpu().numpy()
    m = int(round(math.sqrt(probs.shape[1])))
    refiner = mask_refiner(cfg)
    for n, b in enumerate(rows):
        t = members[b]
        win = backproject_probabilities(
            probs[n].reshape(m, m),
            crop_center=found.centers[b],
            offset=found.resp.anchors_np[post.best[b], :2],
            scale=1.0 / found.scale_z[b],
            window_size=net.model_cfg.template_size,
            image_shape=bgr.shape,
        )
        res = refined_mask(refiner, bgr, win.prob, win.roi, t.bbox, cfg.mask_threshold)
        t.mask, t.polygon = res.mask, res.polygon


def refined_mask(refiner: MaskRefiner, bgr: np.ndarray, prob: np.ndarray, roi: tuple[int, int, int, int],
                 box: tuple[float, float, float, float], threshold: float) -> MaskResult:
    """ROI probabilities -> the refiner's binary mask -> largest component + rotated polygon, on the whole image."""
    r0, r1, c0, c1 = roi
    if r1 <= r0 or c1 <= c0:
        return MaskResult(np.zeros(bgr.shape[:2], np.uint8), box_polygon(box), empty=True)
    binary = refiner.refine(RefineInput(bgr, prob, roi, box, threshold))
    return roi_result_to_image(binary_to_polygon(binary, box, offset=(r0, c0)), roi, bgr.shape)
