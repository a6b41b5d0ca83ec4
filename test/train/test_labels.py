"""Anchor label assignment against hand-computed IoUs, offsets and sampling caps."""

from __future__ import annotations

import math

import pytest
import torch

from cyclesiam.anchors import generate_anchors
from cyclesiam.config import AnchorConfig
from cyclesiam_train.labels import IGNORE, NEGATIVE, POSITIVE, assign_labels, sample_subset

# four anchors (cx, cy, w, h); target (0, 0, 64, 64)
ANCHORS = torch.tensor([[0.0, 0.0, 64.0, 64.0],   # IoU 1
                        [0.0, 0.0, 32.0, 32.0],   # IoU 1024/4096 = 0.25
                        [100.0, 0.0, 64.0, 64.0],  # IoU 0
                        [8.0, 0.0, 64.0, 64.0],   # IoU 56*64 / (2*4096 - 56*64) = 0.7778
                        [0.0, 0.0, 64.0, 128.0]])  # IoU 0.5 -> ignored
TARGET = torch.tensor([[0.0, 0.0, 64.0, 64.0]])


def test_thresholds_weights_and_offsets_by_hand() -> None:
    lab = assign_labels(ANCHORS, TARGET, 0.6, 0.3, max_positives=16, max_anchors=64, negative_weight=0.2)
    assert torch.allclose(lab.iou[0], torch.tensor([1.0, 0.25, 0.0, 3584 / 4608, 0.5]), atol=1e-6)
    assert lab.labels[0].tolist() == [POSITIVE, NEGATIVE, NEGATIVE, POSITIVE, IGNORE]
    assert torch.allclose(lab.weights[0], torch.tensor([1.0, 0.2, 0.2, 1.0, 0.0]))
    # offsets of the target w.r.t. anchor 3: tx = (0 - 8) / 64, ty = 0, tw = th = log(1) = 0
    assert torch.allclose(lab.deltas[0, 3], torch.tensor([-0.125, 0.0, 0.0, 0.0]))
    # anchor 1: tw = log(64 / 32)
    assert torch.allclose(lab.deltas[0, 1], torch.tensor([0.0, 0.0, math.log(2.0), math.log(2.0)]))
    # anchor 4: th = log(64 / 128)
    assert math.isclose(float(lab.deltas[0, 4, 3]), math.log(0.5), rel_tol=1e-6)


def test_caps_sample_both_choices_and_fill_with_negatives() -> None:
    seen = set()
    for seed in range(20):
        gen = torch.Generator().manual_seed(seed)
        lab = assign_labels(ANCHORS, TARGET, 0.6, 0.3, max_positives=1, max_anchors=2, generator=gen)
        pos = (lab.labels[0] == POSITIVE).nonzero().flatten().tolist()
        neg = (lab.labels[0] == NEGATIVE).nonzero().flatten().tolist()
        assert len(pos) == 1 and pos[0] in (0, 3)
        assert len(neg) == 1 and neg[0] in (1, 2)
        assert math.isclose(lab.weights[0].sum().item(), 1.2, rel_tol=1e-6)
        seen.add((pos[0], neg[0]))
    assert len(seen) == 4, f"sampling is not random over candidates: {seen}"


def test_reproducible_with_generator_and_batched_rows_independent() -> None:
    anchors = torch.from_numpy(generate_anchors(AnchorConfig(), 25))
    targets = torch.tensor([[0.0, 0.0, 64.0, 64.0], [30.0, -20.0, 90.0, 40.0], [-60.0, 40.0, 20.0, 60.0]])
    a = assign_labels(anchors, targets, generator=torch.Generator().manual_seed(3))
    b = assign_labels(anchors, targets, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.labels, b.labels)
    pos = (a.labels == POSITIVE).sum(1)
    total = (a.labels != IGNORE).sum(1)
    assert (pos <= 16).all() and (pos[:2] > 0).all()
    assert total.tolist() == [64, 64, 64]
    # every sampled positive really has IoU > 0.6, every sampled negative < 0.3
    assert (a.iou[a.labels == POSITIVE] > 0.6).all() and (a.iou[a.labels == NEGATIVE] < 0.3).all()
    # positions: a position is positive when one of its k anchors is
    positions = a.positive_positions(5)
    assert positions.shape == (3, 625)
    flat = (a.labels.view(3, 5, 625) == POSITIVE).any(1)
    assert torch.equal(positions, flat)
    # the centre anchor (ratio 1, position 12,12) is a positive candidate for the centred 64x64 target
    assert a.iou[0, 2 * 625 + 12 * 25 + 12] > 0.99


def test_sample_subset_respects_per_row_quota() -> None:
    cand = torch.tensor([[True, True, True, False], [True, False, True, True]])
    sel = sample_subset(cand, torch.tensor([2, 0]), torch.Generator().manual_seed(0))
    assert sel[0].sum() == 2 and not sel[1].any()
    assert not (sel & ~cand).any()


def test_hard_negatives_are_the_highest_scoring_and_the_rest_random() -> None:
    anchors = torch.from_numpy(generate_anchors(AnchorConfig(), 25))
    target = torch.tensor([[0.0, 0.0, 64.0, 64.0]])
    scores = torch.zeros(1, anchors.shape[0])
    distractors = torch.tensor([5, 100, 700, 1500, 2000, 3000])  # far from the target: negatives
    scores[0, distractors] = 10.0
    random_only = assign_labels(anchors, target, generator=torch.Generator().manual_seed(0))
    assert not (random_only.labels[0, distractors] == NEGATIVE).all()  # random sampling misses some
    lab = assign_labels(anchors, target, generator=torch.Generator().manual_seed(0), negative_scores=scores,
                        hard_negatives=0.25)
    assert (lab.iou[0, distractors] < 0.3).all()
    assert (lab.labels[0, distractors] == NEGATIVE).all()  # every high-scoring negative is sampled
    assert torch.equal(lab.labels == POSITIVE, random_only.labels == POSITIVE)
    assert int((lab.labels != IGNORE).sum()) == 64  # the same total: the rest are random negatives
    with pytest.raises(ValueError, match="negative_scores"):
        assign_labels(anchors, target, hard_negatives=0.5)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        assign_labels(anchors, target, negative_scores=scores, hard_negatives=1.5)
