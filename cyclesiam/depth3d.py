"""The target in 3D from depth aligned to the colour image: a robust centre and extent of the
depth pixels under a target's mask (or its box when masks are off), in the camera's optical
frame (x right, y down, z forward; metres).

Steps, all vectorised over at most `max_points` pixels (an even grid over the region):
valid pixels only (finite, within [min_range, max_range]); the depths are split into
clusters by a histogram with `cluster_bin` wide bins (an empty bin separates two clusters);
the target is the nearest cluster with at least `cluster_min_share` of the pixels (the
background behind a mask's edge is farther, an occluder in front is small), else the
largest; its pixels are back-projected with the pinhole intrinsics; centre = per-axis median,
extent = the `extent_percentile`..(100 - p) percentile span per axis.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cyclesiam.config import DepthConfig

__all__ = ["Intrinsics", "No3D", "Target3D", "depth_in_metres", "target_3d"]

MM_TO_M = 0.001  # 16UC1 depth is in millimetres (REP 118)
NOISE_SHARE = 0.002  # a histogram bin with at most this share of the pixels counts as empty


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of the colour image the depth is aligned to (pixels)."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def problem(self) -> str | None:
        """Why these intrinsics cannot back-project, or None."""
        values = (self.fx, self.fy, self.cx, self.cy)
        if not all(math.isfinite(v) for v in values):
            return f"non-finite intrinsics fx={self.fx} fy={self.fy} cx={self.cx} cy={self.cy}"
        if self.fx <= 0 or self.fy <= 0:
            return f"focal length must be > 0, got fx={self.fx} fy={self.fy}"
        if self.width <= 0 or self.height <= 0:
            return f"image size must be > 0, got {self.width}x{self.height}"
        return None


@dataclass(frozen=True)
class Target3D:
    """A target's robust 3D centre and axis-aligned extent (metres, optical frame)."""

    center: tuple[float, float, float]
    size: tuple[float, float, float]
    pixels: int  # depth pixels of the chosen cluster (of the sampled grid)
    valid: int  # valid depth pixels in the region (of the sampled grid)


@dataclass(frozen=True)
class No3D:
    """Why a target has no 3D output: `kind` is a short key, `message` the sentence for a user."""

    kind: str
    message: str


def depth_in_metres(depth: np.ndarray) -> np.ndarray:
    """uint16 millimetres or float metres -> float32 metres (NaN/inf kept; they are invalid later)."""
    if depth.dtype == np.uint16:
        return depth.astype(np.float32) * np.float32(MM_TO_M)
    return depth.astype(np.float32, copy=False)


def target_3d(depth: np.ndarray, intrinsics: Intrinsics, cfg: DepthConfig,
              box: tuple[float, float, float, float], mask: np.ndarray | None = None) -> Target3D | No3D:
    """The 3D centre and extent of the depth pixels under `mask` (HxW, >0 = target; same size
    as `depth`) or, without a mask, inside `box` (x, y, w, h in pixels)."""
    height, width = depth.shape[:2]
    region = _region(box, mask, width, height)
    if region is None:
        return No3D("empty_region", "the target's mask/box covers no pixel of the depth image")
    x0, y0, x1, y1 = region
    step = max(1, math.ceil(math.sqrt((x1 - x0) * (y1 - y0) / cfg.max_points)))
    z = depth_in_metres(depth[y0:y1:step, x0:x1:step])
    inside = np.ones(z.shape, bool) if mask is None else mask[y0:y1:step, x0:x1:step] > 0
    valid = inside & (z >= cfg.min_range) & (z <= cfg.max_range)  # NaN and inf fail a comparison
    rows, cols = np.nonzero(valid)
    zs = z[rows, cols]
    needed = math.ceil(cfg.min_pixels / (step * step))  # the grid samples one pixel in step*step
    if zs.size < needed:
        total = int(np.count_nonzero(inside))
        what = "mask" if mask is not None else "box"
        return No3D("few_pixels", (
            f"too few valid depth pixels in the target's {what}: {zs.size * step * step} < depth.min_pixels="
            f"{cfg.min_pixels} ({total * step * step} pixels, the rest zero, NaN, inf or outside "
            f"{cfg.min_range:g}..{cfg.max_range:g} m)"))
    keep = _target_cluster(zs, cfg.cluster_bin, cfg.cluster_min_share)
    zs, rows, cols = zs[keep], rows[keep], cols[keep]
    us = (x0 + cols * step).astype(np.float32)
    vs = (y0 + rows * step).astype(np.float32)
    points = np.stack([(us - intrinsics.cx) * zs / intrinsics.fx, (vs - intrinsics.cy) * zs / intrinsics.fy, zs])
    p = cfg.extent_percentile
    low, mid, high = np.percentile(points, [p, 50.0, 100.0 - p], axis=1)
    return Target3D(center=tuple(float(v) for v in mid), size=tuple(float(v) for v in high - low),
                    pixels=int(zs.size), valid=int(valid.sum()))


def _region(box, mask: np.ndarray | None, width: int, height: int) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1) of the mask's pixels, or of the box clipped to the image; None if empty."""
    if mask is not None:
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            return None
        cols = np.flatnonzero(mask[rows[0]:rows[-1] + 1].any(axis=0))
        return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1
    x, y, w, h = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x, y, w, h)):
        return None
    x0, y0 = max(0, math.floor(x)), max(0, math.floor(y))
    x1, y1 = min(width, math.ceil(x + w)), min(height, math.ceil(y + h))
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _target_cluster(zs: np.ndarray, bin_m: float, min_share: float) -> np.ndarray:
    """Boolean selection of the pixels of the target's depth cluster: the nearest run of
    occupied histogram bins holding `min_share` of the pixels, else the largest run."""
    lo = float(zs.min())
    index = ((zs - lo) / bin_m).astype(np.int64)
    counts = np.bincount(index)
    # a bin with a handful of pixels (edge pixels mixing object and background) does not join two clusters
    occupied = np.concatenate([[False], counts > NOISE_SHARE * zs.size, [False]])
    edges = np.flatnonzero(occupied[1:] != occupied[:-1])
    starts, ends = edges[0::2], edges[1::2]  # runs [start, end) of occupied bins
    cumulative = np.concatenate([[0], np.cumsum(counts)])
    sizes = cumulative[ends] - cumulative[starts]
    big = np.flatnonzero(sizes >= min_share * zs.size)
    run = int(big[0]) if big.size else int(np.argmax(sizes))
    return (index >= starts[run]) & (index < ends[run])
