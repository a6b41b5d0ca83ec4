"""Distractor memory by position (tracker.distractor_*): DaSiamRPN's distractor-aware idea
without extra network passes.

A Siamese score map often has several strong peaks: the target and things that look like it
(the cycle-trained default model scores many textured objects above 0.9). The cosine window
keeps the tracker on the target while its own peak is strong; when the target's score dips
(occlusion, blur, lighting) the strongest far peak wins and the track jumps to it. That peak
was usually already there, at the same place, in the frames before. So after each tracked
frame the strong peaks away from the target are remembered (image coordinates), and in the
next frame candidates near a remembered peak are damped. Positions are remembered for one
frame only: a moving camera moves the distractors too, a few pixels per frame at camera rate.
"""

from __future__ import annotations

import numpy as np


def cell_centers(anchors: np.ndarray, score_size: int) -> np.ndarray:
    """Centres of the R x R score cells [R*R, 2] (index i R + j) from anchors [k R R, 4] (index
    a R R + i R + j; every anchor of a cell shares its centre)."""
    return np.asarray(anchors, dtype=np.float64)[:score_size * score_size, :2]


def local_peaks(score_map: np.ndarray, min_score: float) -> tuple[np.ndarray, np.ndarray]:
    """Cells of an R x R map that are >= their 8 neighbours and >= min_score -> (rows, cols)."""
    padded = np.pad(score_map, 1, constant_values=-np.inf)
    r, c = score_map.shape
    neighbours = np.stack([padded[1 + di:1 + di + r, 1 + dj:1 + dj + c]
                           for di in (-1, 0, 1) for dj in (-1, 0, 1) if (di, dj) != (0, 0)])
    peak = (score_map >= neighbours.max(axis=0)) & (score_map >= min_score) & np.isfinite(score_map)
    return np.nonzero(peak)


def find_distractors(scores: np.ndarray, anchors: np.ndarray, score_size: int, crop_center: np.ndarray,
                     scale_z: float, new_center: np.ndarray, target_size: float, min_score: float,
                     min_distance: float) -> np.ndarray:
    """Strong peaks of one search that are not the target.

    scores [N] raw foreground scores (N = k R R, index a R R + i R + j); anchors [N, 4] (centres in
    crop pixels relative to the crop centre); crop_center (image pixels) and scale_z (crop pixels
    per image pixel) of that search. Peaks are local maxima of the max over anchors with score >=
    min_score, farther than min_distance x target_size (image pixels) from new_center
    -> [D, 2] image pixels."""
    r = score_size
    score_map = np.asarray(scores, dtype=np.float64).reshape(-1, r, r).max(axis=0)
    rows, cols = local_peaks(score_map, min_score)
    cells = cell_centers(anchors, r).reshape(r, r, 2)
    positions = crop_center + cells[rows, cols] / scale_z
    far = np.hypot(*(positions - new_center).T) > min_distance * target_size
    return positions[far]


def distractor_factors(anchors: np.ndarray, score_size: int, crop_centers: np.ndarray, scale_z: np.ndarray,
                       distractors: list[np.ndarray], radii: np.ndarray, penalty: float) -> np.ndarray:
    """Factor on each candidate's penalised score: 1 - penalty where the candidate's anchor centre lies
    within radii[b] (image pixels) of one of row b's remembered distractors, else 1.

    anchors [N, 4] (N = k R R, see cell_centers) in crop pixels relative to the crop centre;
    crop_centers [B, 2] image pixels; scale_z [B]; distractors: per row [D_b, 2] image pixels -> [B, N]."""
    cells = cell_centers(anchors, score_size)
    k = len(anchors) // len(cells)
    factors = np.ones((len(crop_centers), len(cells)))
    for b, points in enumerate(distractors):
        if len(points) == 0:
            continue
        candidates = crop_centers[b] + cells / scale_z[b]  # [R R, 2]
        gaps = np.linalg.norm(candidates[:, None, :] - np.asarray(points)[None, :, :], axis=2)  # [R R, D]
        factors[b, (gaps <= radii[b]).any(axis=1)] = 1.0 - penalty
    return np.tile(factors, (1, k))
