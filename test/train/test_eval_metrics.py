"""Metrics against values computed by hand on tiny constructed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from cyclesiam_train.eval import metrics as M

NAN = math.nan


def test_box_iou_partial_touching_missing_and_empty() -> None:
    gt = np.array([[0, 0, 10, 10]] * 4, dtype=float)
    pred = np.array([[5, 0, 10, 10], [10, 0, 10, 10], [NAN, NAN, NAN, NAN], [0, 0, 0, 10]], dtype=float)
    np.testing.assert_allclose(M.box_iou(pred, gt), [50 / 150, 0.0, 0.0, 0.0])


def test_annotated_skips_nan_and_degenerate_rows() -> None:
    gt = np.array([[0, 0, 10, 10], [NAN, 0, 10, 10], [0, 0, 0, 5], [1, 1, 2, 2]])
    assert M.annotated(gt).tolist() == [True, False, False, True]


def test_success_curve_and_auc_by_hand() -> None:
    ious = np.array([1.0, 0.5, 0.0])
    thr = M.success_thresholds(21)
    curve = M.success_curve(ious, thr)
    # IoU>0 and >= t: t in 0..0.5 (11 thresholds) -> 2/3, t in 0.55..1 (10) -> 1/3
    np.testing.assert_allclose(curve[:11], 2 / 3)
    np.testing.assert_allclose(curve[11:], 1 / 3)
    assert M.auc(curve) == pytest.approx(32 / 63)
    strict = M.success_curve(ious, thr, strict=True)
    # IoU > t: 0..0.45 (10) -> 2/3, 0.5..0.95 (10) -> 1/3, 1.0 -> 0
    assert M.auc(strict) == pytest.approx(30 / 63)
    assert strict[-1] == 0.0 and strict[10] == pytest.approx(1 / 3)


def test_success_curve_perfect_and_zero() -> None:
    thr = M.success_thresholds(21)
    np.testing.assert_array_equal(M.success_curve(np.ones(5), thr), np.ones(21))
    np.testing.assert_array_equal(M.success_curve(np.zeros(5), thr), np.zeros(21))


def test_evaluate_ope_skips_missing_gt_and_init_frame() -> None:
    gt = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [NAN] * 4, [0, 0, 10, 20], [0, 0, 10, 10]], dtype=float)
    pred = np.array([[0, 0, 10, 10], [3, 4, 10, 10], [0, 0, 1, 1], [5, 0, 10, 20], [NAN] * 4], dtype=float)
    skip = np.array([True, False, False, False, False])
    res = M.evaluate_ope(pred, gt, skip)
    assert res.frames == 3  # frame 0 (init) and frame 2 (no gt) excluded
    # ious: frame1 7*6/(200-42)=42/158, frame3 5*20/(400-100)=1/3, frame4 missing -> 0
    np.testing.assert_allclose(res.ious, [42 / 158, 1 / 3, 0.0])
    pt = M.precision_thresholds(50)
    # centre errors 5, 5, inf -> precision at 4 px = 0, at 5 px = 2/3, at 20 px = 2/3
    assert M.value_at(res.precision, pt, 4) == 0.0
    assert M.value_at(res.precision, pt, 5) == pytest.approx(2 / 3)
    nt = M.norm_precision_thresholds(0.5)
    # normalised errors: frame1 hypot(.3,.4)=.5, frame3 .5, frame4 inf -> 0.5 reached only at 0.5
    assert M.value_at(res.norm_precision, nt, 0.2) == 0.0
    assert res.norm_precision[-1] == pytest.approx(2 / 3)


def test_evaluate_ope_with_no_annotated_frame_is_nan_not_failure() -> None:
    res = M.evaluate_ope(np.zeros((2, 4)), np.full((2, 4), NAN))
    assert res.frames == 0 and math.isnan(M.auc(res.success))


def test_vot_accuracy_burn_in_and_failures() -> None:
    # frame: 0 init, 1..3 tracked, 4 failure, 5..8 skipped, 9 re-init, 10..11 tracked
    ov = np.array([NAN, 0.8, 0.6, 0.4, 0.0, NAN, NAN, NAN, NAN, NAN, 0.9, 0.7])
    rec = M.VOTRecord(overlaps=ov, inits=[0, 9], failures=[4])
    acc, n = M.vot_accuracy(rec, burn_in=0)
    assert n == 6 and acc == pytest.approx((0.8 + 0.6 + 0.4 + 0.0 + 0.9 + 0.7) / 6)
    acc, n = M.vot_accuracy(rec, burn_in=2)  # drops frames 0,1 and 9,10
    assert n == 4 and acc == pytest.approx((0.6 + 0.4 + 0.0 + 0.7) / 4)
    assert M.vot_reliability(1, 12) == pytest.approx(math.exp(-100 / 12))


def test_eao_fragments_and_curve_by_hand() -> None:
    ov = np.array([NAN, 0.8, 0.6, 0.0, NAN, NAN, 0.5, NAN, 0.5])
    rec = M.VOTRecord(overlaps=ov, inits=[0, 5], failures=[3])
    frags = M.eao_fragments(rec)
    assert len(frags) == 2
    np.testing.assert_allclose(frags[0][0], [0.8, 0.6, 0.0])
    assert frags[0][1] is True
    np.testing.assert_allclose(frags[1][0], [0.5, 0.5])  # frame 7 unannotated: dropped
    assert frags[1][1] is False
    curve = M.eao_curve(frags, max_length=4)
    # Ns=1: (0.8 + 0.5)/2; Ns=2: (0.7 + 0.5)/2; Ns=3: only frag0 -> 1.4/3 ... frag1 unknown beyond 2
    np.testing.assert_allclose(curve, [0.65, 0.6, 1.4 / 3, 1.4 / 4])
    assert M.eao_score(curve, 2, 3) == pytest.approx((0.6 + 1.4 / 3) / 2)
    assert M.eao_range([100, 200], 5, 7) == (5, 7)
    lo, hi = M.eao_range([10, 20, 30, 40, 50])
    assert (lo, hi) == (14, 46)


def _square(shape: tuple[int, int], r0: int, c0: int, side: int) -> np.ndarray:
    m = np.zeros(shape, dtype=bool)
    m[r0:r0 + side, c0:c0 + side] = True
    return m


def test_region_similarity_and_empty_masks() -> None:
    gt = _square((20, 20), 5, 5, 10)
    pred = _square((20, 20), 5, 6, 10)
    assert M.region_similarity(pred, gt) == pytest.approx(90 / 110)
    empty = np.zeros((20, 20), bool)
    assert M.region_similarity(empty, empty) == 1.0
    assert M.region_similarity(empty, gt) == 0.0


def test_boundary_f_measure_tolerance() -> None:
    gt = _square((20, 20), 5, 5, 10)
    pred = _square((20, 20), 5, 6, 10)
    assert int(M.mask_boundary(gt).sum()) == 36
    # no tolerance: the shared boundary is rows 5 and 14 at cols 6..14 (18 of 36 pixels)
    assert M.boundary_f_measure(pred, gt, bound_th=0) == pytest.approx(0.5)
    # 1 pixel tolerance: every boundary pixel is within 1 px of the other contour
    assert M.boundary_f_measure(pred, gt, bound_th=1) == pytest.approx(1.0)
    far = _square((20, 20), 0, 0, 4)
    assert M.boundary_f_measure(far, gt, bound_th=1) == 0.0
    empty = np.zeros((20, 20), bool)
    assert M.boundary_f_measure(empty, empty) == 1.0
    assert M.boundary_f_measure(empty, gt) == 0.0
    assert M.bound_pixels((480, 854), 0.008) == math.ceil(0.008 * math.hypot(480, 854))


def test_davis_statistics_mean_recall_decay() -> None:
    stats = M.davis_statistics([1, 1, 1, 1, 0, 0, 0, 0])
    assert stats == {"mean": 0.5, "recall": 0.5, "decay": 1.0}
    stats = M.davis_statistics([0.9, 0.6, 0.4, NAN])
    assert stats["mean"] == pytest.approx(19 / 30) and stats["recall"] == pytest.approx(2 / 3)
    assert math.isnan(stats["decay"])  # fewer frames than bins


def test_box_mask_round_trip() -> None:
    m = M.box_to_mask((2, 3, 4, 5), (10, 10))
    assert m.sum() == 20 and M.mask_to_box(m) == (2.0, 3.0, 4.0, 5.0)
    assert M.mask_to_box(np.zeros((4, 4), bool)) is None
