"""Scale "pooled" (tracker.scale_from: pooled): the template strategy's comparison without its extra
backbone passes. Around each moving target's new centre, a template-sized window is sampled
bilinearly out of the search features the one search already computed, at the current size x each
scale factor, and the window most similar (cosine) to the target's first template wins; the size
moves towards it. The LOST rule's template similarity stays a template crop, at factor 1 only, and
is measured only for the targets whose state it can change this frame (a low score while tracking,
a recovering score while LOST); TrackResult.similarity is NaN on the other frames.

Geometry: a search crop pixel is a template crop pixel at factor 1 (both crops come from the same
context window, sides in the ratio search_size : template_size), so one template feature cell is
one search feature cell at factor 1 and f cells at factor f. The template's t x t cells are the
centre crop of its ceil(T / stride) map; their centre lies `stride * c` pixels left of / above the
template crop's centre T / 2, c = (H_t - t) // 2 + (t - 1) / 2, and the window keeps that offset
(x f) from the target."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cyclesiam.config import ModelConfig
from cyclesiam.tracking.scale.base import ONE_SCALE
from cyclesiam.tracking.scale.common import scale_factors, template_similarity
from cyclesiam.tracking.scale.template import TemplateScale, pick_template_scales

if TYPE_CHECKING:
    from cyclesiam.tracking.search import SearchRows
    from cyclesiam.tracking.similarity import Appearance
    from cyclesiam.tracking.target import Target


class PooledScale(TemplateScale):
    search_features = True
    similarity_on_demand = True  # the one template pass left, only where the LOST rule reads it

    def similarity_factors(self, all_held: bool) -> np.ndarray:
        return ONE_SCALE

    def settle(self, found: "SearchRows", appearance: "Appearance", members: "list[Target]", moving: list[int],
               image_shape: Sequence[int]) -> np.ndarray | None:
        factors = scale_factors(self.cfg)
        rows = np.asarray(moving)
        reference = torch.stack([members[b].reference for b in moving])
        # the new centre in search-crop pixels, relative to the crop centre
        offsets = (found.post.center[rows] - found.centers[rows]) * found.scale_z[rows, None]
        windows = pooled_windows(found.xf[torch.as_tensor(rows, device=found.xf.device)], offsets, factors,
                                 found.search_size, appearance.model_cfg, reference.shape[-1])
        similarity = template_similarity(windows, reference)
        sizes = np.stack([members[b].size for b in moving])
        return pick_template_scales(similarity, factors, sizes, found.post.lr[moving], self.cfg, image_shape)


def pooled_windows(xf: torch.Tensor, offsets: np.ndarray, factors: np.ndarray, search_size: int,
                   model_cfg: ModelConfig, cells: int) -> torch.Tensor:
    """Template-sized windows out of search features xf [B, C, H, W] (crops of `search_size` pixels,
    stride model_cfg.anchor.stride), around the points `offsets` [B, 2] (search-crop pixels from the
    crop centre), at each of `factors` [S] -> [B, S, C, cells, cells] (zeros outside the map)."""
    stride = model_cfg.anchor.stride
    t_map = math.ceil(model_cfg.template_size / stride)
    lag = stride * ((t_map - cells) // 2 + (cells - 1) / 2) - model_cfg.template_size / 2  # window centre - target
    b, _, height, width = xf.shape
    steps = np.arange(cells) - (cells - 1) / 2
    # continuous crop pixel p of cell index j: p = stride * j + d; d cancels against the template's own
    # cells (both maps come from the same network), so cell index = (p - d) / stride with d = 0 here
    centre = search_size / 2 + offsets[:, None, :] + lag * factors[None, :, None]  # [B, S, 2] crop pixels
    cols = centre[..., 0, None] / stride + steps[None, None, :] * factors[None, :, None]  # [B, S, cells]
    rows = centre[..., 1, None] / stride + steps[None, None, :] * factors[None, :, None]
    gx = 2.0 * cols / (width - 1) - 1.0
    gy = 2.0 * rows / (height - 1) - 1.0
    s = len(factors)
    grid = np.stack(np.broadcast_arrays(gx[:, :, None, :], gy[:, :, :, None]), axis=-1)  # [B, S, cells, cells, 2]
    grid_t = torch.from_numpy(grid.reshape(b, s * cells, cells, 2)).to(device=xf.device, dtype=xf.dtype)
    windows = F.grid_sample(xf, grid_t, mode="bilinear", padding_mode="zeros", align_corners=True)
    return windows.reshape(b, -1, s, cells, cells).transpose(1, 2)
