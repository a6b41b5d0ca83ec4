"""Cycle losses against hand-computed values."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from cyclesiam_train.labels import IGNORE, NEGATIVE, POSITIVE
from cyclesiam_train.losses import box_loss, mask_loss, mask_windows, score_loss, window_origins


def _ce(bg: float, fg: float, label: int) -> float:
    lse = math.log(math.exp(bg) + math.exp(fg))
    return lse - (fg if label == 1 else bg)


def test_score_loss_weighted_mean_by_hand() -> None:
    # k = 1, R = 2 -> 4 anchors; channels [bg, fg]
    bg = torch.tensor([0.0, 1.0, -1.0, 2.0])
    fg = torch.tensor([2.0, 0.0, 0.5, 0.0])
    cls = torch.stack([bg, fg]).view(1, 2, 2, 2)
    labels = torch.tensor([[POSITIVE, NEGATIVE, NEGATIVE, IGNORE]])
    weights = torch.tensor([[1.0, 0.2, 0.2, 0.0]])
    expected = (_ce(0, 2, 1) + 0.2 * _ce(1, 0, 0) + 0.2 * _ce(-1, 0.5, 0)) / 1.4
    assert math.isclose(float(score_loss(cls, labels, weights, 1)), expected, rel_tol=1e-6)


def test_score_loss_channel_layout_bg_block_then_fg_block() -> None:
    # k = 2, R = 1: channels [bg_0, bg_1, fg_0, fg_1]; anchor 1 positive with fg_1 = 3, bg_1 = 0
    cls = torch.tensor([0.0, 0.0, -5.0, 3.0]).view(1, 4, 1, 1)
    labels = torch.tensor([[IGNORE, POSITIVE]])
    loss = score_loss(cls, labels, torch.tensor([[0.0, 1.0]]), 2)
    assert math.isclose(float(loss), _ce(0.0, 3.0, 1), rel_tol=1e-6)


def test_box_loss_smooth_l1_on_positives_by_hand() -> None:
    beta = 1.0 / 9.0
    # k = 2, R = 1 -> A = 2; channel layout [dx_0, dx_1, dy_0, dy_1, dw_0, dw_1, dh_0, dh_1]
    loc = torch.tensor([0.05, 1.0, 0.0, 0.0, -0.3, 0.0, 0.0, 0.0]).view(1, 8, 1, 1)
    deltas = torch.zeros(1, 2, 4)
    labels = torch.tensor([[POSITIVE, NEGATIVE]])  # anchor 1 (error 1.0) is not positive: ignored

    def sl1(d: float) -> float:
        return 0.5 * d * d / beta if abs(d) < beta else abs(d) - 0.5 * beta

    expected = sl1(0.05) + sl1(0.0) + sl1(-0.3) + sl1(0.0)
    assert math.isclose(float(box_loss(loc, deltas, labels, 2, beta)), expected, rel_tol=1e-6)
    assert float(box_loss(loc, deltas, torch.tensor([[NEGATIVE, NEGATIVE]]), 2, beta)) == 0.0


def test_mask_windows_equal_unfold_with_stride_8_padding_32() -> None:
    gen = torch.Generator().manual_seed(0)
    mask = (torch.rand(2, 255, 255, generator=gen) > 0.5).float()
    unfolded = F.unfold(mask[:, None], kernel_size=127, padding=32, stride=8)  # [2, 127*127, 625]
    assert unfolded.shape[-1] == 25 * 25
    b = torch.tensor([0, 1, 1, 0])
    i = torch.tensor([12, 0, 24, 3])
    j = torch.tensor([12, 24, 0, 17])
    rows, cols = window_origins(i, j, 25, 255, 8, 127)
    assert rows.tolist()[0] == 64 and cols.tolist()[0] == 64  # centre window: 127.5 - 63.5
    win = mask_windows(mask, b, rows, cols, 8, 127)
    for n in range(4):
        ref = unfolded[b[n], :, i[n] * 25 + j[n]].view(127, 127)
        assert torch.equal(win[n], ref)


def test_mask_loss_is_logistic_loss_by_hand() -> None:
    # constant logits stay constant when upsampled: loss = mean log(1 + exp(-y m))
    logits = torch.full((2, 63 * 63), 1.5)
    target = torch.zeros(2, 127, 127)
    target[0, :, :64] = 1.0  # 64 of 127 columns object
    frac = 64 / 127 / 2  # fraction of object pixels over both windows
    expected = frac * math.log1p(math.exp(-1.5)) + (1 - frac) * math.log1p(math.exp(1.5))
    assert math.isclose(float(mask_loss(logits, target)), expected, rel_tol=1e-5)
    # a confident correct prediction has (nearly) zero loss, gradients flow to the logits
    good = torch.full((1, 63 * 63), 20.0, requires_grad=True)
    loss = mask_loss(good, torch.ones(1, 127, 127))
    loss.backward()
    assert loss.item() < 1e-8 and good.grad is not None
