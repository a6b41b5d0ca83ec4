"""The one SiamRPN decode (pysot SiamRPN/SiamMask), shared by the tracker and the training cycle's
inference hops. Torch, any dtype and device; the tracker runs it in float64 on the CPU, the cycle
on its training tensors (differentiable in cls/loc except through the argmax).

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
import torch

from cyclesiam.bbox import decode


def cosine_window(score_size: int, num_anchors: int) -> np.ndarray:
    """Cosine window over the response map, tiled over anchors -> [k * R * R] float64."""
    h = np.hanning(score_size)
    return np.tile(np.outer(h, h).reshape(-1), num_anchors)


def decode_response(cls: torch.Tensor, loc: torch.Tensor, anchors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cls [B, 2k, R, R], loc [B, 4k, R, R], anchors [k*R*R, 4] -> (fg scores [B, N], boxes [B, N, 4] cxcywh)."""
    b = cls.shape[0]
    scores = torch.softmax(cls.reshape(b, 2, -1), dim=1)[:, 1]
    deltas = loc.reshape(b, 4, -1).transpose(1, 2)
    return scores, decode(deltas, anchors.to(deltas.dtype))


def context_side(w: torch.Tensor, h: torch.Tensor, context: float) -> torch.Tensor:
    """Side sqrt((w + p)(h + p)), p = context (w + h), of a box and its context (the template window)."""
    p = context * (w + h)
    return torch.sqrt((w + p) * (h + p))


def _change(r: torch.Tensor) -> torch.Tensor:
    return torch.maximum(r, 1.0 / r)


@dataclass
class Choice:
    """The chosen anchor of each of B rows."""

    best: torch.Tensor  # [B] flattened anchor index
    score: torch.Tensor  # [B] raw foreground score at best (0 for a row with no valid candidate)
    penalty: torch.Tensor  # [B] penalty at best (0 for a row with no valid candidate)
    box: torch.Tensor  # [B, 4] (cx, cy, w, h) at best, crop pixels relative to the crop centre
    pscore: torch.Tensor  # [B, N] what the argmax ran on (-inf at invalid candidates)
    held: torch.Tensor  # [B] bool: no valid candidate


def choose(scores: torch.Tensor, boxes: torch.Tensor, sizes: torch.Tensor, window: torch.Tensor,
           window_influence: torch.Tensor | float, penalty_k: float, context: float,
           score_factors: torch.Tensor | None = None) -> Choice:
    """scores [B, N], boxes [B, N, 4] (crop pixels), sizes [B, 2] current (w, h) at crop scale,
    window [N], window_influence scalar or [B, 1], score_factors [B, N] (distractor memory)."""
    valid = torch.isfinite(scores) & torch.isfinite(boxes).all(dim=-1) & (boxes[..., 2] > 0) & (boxes[..., 3] > 0)
    scores = torch.where(valid, scores, torch.zeros_like(scores))
    boxes = torch.where(valid[..., None], boxes, torch.ones_like(boxes))
    pw, ph = boxes[..., 2], boxes[..., 3]
    tw, th = sizes[:, 0:1], sizes[:, 1:2]
    s_c = _change(context_side(pw, ph, context) / context_side(tw, th, context))
    r_c = _change((tw / th) / (pw / ph))
    penalty = torch.exp(-(r_c * s_c - 1.0) * penalty_k)
    pscore = penalty * scores * (1.0 - window_influence) + window[None, :] * window_influence
    if score_factors is not None:
        pscore = pscore * score_factors
    pscore = torch.where(valid, pscore, torch.full_like(pscore, -torch.inf))
    best = pscore.argmax(dim=1)
    idx = best[:, None]
    held = ~valid.gather(1, idx)[:, 0]
    zero = torch.zeros_like(held, dtype=scores.dtype)
    score = torch.where(held, zero, scores.gather(1, idx)[:, 0])
    pen = torch.where(held, zero, penalty.gather(1, idx)[:, 0])
    box = boxes.gather(1, idx[:, :, None].expand(-1, 1, 4))[:, 0]
    return Choice(best=best, score=score, penalty=pen, box=box, pscore=pscore, held=held)


def clip_size(size: torch.Tensor, extent: torch.Tensor, min_size: torch.Tensor | float) -> torch.Tensor:
    """Sizes [B, 2] clipped to [min(min_size, extent), extent] (extent [2] or [B, 2]; min_size scalar or [B])."""
    min_size = torch.as_tensor(min_size, dtype=size.dtype, device=size.device)
    if min_size.dim() == 1:
        min_size = min_size[:, None]
    return torch.minimum(torch.maximum(size, torch.minimum(min_size, extent)), extent)


def step(center: torch.Tensor, size: torch.Tensor, choice: Choice, scale: torch.Tensor, lr: float,
         lo: torch.Tensor, hi: torch.Tensor, min_size: torch.Tensor | float,
         offset: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Move the state (center, size [B, 2], image pixels) by the chosen box: `scale` [B] crop pixels per
    image pixel, bounds lo/hi ([2] or [B, 2]); `offset` [B, 2] (crop pixels) replaces the box's centre
    offset (the tracker's sub-cell peak). A held row keeps its box. -> (center, size, lr [B])."""
    box = choice.box / scale[:, None]
    move = box[:, :2] if offset is None else offset / scale[:, None]
    move = torch.where(choice.held[:, None], torch.zeros_like(move), move)
    rate = choice.penalty * choice.score * lr
    new_center = torch.minimum(torch.maximum(center + move, lo), hi)
    new_size = size * (1.0 - rate[:, None]) + box[:, 2:] * rate[:, None]
    return new_center, clip_size(new_size, hi - lo, min_size), rate
