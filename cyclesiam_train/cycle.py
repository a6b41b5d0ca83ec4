"""The forward-backward cycle (CycleSiam, DESIGN.md section 5), batched over samples.

A sample is a short path of frames, t1 -> t2 (-> t3) -> ... -> t1, given as "canvas" crops:
each frame is resampled by the data workers into a `canvas_size` square centred on the
initial box of t1, at the scale of t1's search crop (canvas pixels = search-crop pixels of
the initial target). Every later crop is cut from these canvases on the training device
with `grid_sample`, so all samples hop together as tensors and a predicted box can be
cropped differentiably.

Hops: the template of hop h is cut around the box of frame path[h] (the initial box for
t1, the predicted box otherwise); the search crop of path[h+1] is centred on that box
(as the tracker does). Middle hops are inference: no gradient (unless
`differentiable_hops`), best anchor decoded with the SiamRPN scale/ratio penalty, cosine
window and size smoothing. The final hop searches t1 around the initial box shifted by up
to `search_shift` crop pixels (and scaled by `search_scale_jitter`); only its output is
compared with the initial target: L = cls_weight L_score + loc_weight L_box + mask_weight L_mask.

Optional scale ranking (`scale_rank_weight` > 0, not in the paper): the final hop's template
also searches t1 in a second crop, `tracker.scale_step`^+-1 times the first one's size with the
target at the same crop position. The initial target's scale is known in both, so the crop
whose scale is nearer it must score higher around the target: + scale_rank_weight L_rank, a
logistic loss on the difference of the best object-vs-background logits near the target.
This trains the choice the tracker's scale search makes from the score (docs/MODEL.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from cyclesiam import bbox
from cyclesiam.anchors import generate_anchors
from cyclesiam.tracking import decode
from cyclesiam_train.config import ModelConfig, TrackerConfig, TrainConfig
from cyclesiam_train import labels as label_ops
from cyclesiam_train import losses

# keys of the batch dictionary produced by cyclesiam_train.data (collated)
BATCH_KEYS = ("frames", "pad", "bounds", "box", "mask", "scale", "shift", "jitter")
# the per-step statistics CycleModel.forward returns, in order (logged by the trainer)
STAT_KEYS = ("loss", "cls", "loc", "mask", "iou", "positives", "rank", "rank_acc")
# scale-ranking pairs whose two crops are this close to equally far from the target's scale
# (|log|, i.e. ~2%) carry no ranking signal and are left out
RANK_MIN_GAP = 0.02


def cycle_path(cycle_length: int, cycle_return: str = "retrace") -> list[int]:
    """Frame indices visited by the cycle: 2 -> [0, 1, 0]; 3 -> [0, 1, 2, 1, 0] (retrace) or [0, 1, 2, 0] (direct)."""
    if cycle_length < 2:
        raise ValueError(f"cycle_length must be >= 2, got {cycle_length}")
    forward = list(range(cycle_length))
    if cycle_return == "retrace":
        return forward + forward[-2::-1]
    if cycle_return == "direct":
        return forward + [0]
    raise ValueError(f"cycle_return must be 'retrace' or 'direct', got {cycle_return!r}")


def crop_batch(images: torch.Tensor, pad: torch.Tensor, centers: torch.Tensor, sides: torch.Tensor,
               out_size: int) -> torch.Tensor:
    """Square crops [B, C, out, out] of `images` [B, C, H, W] (differentiable in images, centers, sides).

    Same geometry as `cyclesiam.crop.crop_window` (continuous pixel coordinates, bilinear): output
    pixel u samples the image at cx - side/2 + (u + 0.5) * side / out. Outside the image: `pad` [B, C].
    """
    b, _, h, w = images.shape
    theta = images.new_zeros((b, 2, 3))
    theta[:, 0, 0] = sides / w
    theta[:, 0, 2] = 2.0 * centers[:, 0] / w - 1.0
    theta[:, 1, 1] = sides / h
    theta[:, 1, 2] = 2.0 * centers[:, 1] / h - 1.0
    grid = F.affine_grid(theta, [b, 1, out_size, out_size], align_corners=False)
    shifted = images - pad[:, :, None, None]
    out = F.grid_sample(shifted, grid.to(images.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)
    return out + pad[:, :, None, None]


def context_side(sizes: torch.Tensor, context: float) -> torch.Tensor:
    """Template window side (cyclesiam.tracking.decode.context_side) for sizes [B, 2] -> [B]."""
    return decode.context_side(sizes[:, 0], sizes[:, 1], context)


def rescaled_window(target_center: torch.Tensor, shift: torch.Tensor, side: torch.Tensor, factor: torch.Tensor,
                    out_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A search window `factor` [B] times `side` [B] whose crop shows the target centre [B, 2] at the
    same crop position as the final hop's (`shift` crop px off the centre) -> (centre [B, 2], side [B])."""
    new_side = side * factor
    return target_center - shift * new_side[:, None] / out_size, new_side


@dataclass
class CycleOutput:
    loss: torch.Tensor  # scalar, weighted total
    # detached scalars keyed by STAT_KEYS (iou: final-hop best box vs target)
    parts: dict[str, torch.Tensor]


class CycleModel(nn.Module):
    """Wraps a SiameseNet; `forward(batch, label_seed)` runs the whole cycle and returns the loss.

    One module call per step, so DistributedDataParallel sees one forward and one backward.
    """

    def __init__(self, net: nn.Module, model_cfg: ModelConfig, tracker_cfg: TrackerConfig, train_cfg: TrainConfig):
        super().__init__()
        self.net = net
        self.model_cfg = model_cfg
        self.tracker_cfg = tracker_cfg
        self.train_cfg = train_cfg
        self.path = cycle_path(train_cfg.cycle_length, train_cfg.cycle_return)
        self._anchor_cache: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    # -- helpers -------------------------------------------------------------------------
    def _anchors(self, r: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """Anchors [A, 4] and the cosine window [A] (float64) of an R x R map (cached)."""
        if r not in self._anchor_cache:
            anchors = torch.from_numpy(generate_anchors(self.model_cfg.anchor, r))
            window = torch.from_numpy(decode.cosine_window(r, self.model_cfg.anchor.num_anchors))
            self._anchor_cache[r] = (anchors, window)
        anchors, window = self._anchor_cache[r]
        return anchors.to(device), window.to(device)

    def _template(self, z_img: torch.Tensor, z_pad: torch.Tensor, center: torch.Tensor,
                  size: torch.Tensor) -> torch.Tensor:
        """Template features of the target (center, size) in z_img."""
        z_side = context_side(size, self.train_cfg.context_amount)
        return self.net.template(crop_batch(z_img, z_pad, center, z_side, self.model_cfg.template_size))

    def _search(self, zf: torch.Tensor, x_img: torch.Tensor, x_pad: torch.Tensor, x_center: torch.Tensor,
                x_side: torch.Tensor):
        """Net outputs (cls, loc, feat) of template features zf over the window (x_center, x_side) of x_img."""
        return self.net.track(zf, crop_batch(x_img, x_pad, x_center, x_side, self.model_cfg.search_size))

    def _hop(self, z_img: torch.Tensor, z_pad: torch.Tensor, center: torch.Tensor, size: torch.Tensor,
             x_img: torch.Tensor, x_pad: torch.Tensor, x_center: torch.Tensor, x_side: torch.Tensor):
        """Template around (center, size) in z_img, search window (x_center, x_side) in x_img -> net outputs."""
        return self._search(self._template(z_img, z_pad, center, size), x_img, x_pad, x_center, x_side)

    def decode_best(self, cls: torch.Tensor, loc: torch.Tensor, center: torch.Tensor, size: torch.Tensor,
                    x_side: torch.Tensor, bounds: torch.Tensor, min_size: torch.Tensor,
                    window_influence: float | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The tracker's SiamRPN decode (cyclesiam.tracking.decode), batched: best anchor -> new
        (center [B,2], size [B,2]) in canvas px, score [B], clipped to the image bounds (x1, y1, x2, y2)
        and a minimum size. The penalty's context is the crops' (train_cfg.context_amount).
        Differentiable in cls/loc (except argmax)."""
        tc = self.tracker_cfg
        anchors, window = self._anchors(cls.shape[-1], cls.device)
        # in the state's precision (float32 in training, also under autocast)
        score, pred = decode.decode_response(cls.to(center.dtype), loc.to(center.dtype), anchors)
        scale = self.model_cfg.search_size / x_side  # crop px per canvas px, [B]
        wi = tc.window_influence if window_influence is None else window_influence
        choice = decode.choose(score, pred, size * scale[:, None], window.to(score.dtype), wi, tc.penalty_k,
                               self.train_cfg.context_amount)
        new_center, new_size, _ = decode.step(center, size, choice, scale, tc.lr, bounds[:, :2], bounds[:, 2:],
                                              min_size)
        return new_center, new_size, choice.score

    # -- the cycle -----------------------------------------------------------------------
    def forward(self, batch: dict[str, torch.Tensor], label_seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the cycle; returns (loss, stats in STAT_KEYS order) for logging."""
        out = self.run(batch, label_seed)
        p = out.parts
        stats = torch.stack([p[key] for key in STAT_KEYS])
        return out.loss, stats

    def run(self, batch: dict[str, torch.Tensor], label_seed: int = 0) -> CycleOutput:
        tc, mc = self.train_cfg, self.model_cfg
        frames = batch["frames"]  # [B, F, 3, C, C] uint8 or float
        pad = batch["pad"].float()  # [B, F, 3]
        bounds = batch["bounds"].float()  # [B, F, 4]
        init = batch["box"].float()  # [B, 4] cx, cy, w, h canvas px (frame 0)
        scale_img = batch["scale"].float()  # [B] canvas px per image px
        min_size = self.tracker_cfg.min_size * scale_img  # canvas px
        ratio = mc.search_size / mc.template_size

        def frame(f: int) -> torch.Tensor:
            return frames[:, f].float()

        center, size = init[:, :2], init[:, 2:]
        path = self.path
        diff = tc.differentiable_hops
        # middle hops: inference
        for h in range(len(path) - 2):
            a, b = path[h], path[h + 1]
            with torch.set_grad_enabled(diff and torch.is_grad_enabled()):
                x_side = context_side(size, self.train_cfg.context_amount) * ratio
                cls, loc, _ = self._hop(frame(a), pad[:, a], center, size, frame(b), pad[:, b], center, x_side)
                center, size, _ = self.decode_best(cls, loc, center, size, x_side, bounds[:, b], min_size)
            if not diff:
                center, size = center.detach(), size.detach()
        # final hop: template from the last middle frame, search t1 around the shifted initial box
        a, b = path[-2], path[-1]
        side0 = context_side(init[:, 2:], self.train_cfg.context_amount) * ratio * batch["jitter"].float()
        crop_scale = mc.search_size / side0  # crop px per canvas px
        x_center = init[:, :2] - batch["shift"].float() / crop_scale[:, None]
        zf = self._template(frame(a), pad[:, a], center, size)
        cls, loc, feat = self._search(zf, frame(b), pad[:, b], x_center, side0)
        # the target in search-crop coordinates (relative to the crop centre)
        target = torch.cat([(init[:, :2] - x_center) * crop_scale[:, None], init[:, 2:] * crop_scale[:, None]], dim=1)
        out = self._loss(cls, loc, feat, target, batch["mask"], x_center, side0, label_seed)
        if tc.scale_rank_weight > 0:
            rank_cls = cls
            if tc.scale_rank_template == "initial":
                zf = self._template(frame(b), pad[:, b], init[:, :2], init[:, 2:])
                rank_cls = self._search(zf, frame(b), pad[:, b], x_center, side0)[0]
            l_rank, accuracy = self._scale_rank(zf, frame(b), pad[:, b], init, batch["shift"].float(),
                                                batch["jitter"].float(), side0, rank_cls, label_seed)
            out.loss = out.loss + tc.scale_rank_weight * l_rank
            out.parts.update(loss=out.loss.detach().float(), rank=l_rank.detach().float(), rank_acc=accuracy)
        return out

    def _scale_rank(self, zf: torch.Tensor, x_img: torch.Tensor, x_pad: torch.Tensor, init: torch.Tensor,
                    shift: torch.Tensor, jitter: torch.Tensor, side0: torch.Tensor, cls: torch.Tensor,
                    label_seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale-ranking loss and accuracy (fraction of pairs already ranked right) of the final hop.

        The first crop is the final hop's (side0, the target's scale off by `jitter`); the second is
        scale_step^sign times it (a random sign per sample), with the target at the same crop
        position. The crop nearer the target's own scale (|log scale| smaller) must score higher.
        """
        sign = torch.randint(0, 2, (init.shape[0],), generator=torch.Generator().manual_seed(int(label_seed) + 1))
        step = torch.as_tensor(self.tracker_cfg.scale_step, dtype=side0.dtype, device=side0.device)
        factor = step ** (sign.to(side0.device, side0.dtype) * 2.0 - 1.0)
        x_center1, side1 = rescaled_window(init[:, :2], shift, side0, factor, self.model_cfg.search_size)
        cls1, _, _ = self._search(zf, x_img, x_pad, x_center1, side1)
        edge = (cls.shape[-1] // 2) * self.model_cfg.anchor.stride
        position = shift.clamp(-edge, edge)  # the target's centre in both crops (crop px from the centre)
        margin0 = self._best_logit_near(cls, position)
        margin1 = self._best_logit_near(cls1, position)
        dist0, dist1 = jitter.log().abs(), (jitter * factor).log().abs()
        valid = (dist0 - dist1).abs() > RANK_MIN_GAP
        first_nearer = (dist0 < dist1).to(margin0.dtype) * 2.0 - 1.0  # +1: crop 0 must score higher
        diff = (margin0 - margin1) * first_nearer
        if not valid.any():
            zero = diff.sum() * 0.0
            return zero, zero.detach()
        loss = F.softplus(-diff[valid]).mean()
        return loss, (diff[valid] > 0).float().mean().detach()

    def _best_logit_near(self, cls: torch.Tensor, position: torch.Tensor) -> torch.Tensor:
        """Per sample, the highest object-minus-background log-probability among the anchors whose
        cell is within `scale_rank_radius` cells of `position` [B, 2] (crop px from the centre) -> [B]."""
        logit = losses.object_logit(cls, self.model_cfg.anchor.num_anchors)
        anchors, _ = self._anchors(cls.shape[-1], cls.device)
        reach = (self.train_cfg.scale_rank_radius + 0.5) * self.model_cfg.anchor.stride
        near = ((anchors[None, :, :2] - position[:, None, :]).abs() <= reach).all(dim=2)  # [B, A]
        return logit.masked_fill(~near, float("-inf")).amax(dim=1)

    def _loss(self, cls: torch.Tensor, loc: torch.Tensor, feat: torch.Tensor, target: torch.Tensor,
              mask: torch.Tensor, x_center: torch.Tensor, x_side: torch.Tensor, label_seed: int) -> CycleOutput:
        tc, mc = self.train_cfg, self.model_cfg
        k = mc.anchor.num_anchors
        r = cls.shape[-1]
        anchors, _ = self._anchors(r, cls.device)
        gen = torch.Generator().manual_seed(int(label_seed))
        hardness = losses.object_logit(cls.detach(), k) if tc.hard_negatives > 0 else None
        lab = label_ops.assign_labels(anchors, target.detach(), tc.positive_iou, tc.negative_iou, tc.max_positives,
                                      tc.max_anchors, tc.negative_weight, generator=gen,
                                      negative_scores=hardness, hard_negatives=tc.hard_negatives)
        l_cls = losses.score_loss(cls, lab.labels, lab.weights, k)
        l_loc = losses.box_loss(loc, lab.deltas, lab.labels, k, beta=tc.smooth_l1_beta)
        l_mask = cls.new_zeros(()).float()
        positions = lab.positive_positions(k)  # [B, R*R]
        if tc.mask_weight > 0 and mc.mask and positions.any():
            b_idx, flat = positions.nonzero(as_tuple=True)
            i, j = flat // r, flat % r
            vectors = feat[b_idx, :, i, j]  # [N, F]
            if tc.mask_detach_tower:
                vectors = vectors.detach()
            logits = self.net.mask(vectors)
            search_mask = self._search_mask(mask, x_center, x_side)
            rows, cols = losses.window_origins(i, j, r, mc.search_size, mc.anchor.stride, mc.template_size)
            windows = losses.mask_windows(search_mask, b_idx, rows, cols, mc.anchor.stride, mc.template_size)
            l_mask = losses.mask_loss(logits, windows)
        total = tc.cls_weight * l_cls + tc.loc_weight * l_loc + tc.mask_weight * l_mask
        with torch.no_grad():
            iou = self._final_iou(cls, loc, target)
            zero_stat = iou.new_zeros(())
        parts = {"loss": total.detach().float(), "cls": l_cls.detach().float(), "loc": l_loc.detach().float(),
                 "mask": l_mask.detach().float(), "iou": iou,
                 "positives": (lab.labels == label_ops.POSITIVE).sum(dim=1).float().mean(),
                 "rank": zero_stat, "rank_acc": zero_stat}
        return CycleOutput(loss=total, parts=parts)

    def _search_mask(self, mask: torch.Tensor, x_center: torch.Tensor, x_side: torch.Tensor) -> torch.Tensor:
        """The t1 target mask [B, C, C] (canvas) resampled into the final search crop, binarised -> [B, S, S]."""
        m = mask.float()
        if m.max() > 1.0:
            m = m / 255.0
        zero = m.new_zeros((m.shape[0], 1))
        crop = crop_batch(m[:, None], zero, x_center.detach(), x_side.detach(), self.model_cfg.search_size)
        return (crop[:, 0] >= 0.5).float()

    def _final_iou(self, cls: torch.Tensor, loc: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean IoU of the highest-scoring anchor's box (no penalty/window) with the target."""
        k = self.model_cfg.anchor.num_anchors
        anchors, _ = self._anchors(cls.shape[-1], cls.device)
        score = losses.flatten_cls(cls.detach(), k)[..., 1]
        pred = bbox.decode(losses.flatten_loc(loc.detach(), k), anchors[None])
        best = score.argmax(dim=1)
        box = pred[torch.arange(pred.shape[0], device=pred.device), best]
        return bbox.iou(box, target.detach(), "cxcywh").float().mean()
