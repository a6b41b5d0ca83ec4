"""The batched cycle on a real sample: path, shapes, gradients (also through differentiable middle hops)."""

from __future__ import annotations

import dataclasses

import torch

from cyclesiam.config import Config
from cyclesiam.models.builder import build_model
from cyclesiam_train.cycle import CycleModel, crop_batch
from cyclesiam_train.data import CycleDataset, discover_streams, make_clips


def _batch(tree_video, cfg: Config, n: int = 2) -> dict[str, torch.Tensor]:
    streams = discover_streams([tree_video])
    ds = CycleDataset(streams, make_clips(streams, 0), None, cfg.train, cfg.model, cfg.tracker, 10)
    items = [ds[i] for i in range(n)]
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}


def _grads(cfg: Config, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    net = build_model(cfg.model)
    model = CycleModel(net, cfg.model, cfg.tracker, cfg.train)
    model.train()
    loss, stats = model(batch, label_seed=3)
    loss.backward()
    return stats, {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


def test_cycle_loss_parts_and_differentiable_hops_change_gradients(tree_video) -> None:
    cfg = Config()
    cfg.model.backbone = "light"
    batch = _batch(tree_video, cfg)
    stats, grads = _grads(cfg, batch)
    loss, l_cls, l_loc, l_mask, iou, pos = stats.tolist()
    assert abs(loss - (1.0 * l_cls + 1.2 * l_loc + 36.0 * l_mask)) < 1e-3
    assert 0 < pos <= 16 and 0 <= iou <= 1
    assert any(n.startswith("mask_head.") for n in grads) and any(n.startswith("rpn.") for n in grads)
    diff_cfg = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, differentiable_hops=True))
    stats_d, grads_d = _grads(diff_cfg, batch)
    assert torch.allclose(stats, stats_d, rtol=1e-5, atol=1e-5)  # same forward values
    # the middle hop now contributes gradient (through the predicted box into its loc/cls outputs)
    delta = max(float((grads[n] - grads_d[n]).abs().max()) for n in grads if n.startswith("rpn."))
    assert delta > 1e-6


def test_longer_cycle_runs_and_crop_is_differentiable_in_the_box(tree_video) -> None:
    cfg = Config()
    cfg.model.backbone = "light"
    cfg.train.cycle_length = 3
    batch = _batch(tree_video, cfg, n=1)
    assert batch["frames"].shape[1] == 3
    stats, grads = _grads(cfg, batch)
    assert torch.isfinite(stats).all() and grads
    img = batch["frames"][:, 0].float()
    center = torch.tensor([[250.0, 260.0]], requires_grad=True)
    side = torch.tensor([180.0], requires_grad=True)
    crop_batch(img, batch["pad"][:, 0], center, side, 127).mean().backward()
    assert center.grad is not None and float(center.grad.abs().sum()) > 0 and float(side.grad.abs()) > 0


def test_detached_mask_trains_only_the_mask_head(tree_video) -> None:
    cfg = Config()
    cfg.model.backbone = "light"
    batch = _batch(tree_video, cfg)
    detached = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, mask_detach_tower=True))
    no_mask = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, mask_weight=0.0))
    _, shared_grads = _grads(cfg, batch)
    _, detached_grads = _grads(detached, batch)
    _, box_only_grads = _grads(no_mask, batch)
    assert any(n.startswith("mask_head.") and g.abs().max() > 0 for n, g in detached_grads.items())
    tower = [n for n in box_only_grads if n.startswith("rpn.tower.")]
    assert tower
    for name in tower:  # the tower sees exactly the score + box gradient, nothing from the mask
        assert torch.allclose(detached_grads[name], box_only_grads[name], atol=1e-7)
    assert max(float((shared_grads[n] - box_only_grads[n]).abs().max()) for n in tower) > 1e-6
