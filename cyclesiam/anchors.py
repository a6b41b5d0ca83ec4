"""SiamRPN anchors over the response map (pysot `Anchors` + `SiamRPNTracker.generate_anchor`).

Anchors are (cx, cy, w, h) in search-crop pixels relative to the crop centre. Flattened
order: index = a * R * R + i * R + j (anchor a, row i, column j), which is the order of
the model's score/box maps reshaped as [k, R, R]. Anchor a = ratio_index * len(scales) +
scale_index. Ratios are h / w.
"""

from __future__ import annotations

import math

import numpy as np

from cyclesiam.config import AnchorConfig


def base_anchors(anchor_cfg: AnchorConfig) -> np.ndarray:
    """The k anchor shapes (w, h) [k, 2], in pysot's integer-rounded form.

    Base area stride^2; for ratio r: ws = int(sqrt(stride^2 / r)), hs = int(ws * r),
    then both multiplied by each scale (stride 8, scale 8, ratio 1 -> 64 x 64).
    """
    area = anchor_cfg.stride * anchor_cfg.stride
    shapes = []
    for ratio in anchor_cfg.ratios:
        ws = int(math.sqrt(area / ratio))
        hs = int(ws * ratio)
        for scale in anchor_cfg.scales:
            shapes.append((ws * scale, hs * scale))
    return np.asarray(shapes, dtype=np.float32)


def generate_anchors(anchor_cfg: AnchorConfig, score_size: int) -> np.ndarray:
    """All anchors of an R x R response map -> float32 [k * R * R, 4] (cx, cy, w, h).

    Position (i, j) is centred at ((j - R // 2) * stride, (i - R // 2) * stride).
    """
    if score_size < 1:
        raise ValueError(f"score_size must be >= 1, got {score_size}")
    shapes = base_anchors(anchor_cfg)
    k = shapes.shape[0]
    offsets = (np.arange(score_size, dtype=np.float32) - score_size // 2) * anchor_cfg.stride
    ys, xs = np.meshgrid(offsets, offsets, indexing="ij")  # [R, R]: ys varies with row i
    anchors = np.empty((k, score_size, score_size, 4), dtype=np.float32)
    anchors[..., 0] = xs[None]
    anchors[..., 1] = ys[None]
    anchors[..., 2] = shapes[:, 0, None, None]
    anchors[..., 3] = shapes[:, 1, None, None]
    return anchors.reshape(-1, 4)
