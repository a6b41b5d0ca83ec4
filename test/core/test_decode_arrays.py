"""The one decode (cyclesiam.tracking.decode) on NumPy arrays (the tracker) and on torch tensors
(the training cycle) gives the same choice and the same step."""

from __future__ import annotations

import numpy as np
import torch

from cyclesiam.anchors import generate_anchors
from cyclesiam.config import ModelConfig
from cyclesiam.tracking import decode


def test_choose_and_step_agree_on_numpy_and_torch():
    rng = np.random.default_rng(4)
    b, k, r = 5, ModelConfig().anchor.num_anchors, 17
    n = k * r * r
    cls = rng.normal(size=(b, 2 * k, r, r)) * 2.0
    loc = rng.normal(size=(b, 4 * k, r, r)) * 0.3
    anchors = generate_anchors(ModelConfig().anchor, r).astype(np.float64)
    scores_np, boxes_np = decode.decode_response(cls, loc, anchors)
    scores_t, boxes_t = decode.decode_response(torch.from_numpy(cls), torch.from_numpy(loc), torch.from_numpy(anchors))
    np.testing.assert_allclose(scores_np, scores_t.numpy(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(boxes_np, boxes_t.numpy(), rtol=0, atol=1e-9)
    scores_np[1, :] = np.nan  # a diverged row: held, no move
    boxes_np[2, 7, 2] = -1.0  # one invalid candidate
    sizes = rng.uniform(20, 120, size=(b, 2))
    window = np.tile(np.outer(np.hanning(r), np.hanning(r)).ravel(), k)
    wi = rng.uniform(0, 0.5, size=(b, 1))
    factors = rng.uniform(0.5, 1.0, size=(b, n))
    t = torch.from_numpy
    c_np = decode.choose(scores_np, boxes_np, sizes, window, wi, 0.04, 0.5, factors)
    c_t = decode.choose(t(scores_np), t(boxes_np), t(sizes), t(window), t(wi), 0.04, 0.5, t(factors))
    for field in ("best", "score", "penalty", "box", "pscore", "held"):
        np.testing.assert_allclose(getattr(c_np, field), getattr(c_t, field).numpy(), rtol=0, atol=1e-12,
                                   err_msg=field)
    assert c_np.held.tolist() == [False, True, False, False, False]
    centers, scale = rng.uniform(50, 400, size=(b, 2)), rng.uniform(0.5, 2.0, size=b)
    lo, hi = np.zeros(2), np.array([640.0, 480.0])
    out_np = decode.step(centers, sizes, c_np, scale, 0.3, lo, hi, 10.0)
    out_t = decode.step(t(centers), t(sizes), c_t, t(scale), 0.3, t(lo), t(hi), 10.0)
    for a, b_ in zip(out_np, out_t):
        np.testing.assert_allclose(a, b_.numpy(), rtol=0, atol=1e-9)
    np.testing.assert_array_equal(out_np[0][1], centers[1])  # the held row kept its centre
