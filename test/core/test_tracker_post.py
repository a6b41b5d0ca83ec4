"""SiamRPN post-processing on constructed response maps, LOST hysteresis, box validation."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from cyclesiam.anchors import base_anchors, generate_anchors
from cyclesiam.config import AnchorConfig, TrackerConfig, validate
from cyclesiam.tracker import (LOST, TRACKING, decode_response, hanning_window, next_state,
                               peak_positions, postprocess, validate_box)

R, K = 25, 5
ANCHOR_CFG = AnchorConfig()
ANCHORS = torch.from_numpy(generate_anchors(ANCHOR_CFG, R))
WINDOW = hanning_window(R, K)
IMAGE = (480, 640)


def _maps(peaks: list[tuple[int, int, int, float]], batch: int = 1, base: float = -6.0):
    """cls/loc maps for `batch` targets: fg logit `base` everywhere except at (b, a, i, j) peaks."""
    cls = torch.zeros(batch, 2 * K, R, R)
    cls[:, K:] = base
    loc = torch.zeros(batch, 4 * K, R, R)
    return cls, loc, peaks


def _run(cls, loc, centers, sizes, scale_z, cfg, wi=None):
    scores, boxes = decode_response(cls, loc, ANCHORS)
    wi = cfg.window_influence if wi is None else wi
    return postprocess(scores.numpy(), boxes.numpy(), centers, sizes, scale_z, WINDOW, wi, cfg, IMAGE,
                       ANCHORS.numpy().astype(np.float64), R)


def _index(a: int, i: int, j: int) -> int:
    return a * R * R + i * R + j


def test_decode_layout_and_single_peak():
    cls, loc, _ = _maps([])
    cls[0, K + 2, 15, 10] = 6.0  # fg of anchor 2 (ratio 1) at row 15, col 10
    scores, boxes = decode_response(cls, loc, ANCHORS)
    assert scores.shape == (1, K * R * R) and boxes.shape == (1, K * R * R, 4)
    assert int(scores.argmax()) == _index(2, 15, 10)
    assert float(scores.max()) == pytest.approx(1 / (1 + math.exp(-6.0)), abs=1e-6)
    cfg = TrackerConfig(center_from="regression")
    post = _run(cls, loc, np.array([[300.0, 200.0]]), np.array([[64.0, 64.0]]), np.array([1.0]), cfg)
    assert post.best[0] == _index(2, 15, 10)
    # loc = 0: the box is the anchor, centred (10-12)*8, (15-12)*8 from the crop centre
    np.testing.assert_allclose(post.center[0], [300.0 - 16.0, 200.0 + 24.0])


def test_cosine_window_prefers_the_peak_near_the_centre():
    cls, loc, _ = _maps([])
    cls[0, K + 2, 12, 13] = 5.0  # 1 cell from the centre
    cls[0, K + 2, 12, 22] = 5.1  # 10 cells away, slightly stronger
    centers, sizes, scale = np.array([[320.0, 240.0]]), np.array([[64.0, 64.0]]), np.array([1.0])
    near = _run(cls, loc, centers, sizes, scale, TrackerConfig(window_influence=0.41))
    assert near.best[0] == _index(2, 12, 13)
    far = _run(cls, loc, centers, sizes, scale, TrackerConfig(window_influence=0.0))
    assert far.best[0] == _index(2, 12, 22)


def test_scale_ratio_penalty_prefers_the_anchor_shaped_like_the_target():
    cls, loc, _ = _maps([])
    # two equally strong peaks at mirror positions (same window value): ratio 1 vs ratio 3 anchor
    cls[0, K + 2, 12, 16] = 5.0
    cls[0, K + 4, 12, 8] = 5.0
    centers, scale = np.array([[320.0, 240.0]]), np.array([1.0])
    cfg = TrackerConfig(penalty_k=0.1)
    square = _run(cls, loc, centers, np.array([[64.0, 64.0]]), scale, cfg)
    assert square.best[0] == _index(2, 12, 16)
    tall_w, tall_h = base_anchors(ANCHOR_CFG)[4]  # ratio 3 anchor (h/w = 3)
    tall = _run(cls, loc, centers, np.array([[tall_w, tall_h]]), scale, cfg)
    assert tall.best[0] == _index(4, 12, 8)
    flat = _run(cls, loc, centers, np.array([[tall_w, tall_h]]), scale, TrackerConfig(penalty_k=0.0))
    assert flat.penalty[0] == 1.0


def test_size_smoothing_and_penalty_values_by_hand():
    cls, loc, _ = _maps([])
    a, i, j = 2, 12, 14
    cls[0, K + a, i, j] = 4.0
    loc[0, 0 * K + a, i, j] = 0.5  # dx: +0.5 anchor width
    loc[0, 1 * K + a, i, j] = -0.25  # dy
    loc[0, 2 * K + a, i, j] = math.log(2.0)  # w doubles
    cfg = TrackerConfig(penalty_k=0.1, lr=0.32, window_influence=0.0, center_from="regression", context_amount=0.5)
    # target 128x128 image px at 0.5 crop px per image px -> 64x64 at crop scale (= the anchor)
    post = _run(cls, loc, np.array([[300.0, 200.0]]), np.array([[128.0, 128.0]]), np.array([0.5]), cfg)
    assert post.best[0] == _index(a, i, j)
    # predicted at crop scale: cx = 16 + 32, cy = 0 - 16, w = 128, h = 64
    s_c = math.sqrt((128 + 96) * (64 + 96)) / 128.0  # context sizes: pred vs current (64x64)
    r_c = 2.0  # aspect 1 -> 2
    penalty = math.exp(-(r_c * s_c - 1) * 0.1)
    score = 1 / (1 + math.exp(-4.0))
    lr = penalty * score * 0.32
    assert post.penalty[0] == pytest.approx(penalty, rel=1e-6)
    np.testing.assert_allclose(post.center[0], [300.0 + 48.0 / 0.5, 200.0 - 16.0 / 0.5], rtol=1e-6)
    np.testing.assert_allclose(post.size[0], [128 * (1 - lr) + 256 * lr, 128.0], rtol=1e-6)


def test_peak_centre_is_the_parabola_vertex_and_ignores_the_regression_offset():
    cls, loc, _ = _maps([])
    a, i, j = 2, 10, 14
    # fg logits sampled from a paraboloid with its vertex 0.3 cells right of j and 0.2 cells above i
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):
            cls[0, K + a, i + di, j + dj] = 4.0 - (dj - 0.3) ** 2 - (di + 0.2) ** 2
    loc[0, 0 * K + a, i, j] = 0.5  # a regression offset that the peak centre must not use
    centers, sizes, scale = np.array([[300.0, 200.0]]), np.array([[64.0, 64.0]]), np.array([0.5])
    cfg = TrackerConfig(window_influence=0.0, penalty_k=0.0, center_from="peak")
    scores, _ = decode_response(cls, loc, ANCHORS)
    pscore = scores.numpy().astype(np.float64)
    expected = peak_positions(pscore, np.array([_index(a, i, j)]), ANCHORS.numpy().astype(np.float64), R)[0]
    # on the softmax scores the vertex moves a little, but stays on the side of the true one
    assert 0.0 < expected[0] - (j - 12) * 8 < 4.0 and -4.0 < expected[1] - (i - 12) * 8 < 0.0
    post = _run(cls, loc, centers, sizes, scale, cfg)
    assert post.best[0] == _index(a, i, j)
    np.testing.assert_allclose(post.center[0], centers[0] + expected / 0.5)
    regression = _run(cls, loc, centers, sizes, scale, TrackerConfig(window_influence=0.0, penalty_k=0.0,
                                                                     center_from="regression"))
    assert regression.center[0, 0] == pytest.approx(300.0 + ((j - 12) * 8 + 32.0) / 0.5)


def test_peak_vertex_exact_on_a_parabola_and_zero_at_the_border_or_a_plateau():
    r, best = 5, np.array([1 * 5 + 2, 0 * 5 + 4, 2 * 5 + 2])  # (1,2) inner, (0,4) corner, (2,2) plateau
    anchors = generate_anchors(AnchorConfig(ratios=[1.0], scales=[8.0]), r).astype(np.float64)
    maps = np.zeros((3, r, r))
    for di in (-1, 0, 1):
        for dj in (-1, 0, 1):  # vertex +0.25 cells in x, -0.4 cells in y
            maps[0, 1 + di, 2 + dj] = -(dj - 0.25) ** 2 - (di + 0.4) ** 2
    maps[1, 0, 3], maps[1, 1, 4] = -1.0, -1.0  # corner: the outer neighbours do not exist
    maps[2] = 1.0  # flat: no strict peak
    got = peak_positions(maps.reshape(3, -1), best, anchors, r)
    np.testing.assert_allclose(got[0], [(2 - 2) * 8 + 0.25 * 8, (1 - 2) * 8 - 0.4 * 8])
    np.testing.assert_allclose(got[1], anchors[best[1], :2])
    np.testing.assert_allclose(got[2], anchors[best[2], :2])


def test_unknown_center_source_is_refused():
    with pytest.raises(ValueError, match="center_from"):
        validate(TrackerConfig(center_from="mask"))


@pytest.mark.parametrize("field, value", [("lost_similarity", -0.1), ("recover_similarity", 1.5),
                                          ("lost_similarity", float("nan"))])
def test_bad_similarity_thresholds_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        validate(TrackerConfig(**{field: value}))


@pytest.mark.parametrize("field, value", [("template_update_rate", 0.0), ("template_update_rate", 1.5),
                                          ("template_update_anchor", -0.1), ("template_update_anchor", float("nan"))])
def test_bad_template_update_weights_are_refused(field, value):
    with pytest.raises(ValueError, match=field):
        validate(TrackerConfig(**{field: value}))


def test_clip_to_image_and_minimum_size():
    cls, loc, _ = _maps([])
    cls[0, K + 2, 12, 24] = 8.0
    loc[0, 2 * K + 2, 12, 24] = -8.0  # tiny predicted width
    loc[0, 3 * K + 2, 12, 24] = -8.0
    cfg = TrackerConfig(window_influence=0.0, penalty_k=0.0, lr=1.0, min_size=5.0)
    post = _run(cls, loc, np.array([[630.0, 470.0]]), np.array([[64.0, 64.0]]), np.array([1.0]), cfg)
    assert post.center[0, 0] == 640.0  # 630 + 96 clipped to the width
    assert post.size[0].min() >= 5.0


def test_batched_targets_each_pick_their_own_peak():
    cls, loc, _ = _maps([], batch=3)
    peaks = [(2, 5, 7), (0, 20, 12), (4, 12, 12)]
    for b, (a, i, j) in enumerate(peaks):
        cls[b, K + a, i, j] = 7.0
        loc[b, a, i, j] = 0.1 * (b + 1)
    centers = np.array([[100.0, 100.0], [300.0, 200.0], [500.0, 400.0]])
    sizes = np.array([[40.0, 40.0], [60.0, 20.0], [30.0, 90.0]])
    scale = np.array([1.2, 0.8, 1.0])
    cfg = TrackerConfig(window_influence=0.2)
    batched = _run(cls, loc, centers, sizes, scale, cfg)
    for b, (a, i, j) in enumerate(peaks):
        alone = _run(cls[b : b + 1], loc[b : b + 1], centers[b : b + 1], sizes[b : b + 1], scale[b : b + 1], cfg)
        assert batched.best[b] == alone.best[0] == _index(a, i, j)
        np.testing.assert_allclose(batched.center[b], alone.center[0])
        np.testing.assert_allclose(batched.size[b], alone.size[0])


def test_lost_hysteresis_on_a_score_sequence():
    cfg = TrackerConfig(lost_threshold=0.3, recover_threshold=0.6, lost_frames=3, lost_similarity=0.0,
                        recover_similarity=0.0)  # the score alone
    scores = [0.9, 0.2, 0.2, 0.5, 0.2, 0.2, 0.2, 0.5, 0.55, 0.7, 0.2, 0.4]
    expected = [TRACKING] * 6 + [LOST, LOST, LOST, TRACKING, TRACKING, TRACKING]
    state, low, states = TRACKING, 0, []
    for s in scores:
        state, low = next_state(state, low, s, cfg)
        states.append(state)
    assert states == expected


def test_lost_rule_with_template_similarity():
    """lost_similarity: a low score counts only where the crop is unlike the template too;
    recover_similarity: recovery needs a template-like crop as well as the score."""
    cfg = TrackerConfig(lost_threshold=0.9, recover_threshold=0.95, lost_frames=2, lost_similarity=0.3,
                        recover_similarity=0.35)
    frames = [(0.8, 0.5), (0.8, 0.5), (0.8, 0.5),  # low score, template-like crop: still tracking
              (0.8, 0.2), (0.95, 0.1),  # high score does not count as low
              (0.8, 0.2), (0.8, 0.25),  # two low frames: LOST
              (0.99, 0.2),  # strong score on something unlike the template: stays LOST
              (0.99, float("nan")),  # similarity not measured: no recovery that needs it
              (0.99, 0.6)]  # both: TRACKING
    expected = [TRACKING] * 6 + [LOST, LOST, LOST, TRACKING]
    state, low, states = TRACKING, 0, []
    for score, similarity in frames:
        state, low = next_state(state, low, score, cfg, similarity)
        states.append(state)
    assert states == expected
    # 0 = off: the score alone decides, as without a similarity
    off = TrackerConfig(lost_threshold=0.9, recover_threshold=0.95, lost_frames=2, lost_similarity=0.0,
                        recover_similarity=0.0)
    assert next_state(TRACKING, 1, 0.8, off, 0.99) == (LOST, 2)
    assert next_state(LOST, 2, 0.97, off, 0.0) == (TRACKING, 0)


@pytest.mark.parametrize(
    "box, message",
    [
        ((float("nan"), 0, 10, 10), "NaN"),
        ((0, 0, float("inf"), 10), "NaN or infinite"),
        ((10, 10, 0, 10), "positive"),
        ((10, 10, 5, -1), "positive"),
        ((700, 10, 20, 20), "outside"),
        ((-50, -50, 40, 40), "outside"),
        ((1, 2, 3), "4 numbers"),
    ],
)
def test_invalid_boxes_are_rejected_with_a_clear_message(box, message):
    with pytest.raises(ValueError, match=message):
        validate_box(box, IMAGE)


def test_partly_outside_box_is_clipped():
    assert validate_box((-10, 470, 30, 20), IMAGE) == (0.0, 470.0, 20.0, 10.0)


def test_diverged_outputs_are_never_chosen_and_never_poison_the_state():
    cls, loc, _ = _maps([], batch=2)
    # target 0: the strongest peak has an overflowing size offset and another is NaN
    cls[0, K + 2, 12, 12] = 9.0
    loc[0, 2 * K + 2, 12, 12] = 500.0  # exp overflows to inf
    cls[0, K + 1, 12, 13] = float("nan")
    cls[0, K + 2, 12, 14] = 5.0
    # target 1: every output NaN
    cls[1] = float("nan")
    centers, sizes = np.array([[300.0, 200.0], [100.0, 100.0]]), np.array([[64.0, 64.0], [50.0, 40.0]])
    post = _run(cls, loc, centers, sizes, np.array([1.0, 1.0]), TrackerConfig())
    assert post.best[0] == _index(2, 12, 14)
    assert np.isfinite(post.center).all() and np.isfinite(post.size).all() and np.isfinite(post.score).all()
    np.testing.assert_allclose(post.center[1], centers[1])  # held
    np.testing.assert_allclose(post.size[1], sizes[1])
    assert post.score[1] == 0.0
