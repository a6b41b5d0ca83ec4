"""Box conversions, IoU, box coding and anchors against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cyclesiam import bbox
from cyclesiam.anchors import base_anchors, generate_anchors
from cyclesiam.config import AnchorConfig


def test_conversions_hand_values():
    xywh = np.array([10.0, 20.0, 30.0, 40.0])
    np.testing.assert_allclose(bbox.xywh_to_cxcywh(xywh), [25, 40, 30, 40])
    np.testing.assert_allclose(bbox.xywh_to_xyxy(xywh), [10, 20, 40, 60])
    np.testing.assert_allclose(bbox.cxcywh_to_xyxy([25, 40, 30, 40]), [10, 20, 40, 60])
    np.testing.assert_allclose(bbox.xyxy_to_cxcywh([10, 20, 40, 60]), [25, 40, 30, 40])
    np.testing.assert_allclose(bbox.xyxy_to_xywh([10, 20, 40, 60]), [10, 20, 30, 40])
    np.testing.assert_allclose(bbox.cxcywh_to_xywh([25, 40, 30, 40]), [10, 20, 30, 40])


@pytest.mark.parametrize("src", bbox.FORMATS)
@pytest.mark.parametrize("dst", bbox.FORMATS)
def test_convert_round_trip_numpy_and_torch(src, dst):
    rng = np.random.default_rng(0)
    boxes = np.abs(rng.normal(50, 20, size=(3, 7, 4)))
    back = bbox.convert(bbox.convert(boxes, src, dst), dst, src)
    np.testing.assert_allclose(back, boxes, rtol=1e-12, atol=1e-9)
    t = torch.from_numpy(boxes)
    out = bbox.convert(t, src, dst)
    assert isinstance(out, torch.Tensor) and out.shape == t.shape
    np.testing.assert_allclose(out.numpy(), bbox.convert(boxes, src, dst))


def test_bad_shape_and_format():
    with pytest.raises(ValueError, match="size 4"):
        bbox.xywh_to_xyxy(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="unknown box format"):
        bbox.convert(np.zeros(4), "xywh", "ltrb")


def test_iou_hand_values():
    # [0,0,2,2] vs [1,1,3,3]: inter 1, union 4 + 4 - 1 = 7
    assert bbox.iou([0, 0, 2, 2], [1, 1, 3, 3]) == pytest.approx(1 / 7)
    assert bbox.iou([0, 0, 2, 2], [0, 0, 2, 2]) == pytest.approx(1.0)
    assert bbox.iou([0, 0, 2, 2], [5, 5, 6, 6]) == 0.0
    # touching edges: no overlap
    assert bbox.iou([0, 0, 2, 2], [2, 0, 4, 2]) == 0.0
    # degenerate boxes give 0, not NaN
    assert bbox.iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0
    # xywh: (0,0,4,2) vs (2,0,4,2): inter 2*2 = 4, union 8 + 8 - 4 = 12
    assert bbox.iou([0, 0, 4, 2], [2, 0, 4, 2], fmt="xywh") == pytest.approx(1 / 3)
    # cxcywh containment: 2x2 inside 4x4 at the same centre -> 4 / 16
    assert bbox.iou([0, 0, 4, 4], [0, 0, 2, 2], fmt="cxcywh") == pytest.approx(0.25)


def test_iou_torch_matches_numpy_and_pairwise():
    rng = np.random.default_rng(1)
    a = np.abs(rng.normal(50, 20, size=(5, 4)))
    b = np.abs(rng.normal(50, 20, size=(6, 4)))
    pair_np = bbox.pairwise_iou(a, b, "cxcywh")
    assert pair_np.shape == (5, 6)
    for n in range(5):
        for m in range(6):
            assert pair_np[n, m] == pytest.approx(float(bbox.iou(a[n], b[m], "cxcywh")))
    pair_t = bbox.pairwise_iou(torch.from_numpy(a), torch.from_numpy(b), "cxcywh")
    np.testing.assert_allclose(pair_t.numpy(), pair_np, rtol=1e-10)
    # mixed numpy/torch inputs become torch
    mixed = bbox.pairwise_iou(torch.from_numpy(a), b, "cxcywh")
    assert isinstance(mixed, torch.Tensor)


def test_batched_anchor_vs_target_iou():
    anchors = generate_anchors(AnchorConfig(), 25)
    targets = np.array([[0.0, 0.0, 64.0, 64.0], [8.0, -16.0, 104.0, 32.0]], dtype=np.float32)
    ious = bbox.pairwise_iou(targets[:, None], anchors, "cxcywh")[:, 0]
    assert ious.shape == (2, anchors.shape[0])
    # target 0 equals the ratio-1 anchor (a = 2) at the centre cell (12, 12)
    R = 25
    assert ious[0, 2 * R * R + 12 * R + 12] == pytest.approx(1.0)
    # target 1 equals the ratio-0.33 anchor (a = 0, 104 x 32) at row 10, column 13
    assert ious[1, 0 * R * R + 10 * R + 13] == pytest.approx(1.0)
    assert ious.max() <= 1.0 + 1e-6
    t = bbox.pairwise_iou(torch.from_numpy(targets)[:, None], torch.from_numpy(anchors), "cxcywh")[:, 0]
    np.testing.assert_allclose(t.numpy(), ious, atol=1e-6)


def test_encode_decode_hand_values():
    anchor = np.array([0.0, 0.0, 64.0, 32.0])
    box = np.array([16.0, -8.0, 128.0, 16.0])
    d = bbox.encode(box, anchor)
    np.testing.assert_allclose(d, [16 / 64, -8 / 32, np.log(2.0), np.log(0.5)])
    np.testing.assert_allclose(bbox.decode(d, anchor), box)


def test_encode_decode_round_trip_broadcast_torch():
    anchors = torch.from_numpy(generate_anchors(AnchorConfig(), 5)).double()
    boxes = torch.tensor([[3.0, -7.0, 50.0, 20.0], [0.0, 1.0, 90.0, 100.0]], dtype=torch.float64)
    deltas = bbox.encode(boxes[:, None], anchors[None])
    assert deltas.shape == (2, anchors.shape[0], 4)
    back = bbox.decode(deltas, anchors[None])
    torch.testing.assert_close(back, boxes[:, None].expand_as(back))


def test_base_anchors_match_pysot_values():
    # pysot Anchors(stride 8, ratios [0.33, 0.5, 1, 2, 3], scales [8]) by hand:
    # r=0.33: ws=int(sqrt(64/0.33))=13, hs=int(13*0.33)=4 -> 104 x 32
    # r=0.5 : ws=int(11.31)=11, hs=int(5.5)=5 -> 88 x 40;  r=1: 64 x 64
    # r=2   : ws=int(5.66)=5, hs=10 -> 40 x 80;  r=3: ws=int(4.62)=4, hs=12 -> 32 x 96
    expected = [[104, 32], [88, 40], [64, 64], [40, 80], [32, 96]]
    np.testing.assert_array_equal(base_anchors(AnchorConfig()), expected)


def test_base_anchor_order_ratio_major():
    cfg = AnchorConfig(stride=8, ratios=[0.5, 1.0], scales=[4.0, 8.0])
    # a = ratio_index * len(scales) + scale_index
    np.testing.assert_array_equal(base_anchors(cfg), [[44, 20], [88, 40], [32, 32], [64, 64]])


def test_generate_anchors_layout():
    cfg = AnchorConfig()
    R = 25
    anchors = generate_anchors(cfg, R)
    assert anchors.shape == (5 * R * R, 4) and anchors.dtype == np.float32
    # index = a*R*R + i*R + j; centre = ((j - R//2) * 8, (i - R//2) * 8)
    np.testing.assert_array_equal(anchors[0], [-96, -96, 104, 32])
    np.testing.assert_array_equal(anchors[2 * R * R + 12 * R + 12], [0, 0, 64, 64])
    np.testing.assert_array_equal(anchors[4 * R * R + 3 * R + 20], [64, -72, 32, 96])
    np.testing.assert_array_equal(anchors[R * R - 1], [96, 96, 104, 32])
    grid = anchors.reshape(5, R, R, 4)
    assert (grid[:, :, 1:, 0] - grid[:, :, :-1, 0] == 8).all()  # x grows along columns
    assert (grid[:, 1:, :, 1] - grid[:, :-1, :, 1] == 8).all()  # y grows along rows


def test_generate_anchors_lost_search_size():
    anchors = generate_anchors(AnchorConfig(), 45).reshape(5, 45, 45, 4)
    assert anchors[0, 0, 0, 0] == -22 * 8 and anchors[0, 44, 44, 1] == 22 * 8
    with pytest.raises(ValueError):
        generate_anchors(AnchorConfig(), 0)
