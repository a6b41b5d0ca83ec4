"""The cycle's middle hops decode the network outputs exactly as the tracker does at inference:
CycleModel.decode_best and cyclesiam.tracker's postprocess both run cyclesiam.tracking.decode, each
with its own context (the tracker's context_amount; the cycle's crop context)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cyclesiam.anchors import generate_anchors
from cyclesiam_train.config import Config
from cyclesiam.crop import search_crop_size
from cyclesiam.models.builder import build_model
from cyclesiam.tracking.decode import cosine_window, decode_response
from cyclesiam.tracking.post import postprocess
from cyclesiam_train.cycle import CycleModel


@pytest.mark.parametrize("context", [0.3, 0.5])
def test_middle_hop_decode_matches_tracker_postprocessing(context: float):
    cfg = Config()
    cfg.tracker.context_amount = context
    cfg.train.context_amount = context  # the cycle's crops (and its penalty) use the training context
    # the training hops always decode the centre from the box regression (the shipped model was
    # trained so); the tracker's optional sub-cell peak centre is tested in test/core/test_tracker_post.py
    cfg.tracker.center_from = "regression"
    k, r = cfg.model.anchor.num_anchors, cfg.model.score_size
    generator = torch.Generator().manual_seed(3)
    cls = torch.randn(4, 2 * k, r, r, generator=generator, dtype=torch.float64) * 2.0
    loc = torch.randn(4, 4 * k, r, r, generator=generator, dtype=torch.float64) * 0.3
    width, height = 640.0, 480.0
    centers = np.array([[320.0, 240.0], [100.0, 80.0], [600.0, 450.0], [330.0, 200.0]])
    sizes = np.array([[80.0, 120.0], [40.0, 30.0], [60.0, 60.0], [200.0, 90.0]])
    x_side = np.array([search_crop_size(w, h, context, cfg.model.search_size, cfg.model.template_size)
                       for w, h in sizes])

    cycle = CycleModel(build_model(cfg.model), cfg.model, cfg.tracker, cfg.train)
    t = lambda a: torch.as_tensor(a, dtype=torch.float64)  # noqa: E731
    bounds = t([[0.0, 0.0, width, height]] * 4)
    center, size, score = cycle.decode_best(cls, loc, t(centers), t(sizes), t(x_side), bounds,
                                            t([cfg.tracker.min_size] * 4))

    scores, boxes = decode_response(cls, loc, torch.from_numpy(generate_anchors(cfg.model.anchor, r)))
    post = postprocess(scores.numpy(), boxes.numpy(), centers, sizes, cfg.model.search_size / x_side,
                       cosine_window(r, k), cfg.tracker.window_influence, cfg.tracker, (height, width))

    assert np.allclose(center.numpy(), post.center, rtol=0.0, atol=1e-5), (center, post.center)
    assert np.allclose(size.numpy(), post.size, rtol=0.0, atol=1e-5), (size, post.size)
    assert np.allclose(score.numpy(), post.score, rtol=0.0, atol=1e-5)
    # the comparison is not vacuous: the chosen boxes moved and differ per target
    assert np.abs(post.center - centers).max() > 1.0


def test_training_precision_decode_stays_within_float32_of_the_tracker():
    """In training the hops run in float32: the same choice, boxes within float32 rounding."""
    cfg = Config()
    cfg.train.context_amount = cfg.tracker.context_amount  # one context for both sides
    k, r = cfg.model.anchor.num_anchors, cfg.model.score_size
    generator = torch.Generator().manual_seed(5)
    cls = torch.randn(3, 2 * k, r, r, generator=generator) * 2.0
    loc = torch.randn(3, 4 * k, r, r, generator=generator) * 0.3
    centers = np.array([[320.0, 240.0], [100.0, 80.0], [500.0, 400.0]])
    sizes = np.array([[80.0, 120.0], [40.0, 30.0], [60.0, 60.0]])
    x_side = np.array([search_crop_size(w, h, cfg.tracker.context_amount, cfg.model.search_size,
                                        cfg.model.template_size) for w, h in sizes])
    cycle = CycleModel(build_model(cfg.model), cfg.model, cfg.tracker, cfg.train)
    t = lambda a: torch.as_tensor(a, dtype=torch.float32)  # noqa: E731
    center, size, _ = cycle.decode_best(cls, loc, t(centers), t(sizes), t(x_side), t([[0.0, 0.0, 640.0, 480.0]] * 3),
                                        t([cfg.tracker.min_size] * 3))
    scores, boxes = decode_response(cls, loc, torch.from_numpy(generate_anchors(cfg.model.anchor, r)))
    post = postprocess(scores.numpy(), boxes.numpy(), centers, sizes, cfg.model.search_size / x_side,
                       cosine_window(r, k), cfg.tracker.window_influence, cfg.tracker, (480, 640))
    assert center.dtype == torch.float32
    assert np.allclose(center.numpy(), post.center, rtol=1e-6, atol=1e-4)
    assert np.allclose(size.numpy(), post.size, rtol=1e-6, atol=1e-4)
