"""Cycle losses on the final hop: score cross-entropy, box smooth L1, mask logistic loss.

Layouts follow the model contract (docs/ARCHITECTURE.md): cls [B, 2k, R, R] with channels
[bg_0..bg_{k-1}, fg_0..fg_{k-1}], loc [B, 4k, R, R] with [dx_0.., dy_0.., dw_0.., dh_0..],
anchor index a * R * R + i * R + j. Labels come from `cyclesiam_train.labels`.

Definitions (hand-checkable, see test/train/test_losses.py):
  L_score = sum_a w_a * CE_a / sum_a w_a        (w = 1 positives, negative_weight negatives, 0 ignored)
  L_box   = sum_{a positive} sum_{c=1..4} smoothL1_beta(loc_ac - delta_ac) / #positives
  L_mask  = mean over positive positions and 127x127 pixels of log(1 + exp(-y * m)),
            m = the 63x63 logits bilinearly upsampled to 127x127, y = +1 object / -1 background.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cyclesiam_train.labels import NEGATIVE, POSITIVE


def flatten_cls(cls: torch.Tensor, num_anchors: int) -> torch.Tensor:
    """[B, 2k, R, R] -> log-probabilities [B, A, 2] (bg, fg) in anchor order."""
    b, c, r, _ = cls.shape
    if c != 2 * num_anchors:
        raise ValueError(f"cls has {c} channels, expected 2k = {2 * num_anchors}")
    logits = cls.view(b, 2, num_anchors * r * r).permute(0, 2, 1)
    return F.log_softmax(logits.float(), dim=-1)


def object_logit(cls: torch.Tensor, num_anchors: int) -> torch.Tensor:
    """[B, 2k, R, R] -> object-minus-background log-odds [B, A] in anchor order."""
    logp = flatten_cls(cls, num_anchors)
    return logp[..., 1] - logp[..., 0]


def flatten_loc(loc: torch.Tensor, num_anchors: int) -> torch.Tensor:
    """[B, 4k, R, R] -> offsets [B, A, 4] (tx, ty, tw, th) in anchor order."""
    b, c, r, _ = loc.shape
    if c != 4 * num_anchors:
        raise ValueError(f"loc has {c} channels, expected 4k = {4 * num_anchors}")
    return loc.view(b, 4, num_anchors * r * r).permute(0, 2, 1).float()


def score_loss(cls: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor, num_anchors: int) -> torch.Tensor:
    """Weighted cross-entropy over the sampled anchors (mean weighted by `weights`)."""
    logp = flatten_cls(cls, num_anchors)
    target = labels.clamp(min=0)
    nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # [B, A]
    used = (labels == POSITIVE) | (labels == NEGATIVE)
    w = torch.where(used, weights.to(nll), torch.zeros_like(nll))
    total = w.sum()
    if float(total) <= 0.0:
        return (logp.sum() * 0.0)
    return (w * nll).sum() / total


def box_loss(loc: torch.Tensor, deltas: torch.Tensor, labels: torch.Tensor, num_anchors: int, beta: float = 1.0 / 9.0) -> torch.Tensor:
    """Smooth L1 on the 4 offsets of the positive anchors, summed over offsets, averaged over positives."""
    pred = flatten_loc(loc, num_anchors)
    pos = labels == POSITIVE
    n = int(pos.sum())
    if n == 0:
        return pred.sum() * 0.0
    diff = F.smooth_l1_loss(pred[pos], deltas[pos].to(pred), reduction="none", beta=beta)
    return diff.sum() / n


def mask_windows(target_mask: torch.Tensor, batch_idx: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor,
                 stride: int, window: int) -> torch.Tensor:
    """The window x window patch of `target_mask` [B, S, S] under each response position -> [N, window, window].

    Position (i, j) of an R x R map is centred at S/2 + stride * (j - R//2) (cyclesiam.anchors), so its
    window starts at pixel S/2 - window/2 + stride * (j - R//2). Identical to
    `F.unfold(mask, window, padding=window//2 - S//2 + stride*(R//2), stride=stride)` at those positions
    (255/127/8/25: padding 32, SiamMask); out-of-crop pixels count as background. `rows`/`cols` are the
    windows' top-left pixels (`window_origins`).
    """
    if batch_idx.numel() == 0:
        return target_mask.new_zeros((0, window, window))
    pad = window  # generous padding: any window that overlaps the crop fits
    padded = F.pad(target_mask, (pad, pad, pad, pad), value=0.0)
    start_r = rows + pad
    start_c = cols + pad
    ar = torch.arange(window, device=target_mask.device)
    rr = (start_r[:, None] + ar[None, :])[:, :, None]  # [N, W, 1]
    cc = (start_c[:, None] + ar[None, :])[:, None, :]  # [N, 1, W]
    return padded[batch_idx[:, None, None], rr, cc]


def window_origins(i: torch.Tensor, j: torch.Tensor, response_size: int, search_size: int, stride: int,
                   window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-left pixel (row, col) of the window under response positions (i, j)."""
    base = search_size / 2.0 - window / 2.0
    half = response_size // 2
    rows = torch.round(base + stride * (i - half).to(torch.float64)).long()
    cols = torch.round(base + stride * (j - half).to(torch.float64)).long()
    return rows, cols


def mask_loss(mask_logits: torch.Tensor, target_windows: torch.Tensor) -> torch.Tensor:
    """Soft-margin (logistic) loss of [N, M*M] logits upsampled to the target windows' size [N, W, W]."""
    n = mask_logits.shape[0]
    if n == 0:
        return mask_logits.sum() * 0.0
    m = int(round(mask_logits.shape[1] ** 0.5))
    if m * m != mask_logits.shape[1]:
        raise ValueError(f"mask logits must be [N, M*M], got {tuple(mask_logits.shape)}")
    size = target_windows.shape[-1]
    up = F.interpolate(mask_logits.float().view(n, 1, m, m), size=(size, size), mode="bilinear", align_corners=False)
    y = target_windows.to(up).view(n, 1, size, size) * 2.0 - 1.0
    return F.soft_margin_loss(up, y)
