"""Anchor label assignment for the final cycle hop (pysot `AnchorTarget`, batched).

Kept separate from the losses: given the anchors of the response map and the target box
in search-crop coordinates, decide which anchors are positive (IoU > positive_iou),
negative (IoU < negative_iou) or ignored, sample at most `max_positives` positives and
`max_anchors` anchors in total per pair, and give each sampled anchor its loss weight
and its box-regression target. Everything is batched over the samples (no Python loop).

Conventions (see `cyclesiam.anchors`): anchors and targets are (cx, cy, w, h) in
search-crop pixels relative to the crop centre; anchor index = a * R * R + i * R + j.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from cyclesiam import bbox

POSITIVE = 1
NEGATIVE = 0
IGNORE = -1


@dataclass
class AnchorLabels:
    """Labels of one batch of pairs: A anchors per pair."""

    labels: torch.Tensor  # [B, A] int64: 1 positive, 0 negative, -1 ignored (incl. not sampled)
    weights: torch.Tensor  # [B, A] float: 1 for sampled positives, negative_weight for sampled negatives, else 0
    deltas: torch.Tensor  # [B, A, 4] float: SiamRPN offsets (tx, ty, tw, th) of the target w.r.t. each anchor
    iou: torch.Tensor  # [B, A] float: IoU of every anchor with the target

    def positive_positions(self, num_anchors: int) -> torch.Tensor:
        """[B, R*R] bool: response positions where at least one of the k anchors is a sampled positive."""
        b, a = self.labels.shape
        return self.labels.view(b, num_anchors, a // num_anchors).eq(POSITIVE).any(dim=1)


def sample_subset(candidates: torch.Tensor, quota: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Per row, a uniformly random subset of at most `quota[b]` of the True entries of `candidates` [B, A].

    Returns a bool mask [B, A]. Vectorised: random keys, candidates ranked first, keep rank < quota.
    """
    keys = torch.rand(candidates.shape, generator=generator, device="cpu").to(candidates.device)
    return top_subset(candidates, keys, quota)


def top_subset(candidates: torch.Tensor, keys: torch.Tensor, quota: torch.Tensor) -> torch.Tensor:
    """Per row, the at most `quota[b]` True entries of `candidates` [B, A] with the highest `keys` -> bool [B, A]."""
    keys = keys.detach().float()
    keys = torch.where(candidates, keys, torch.full_like(keys, -torch.inf))
    order = torch.argsort(keys, dim=1, descending=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(order.shape[1], device=order.device).expand_as(order))
    return candidates & (ranks < quota.to(ranks.device).view(-1, 1))


def assign_labels(
    anchors: torch.Tensor,
    targets: torch.Tensor,
    positive_iou: float = 0.6,
    negative_iou: float = 0.3,
    max_positives: int = 16,
    max_anchors: int = 64,
    negative_weight: float = 0.2,
    generator: torch.Generator | None = None,
    negative_scores: torch.Tensor | None = None,
    hard_negatives: float = 0.0,
) -> AnchorLabels:
    """Label anchors [A, 4] against one target per pair [B, 4] (both cx, cy, w, h).

    Positive: IoU > positive_iou; negative: IoU < negative_iou; the rest ignored. At most
    `max_positives` positives are sampled, and negatives fill up to `max_anchors` anchors in
    total; unsampled anchors become IGNORE. `generator` (CPU) makes the sampling reproducible.
    With `hard_negatives` > 0, that fraction of the negatives are the ones with the highest
    `negative_scores` [B, A] (the network's current object score: the distractors), the rest random.
    """
    if not 0.0 <= hard_negatives <= 1.0:
        raise ValueError(f"hard_negatives must be in [0, 1], got {hard_negatives}")
    if hard_negatives > 0 and negative_scores is None:
        raise ValueError("hard_negatives > 0 needs negative_scores")
    if anchors.ndim != 2 or anchors.shape[1] != 4:
        raise ValueError(f"anchors must be [A, 4], got {tuple(anchors.shape)}")
    if targets.ndim != 2 or targets.shape[1] != 4:
        raise ValueError(f"targets must be [B, 4], got {tuple(targets.shape)}")
    if not 0.0 <= negative_iou <= positive_iou <= 1.0:
        raise ValueError(f"need 0 <= negative_iou ({negative_iou}) <= positive_iou ({positive_iou}) <= 1")
    anchors = anchors.to(targets)
    overlap = bbox.pairwise_iou(targets[:, None, :], anchors, "cxcywh")[:, 0, :]  # [B, A]
    positive = overlap > positive_iou
    negative = overlap < negative_iou
    b = targets.shape[0]
    pos_quota = torch.full((b,), int(max_positives), dtype=torch.long, device=targets.device)
    pos = sample_subset(positive, pos_quota, generator)
    neg_quota = (int(max_anchors) - pos.sum(dim=1)).clamp(min=0)
    if hard_negatives > 0:
        hard_quota = torch.floor(neg_quota.double() * hard_negatives).long()
        hard = top_subset(negative, negative_scores.to(overlap.device), hard_quota)
        neg = hard | sample_subset(negative & ~hard, neg_quota - hard.sum(dim=1), generator)
    else:
        neg = sample_subset(negative, neg_quota, generator)
    labels = torch.full_like(overlap, IGNORE, dtype=torch.long)
    labels[neg] = NEGATIVE
    labels[pos] = POSITIVE
    weights = pos.to(overlap.dtype) + neg.to(overlap.dtype) * float(negative_weight)
    deltas = bbox.encode(targets[:, None, :], anchors[None, :, :])
    return AnchorLabels(labels=labels, weights=weights, deltas=deltas, iou=overlap)
