"""The tracker's face of the shared SiamRPN decode (decode.py, run on NumPy here): B targets at once,
float64, plus the tracker's own option of a sub-cell peak centre (tracker.center_from "peak")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from cyclesiam.config import TrackerConfig
from cyclesiam.tracking import decode
from cyclesiam.tracking.soft_center import soft_centers


@dataclass
class PostResult:
    """Vectorised post-processing output for B targets."""

    best: np.ndarray  # [B] int, flattened anchor index of the chosen box
    score: np.ndarray  # [B] raw fg score at `best`
    center: np.ndarray  # [B, 2] new centre (image pixels)
    size: np.ndarray  # [B, 2] new (w, h) (image pixels)
    penalty: np.ndarray  # [B] penalty at `best`
    pscore: np.ndarray  # [B, N] penalised, windowed score (what argmax ran on)
    lr: np.ndarray  # [B] size smoothing weight used (cfg.lr * penalty * score; 0 for a held target)

    def best_pscore(self) -> np.ndarray:
        """The penalised, windowed score of each row's chosen anchor -> [rows]."""
        return self.pscore[np.arange(len(self.best)), self.best]

    def take(self, rows: np.ndarray) -> "PostResult":
        """The results of the given rows only."""
        return PostResult(**{k: v[rows] for k, v in vars(self).items()})


def _parabola_vertex(left: np.ndarray, mid: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Offset in [-0.5, 0.5] cells of the vertex of the parabola through three equally spaced values
    (0 where they are not concave or a neighbour is missing)."""
    curvature = left - 2.0 * mid + right
    ok = np.isfinite(left) & np.isfinite(right) & (curvature < 0)
    offset = 0.5 * (left - right) / np.where(ok, curvature, -1.0)
    return np.where(ok, np.clip(offset, -0.5, 0.5), 0.0)


def peak_positions(response: np.ndarray, best: np.ndarray, anchors: np.ndarray, score_size: int) -> np.ndarray:
    """Sub-cell position of each row's chosen cell: the vertex of a parabola through the response at
    the cell and its row / column neighbours (same anchor). response [B, N] (N = k R R, index
    a R R + i R + j), best [B], anchors [N, 4] (centres on the stride grid, crop pixels) -> [B, 2]
    crop pixels. At most half a cell from the cell's centre; none on the border of the map."""
    r = score_size
    maps = response.reshape(len(best), -1, r, r)
    a, rest = np.divmod(best, r * r)
    i, j = np.divmod(rest, r)
    rows = np.arange(len(best))

    def at(di: int, dj: int) -> np.ndarray:
        ii, jj = i + di, j + dj
        inside = (ii >= 0) & (ii < r) & (jj >= 0) & (jj < r)
        values = maps[rows, a, np.clip(ii, 0, r - 1), np.clip(jj, 0, r - 1)]
        return np.where(inside, values, -np.inf)

    stride = float(anchors[1, 0] - anchors[0, 0]) if r > 1 else 0.0
    mid = at(0, 0)
    dx = _parabola_vertex(at(0, -1), mid, at(0, 1))
    dy = _parabola_vertex(at(-1, 0), mid, at(1, 0))
    return anchors[best, :2] + stride * np.stack([dx, dy], axis=1)


def postprocess(
    scores: np.ndarray,
    boxes: np.ndarray,
    centers: np.ndarray,
    sizes: np.ndarray,
    scale_z: np.ndarray,
    window: np.ndarray,
    window_influence: np.ndarray | float,
    cfg: TrackerConfig,
    image_shape: Sequence[int],
    anchors: np.ndarray | None = None,
    score_size: int = 0,
    score_factors: np.ndarray | None = None,
) -> PostResult:
    """SiamRPN post-processing for B targets at once (decode.choose + decode.step at the tracker's
    context_amount, the image as bounds).

    scores [B, N]; boxes [B, N, 4] (cx, cy, w, h) in crop pixels relative to the crop centre;
    centers/sizes [B, 2] current state in image pixels; scale_z [B] crop pixels per image pixel;
    window [N]; window_influence scalar or [B]; anchors [N, 4] of the R x R map, R = score_size (both
    needed when cfg.center_from is "peak"); score_factors [B, N] multiply the penalised, windowed
    score before the argmax (distractor memory).
    """
    t = _float64
    centers, sizes, scale_z = t(centers).reshape(-1, 2), t(sizes).reshape(-1, 2), t(scale_z).reshape(-1)
    wi = np.broadcast_to(t(window_influence), scale_z.shape)[:, None]
    choice = decode.choose(t(scores), t(boxes), sizes * scale_z[:, None], t(window), wi, cfg.penalty_k,
                           cfg.context_amount, None if score_factors is None else t(score_factors))
    offset = None
    if cfg.center_from == "peak":
        if anchors is None or score_size < 1:
            raise ValueError("postprocess: tracker.center_from 'peak' needs the anchors and the score size")
        offset = peak_positions(choice.pscore, choice.best, anchors, score_size)
    elif cfg.center_from == "soft":
        offset = soft_centers(choice.pscore, t(boxes), choice.best, np.sqrt(sizes.prod(axis=1)) * scale_z)
    center, size, lr = decode.step(centers, sizes, choice, scale_z, cfg.lr, np.zeros(2), _image_extent(image_shape),
                                   cfg.min_size, offset)
    return PostResult(best=choice.best, score=choice.score, center=center, size=size, penalty=choice.penalty,
                      pscore=choice.pscore, lr=lr)


def clip_size(size: np.ndarray, cfg: TrackerConfig, image_shape: Sequence[int]) -> np.ndarray:
    """Sizes [B, 2] clipped to [min_size, image side]."""
    return decode.clip_size(_float64(size), _image_extent(image_shape), cfg.min_size)


def _image_extent(image_shape: Sequence[int]) -> np.ndarray:
    return np.array([float(image_shape[1]), float(image_shape[0])])


def _float64(values: np.ndarray | float) -> np.ndarray:
    return np.asarray(values, dtype=np.float64)
