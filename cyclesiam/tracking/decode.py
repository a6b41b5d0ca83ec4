"""The one SiamRPN decode (pysot SiamRPN/SiamMask), shared by the tracker and the training cycle's
inference hops. NumPy arrays or torch tensors (array_ops.py picks the operations), any dtype and
device: the tracker runs it on NumPy (float64 from the scores on), the cycle on its training tensors
(differentiable in cls/loc except through the argmax).

  score   = softmax over (background, foreground) of each anchor
            (cls channels [2, k], loc channels [4, k]; anchor index a * R * R + i * R + j)
  box     = anchor decode of loc (crop pixels, relative to the crop centre)
  penalty = exp(-(r_c * s_c - 1) * penalty_k)   ratio and scale change against the current size,
            s_c on the context sides sqrt((w + p)(h + p)), p = context (w + h): the caller's context
  pscore  = penalty * score * (1 - wi) + window * wi      (x score factors), argmax -> best
  lr      = penalty * score * lr at best
  centre += box.xy / scale;  size = size (1 - lr) + box.wh / scale * lr, clipped to the bounds

A candidate with a non-finite score or box, or a non-positive size (a diverged network), is never
chosen; a row with none valid keeps its box (lr 0, no move).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cyclesiam.bbox import decode
from cyclesiam.tracking.array_ops import Array, ops


def cosine_window(score_size: int, num_anchors: int) -> np.ndarray:
    """Cosine window over the response map, tiled over anchors -> [k * R * R] float64."""
    h = np.hanning(score_size)
    return np.tile(np.outer(h, h).reshape(-1), num_anchors)


def decode_response(cls: Array, loc: Array, anchors: Array) -> tuple[Array, Array]:
    """cls [B, 2k, R, R], loc [B, 4k, R, R], anchors [k*R*R, 4] -> (fg scores [B, N], boxes [B, N, 4] cxcywh),
    in the kind and dtype of `loc`."""
    xp = ops(loc)
    b = cls.shape[0]
    scores = xp.softmax_first(cls.reshape(b, 2, -1))[:, 1]
    deltas = xp.swap_last(loc.reshape(b, 4, -1))
    return scores, decode(deltas, xp.asarray(anchors, deltas))


def context_side(w: Array, h: Array, context: float) -> Array:
    """Side sqrt((w + p)(h + p)), p = context (w + h), of a box and its context (the template window)."""
    p = context * (w + h)
    return ops(w).sqrt((w + p) * (h + p))


def _change(r: Array) -> Array:
    return ops(r).maximum(r, 1.0 / r)


@dataclass
class Choice:
    """The chosen anchor of each of B rows."""

    best: Array  # [B] flattened anchor index
    score: Array  # [B] raw foreground score at best (0 for a row with no valid candidate)
    penalty: Array  # [B] penalty at best (0 for a row with no valid candidate)
    box: Array  # [B, 4] (cx, cy, w, h) at best, crop pixels relative to the crop centre
    pscore: Array  # [B, N] what the argmax ran on (-inf at invalid candidates)
    held: Array  # [B] bool: no valid candidate


def choose(scores: Array, boxes: Array, sizes: Array, window: Array, window_influence: Array | float,
           penalty_k: float, context: float, score_factors: Array | None = None) -> Choice:
    """scores [B, N], boxes [B, N, 4] (crop pixels), sizes [B, 2] current (w, h) at crop scale,
    window [N], window_influence scalar or [B, 1], score_factors [B, N] (distractor memory); all of
    one kind (NumPy or torch)."""
    xp = ops(scores)
    valid = xp.isfinite(scores) & xp.all_last(xp.isfinite(boxes)) & (boxes[..., 2] > 0) & (boxes[..., 3] > 0)
    scores = xp.where(valid, scores, xp.full_like(scores, 0.0))
    boxes = xp.where(valid[..., None], boxes, xp.full_like(boxes, 1.0))
    pw, ph = boxes[..., 2], boxes[..., 3]
    tw, th = sizes[:, 0:1], sizes[:, 1:2]
    s_c = _change(context_side(pw, ph, context) / context_side(tw, th, context))
    r_c = _change((tw / th) / (pw / ph))
    penalty = xp.exp(-(r_c * s_c - 1.0) * penalty_k)
    pscore = penalty * scores * (1.0 - window_influence) + window[None, :] * window_influence
    if score_factors is not None:
        pscore = pscore * score_factors
    pscore = xp.where(valid, pscore, xp.full_like(pscore, -np.inf))
    best = xp.argmax_rows(pscore)
    idx = best[:, None]
    held = ~xp.take_rows(valid, idx)
    score = xp.where(held, 0.0, xp.take_rows(scores, idx))
    pen = xp.where(held, 0.0, xp.take_rows(penalty, idx))
    box = xp.take_rows(boxes, idx)
    return Choice(best=best, score=score, penalty=pen, box=box, pscore=pscore, held=held)


def clip_size(size: Array, extent: Array, min_size: Array | float) -> Array:
    """Sizes [B, 2] clipped to [min(min_size, extent), extent] (extent [2] or [B, 2]; min_size scalar or [B])."""
    xp = ops(size)
    min_size = xp.asarray(min_size, size)
    if min_size.ndim == 1:
        min_size = min_size[:, None]
    return xp.minimum(xp.maximum(size, xp.minimum(min_size, extent)), extent)


def step(center: Array, size: Array, choice: Choice, scale: Array, lr: float, lo: Array, hi: Array,
         min_size: Array | float, offset: Array | None = None) -> tuple[Array, Array, Array]:
    """Move the state (center, size [B, 2], image pixels) by the chosen box: `scale` [B] crop pixels per
    image pixel, bounds lo/hi ([2] or [B, 2]); `offset` [B, 2] (crop pixels) replaces the box's centre
    offset (the tracker's sub-cell peak). A held row keeps its box. -> (center, size, lr [B])."""
    xp = ops(center)
    box = choice.box / scale[:, None]
    move = box[:, :2] if offset is None else offset / scale[:, None]
    move = xp.where(choice.held[:, None], 0.0, move)
    rate = choice.penalty * choice.score * lr
    new_center = xp.minimum(xp.maximum(center + move, lo), hi)
    new_size = size * (1.0 - rate[:, None]) + box[:, 2:] * rate[:, None]
    return new_center, clip_size(new_size, hi - lo, min_size), rate
