"""Masks stage: the mask head at each moving target's chosen position, back-projected to the image."""

from __future__ import annotations

import math

import numpy as np
import torch

from cyclesiam.config import TrackerConfig
from cyclesiam.mask import backproject_mask
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
    for n, b in enumerate(rows):
        t = members[b]
        res = backproject_mask(
            probs[n].reshape(m, m),
            crop_center=found.centers[b],
            offset=found.resp.anchors_np[post.best[b], :2],
            scale=1.0 / found.scale_z[b],
            window_size=net.model_cfg.template_size,
            image_shape=bgr.shape,
            threshold=cfg.mask_threshold,
            fallback_bbox=t.bbox,
        )
        t.mask, t.polygon = res.mask, res.polygon
