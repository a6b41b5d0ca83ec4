"""Box formats, IoU and SiamRPN anchor box coding.

Formats (last axis of size 4, continuous pixel coordinates, width = x2 - x1):
  xywh   = (x, y, w, h), top-left corner + size
  cxcywh = (cx, cy, w, h), centre + size (anchors and the box coding use this)
  xyxy   = (x1, y1, x2, y2)

Every function accepts NumPy arrays or torch tensors of shape [..., 4] and returns
the same kind; leading axes broadcast.
"""

from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

ArrayLike = Union[np.ndarray, torch.Tensor, Sequence[float]]

FORMATS = ("xywh", "cxcywh", "xyxy")


def _as_array(boxes: ArrayLike) -> np.ndarray | torch.Tensor:
    if isinstance(boxes, torch.Tensor):
        return boxes
    arr = np.asarray(boxes)
    if not np.issubdtype(arr.dtype, np.floating):
        arr = arr.astype(np.float64)
    return arr


def _pair(first: ArrayLike, second: ArrayLike):
    """Both as NumPy, or both as torch (on the tensor's device/dtype) when either is a tensor."""
    a, b = _as_array(first), _as_array(second)
    if isinstance(a, torch.Tensor) and not isinstance(b, torch.Tensor):
        b = torch.as_tensor(b, dtype=a.dtype, device=a.device)
    elif isinstance(b, torch.Tensor) and not isinstance(a, torch.Tensor):
        a = torch.as_tensor(a, dtype=b.dtype, device=b.device)
    return a, b


def _stack(parts: Sequence, like: np.ndarray | torch.Tensor) -> np.ndarray | torch.Tensor:
    if isinstance(like, torch.Tensor):
        return torch.stack(list(parts), dim=-1)
    return np.stack(parts, axis=-1)


def _unpack(boxes: np.ndarray | torch.Tensor):
    if boxes.shape[-1] != 4:
        raise ValueError(f"boxes must have a last axis of size 4, got shape {tuple(boxes.shape)}")
    return boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]


def xywh_to_cxcywh(boxes: ArrayLike) -> np.ndarray | torch.Tensor:
    b = _as_array(boxes)
    x, y, w, h = _unpack(b)
    return _stack([x + w / 2, y + h / 2, w, h], b)


def cxcywh_to_xywh(boxes: ArrayLike) -> np.ndarray | torch.Tensor:
    b = _as_array(boxes)
    cx, cy, w, h = _unpack(b)
    return _stack([cx - w / 2, cy - h / 2, w, h], b)


def cxcywh_to_xyxy(boxes: ArrayLike) -> np.ndarray | torch.Tensor:
    b = _as_array(boxes)
    cx, cy, w, h = _unpack(b)
    return _stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], b)


def xyxy_to_cxcywh(boxes: ArrayLike) -> np.ndarray | torch.Tensor:
    b = _as_array(boxes)
    x1, y1, x2, y2 = _unpack(b)
    return _stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], b)


def xywh_to_xyxy(boxes: ArrayLike) -> np.ndarray | torch.Tensor:
    b = _as_array(boxes)
    x, y, w, h = _unpack(b)
    return _stack([x, y, x + w, y + h], b)


def xyxy_to_xywh(boxes: ArrayLike) -> np.ndarray | torch.Tensor:
    b = _as_array(boxes)
    x1, y1, x2, y2 = _unpack(b)
    return _stack([x1, y1, x2 - x1, y2 - y1], b)


def convert(boxes: ArrayLike, src: str, dst: str) -> np.ndarray | torch.Tensor:
    """Convert between any two of FORMATS."""
    for fmt in (src, dst):
        if fmt not in FORMATS:
            raise ValueError(f"unknown box format '{fmt}'; known: {FORMATS}")
    b = _as_array(boxes)
    if src == dst:
        return b
    xyxy = b if src == "xyxy" else (xywh_to_xyxy(b) if src == "xywh" else cxcywh_to_xyxy(b))
    if dst == "xyxy":
        return xyxy
    return xyxy_to_xywh(xyxy) if dst == "xywh" else xyxy_to_cxcywh(xyxy)


def iou(boxes1: ArrayLike, boxes2: ArrayLike, fmt: str = "xyxy") -> np.ndarray | torch.Tensor:
    """Element-wise IoU of two broadcastable box arrays [..., 4] -> [...].

    Degenerate boxes (zero or negative area) have IoU 0 with everything.
    """
    a, b = _pair(boxes1, boxes2)
    a = convert(a, fmt, "xyxy")
    b = convert(b, fmt, "xyxy")
    ax1, ay1, ax2, ay2 = _unpack(a)
    bx1, by1, bx2, by2 = _unpack(b)
    if isinstance(a, torch.Tensor):
        maximum, minimum = torch.maximum, torch.minimum
        clip = lambda v: v.clamp(min=0)  # noqa: E731
    else:
        maximum, minimum = np.maximum, np.minimum
        clip = lambda v: np.clip(v, 0, None)  # noqa: E731
    inter = clip(minimum(ax2, bx2) - maximum(ax1, bx1)) * clip(minimum(ay2, by2) - maximum(ay1, by1))
    area_a = clip(ax2 - ax1) * clip(ay2 - ay1)
    area_b = clip(bx2 - bx1) * clip(by2 - by1)
    union = area_a + area_b - inter
    if isinstance(union, torch.Tensor):
        return torch.where(union > 0, inter / union.clamp(min=1e-12), torch.zeros_like(union))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def pairwise_iou(boxes1: ArrayLike, boxes2: ArrayLike, fmt: str = "xyxy") -> np.ndarray | torch.Tensor:
    """IoU of every box in `boxes1` [..., N, 4] with every box in `boxes2` [..., M, 4] -> [..., N, M].

    Batched anchor-vs-target use: `pairwise_iou(targets[:, None], anchors, "cxcywh")`
    with targets [B, 4] and anchors [A, 4] gives [B, 1, A].
    """
    a, b = _pair(boxes1, boxes2)
    return iou(a[..., :, None, :], b[..., None, :, :], fmt)


def encode(boxes: ArrayLike, anchors: ArrayLike) -> np.ndarray | torch.Tensor:
    """SiamRPN box coding of `boxes` w.r.t. `anchors` (both cx, cy, w, h; broadcastable).

    tx = (x - xa) / wa, ty = (y - ya) / ha, tw = log(w / wa), th = log(h / ha).
    """
    b, a = _pair(boxes, anchors)
    x, y, w, h = _unpack(b)
    xa, ya, wa, ha = _unpack(a)
    log = torch.log if isinstance(b, torch.Tensor) else np.log
    return _stack([(x - xa) / wa, (y - ya) / ha, log(w / wa), log(h / ha)], b)


def decode(deltas: ArrayLike, anchors: ArrayLike) -> np.ndarray | torch.Tensor:
    """Inverse of `encode`: boxes (cx, cy, w, h) from offsets (tx, ty, tw, th) and anchors."""
    d, a = _pair(deltas, anchors)
    tx, ty, tw, th = _unpack(d)
    xa, ya, wa, ha = _unpack(a)
    exp = torch.exp if isinstance(d, torch.Tensor) else np.exp
    return _stack([tx * wa + xa, ty * ha + ya, exp(tw) * wa, exp(th) * ha], d)
