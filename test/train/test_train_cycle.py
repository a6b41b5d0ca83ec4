"""The batched cycle on a real sample: path, shapes, gradients (also through differentiable middle hops)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from cyclesiam_train.config import Config
from cyclesiam.models.builder import build_model
from cyclesiam_train.cycle import STAT_KEYS, CycleModel, crop_batch, rescaled_window
from cyclesiam_train.data import CycleDataset, discover_streams, make_clips


def _batch(tree_video, cfg: Config, n: int = 2) -> dict[str, torch.Tensor]:
    streams = discover_streams([tree_video])
    ds = CycleDataset(streams, make_clips(streams, 0), None, cfg.train, cfg.model, 10)
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
    loss, l_cls, l_loc, l_mask, iou, pos, rank, rank_acc = stats.tolist()
    assert rank == 0 and rank_acc == 0  # the scale-ranking term is off by default
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


def test_scale_ranking_adds_its_term_and_trains_the_score(tree_video) -> None:
    cfg = Config()
    cfg.model.backbone = "light"
    batch = _batch(tree_video, cfg, n=4)
    batch["jitter"] = torch.ones_like(batch["jitter"])  # the final crop at the target's own scale: always nearer
    base_stats, base_grads = _grads(cfg, batch)
    ranked = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, scale_rank_weight=2.0))
    stats, grads = _grads(ranked, batch)
    parts = dict(zip(STAT_KEYS, stats.tolist()))
    base = dict(zip(STAT_KEYS, base_stats.tolist()))
    assert parts["rank"] > 0 and parts["rank_acc"] in (0.0, 0.25, 0.5, 0.75, 1.0)
    for key in ("cls", "loc", "mask", "iou", "positives"):  # the paper's terms are untouched
        assert abs(parts[key] - base[key]) < 1e-5
    assert abs(parts["loss"] - (base["loss"] + 2.0 * parts["rank"])) < 1e-3
    assert max(float((grads[n] - base_grads[n]).abs().max()) for n in grads if n.startswith("rpn.")) > 1e-6


def test_hard_negatives_change_only_the_score_term(tree_video) -> None:
    """train.hard_negatives picks some negatives by the current score: the score loss changes (the
    highest-scoring background costs more than random background), the positives and box term do not."""
    cfg = Config()
    cfg.model.backbone = "light"
    batch = _batch(tree_video, cfg, n=4)
    base_stats, _ = _grads(cfg, batch)
    hard = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, hard_negatives=0.5))
    stats, _ = _grads(hard, batch)
    parts = dict(zip(STAT_KEYS, stats.tolist()))
    base = dict(zip(STAT_KEYS, base_stats.tolist()))
    assert parts["cls"] > base["cls"] + 1e-4
    for key in ("loc", "iou", "positives"):
        assert abs(parts[key] - base[key]) < 1e-5


def test_hard_negative_setting_is_checked() -> None:
    from cyclesiam.config import ConfigError
    from cyclesiam_train.trainer import validate_train_config

    cfg = Config()
    cfg.train.hard_negatives = 1.5
    with pytest.raises(ConfigError, match="hard_negatives"):
        validate_train_config(cfg, 1)
    for key, bad in (("illumination_jitter", -0.1), ("rotation_jitter", 200.0), ("rotation_jitter", -5.0)):
        cfg = Config()
        setattr(cfg.train, key, bad)
        with pytest.raises(ConfigError, match=key):
            validate_train_config(cfg, 1)


def test_scale_ranking_window_keeps_the_target_at_the_same_crop_position() -> None:
    image = torch.zeros((1, 1, 400, 400))
    image[0, 0, 238:243, 158:163] = 1.0  # a bright dot centred at (160, 240)
    target, shift, side = torch.tensor([[160.5, 240.5]]), torch.tensor([[30.0, -20.0]]), torch.tensor([200.0])
    first_center = target - shift * side[:, None] / 255
    for factor in (1.0 / 1.1, 1.1, 1.3):
        center, new_side = rescaled_window(target, shift, side, torch.tensor([factor]), 255)
        assert torch.allclose(new_side, side * factor)
        crop = crop_batch(image, torch.zeros((1, 1)), center, new_side, 255)[0, 0]
        ys, xs = torch.nonzero(crop > 0.5, as_tuple=True)
        dot = torch.stack([xs.float().mean(), ys.float().mean()]) + 0.5 - 127.5  # crop px from the centre
        assert torch.allclose(dot, shift[0], atol=1.5), (factor, dot)
    assert torch.allclose(rescaled_window(target, shift, side, torch.ones(1), 255)[0], first_center)


def test_scale_ranking_settings_are_checked() -> None:
    from cyclesiam.config import ConfigError
    from cyclesiam_train.trainer import validate_train_config

    cfg = Config()
    validate_train_config(cfg, 1)
    cfg.train.scale_rank_weight = -1.0
    with pytest.raises(ConfigError, match="scale_rank_weight"):
        validate_train_config(cfg, 1)
    cfg.train.scale_rank_weight, cfg.tracker.scale_step = 1.0, 1.0
    with pytest.raises(ConfigError, match="scale_step"):
        validate_train_config(cfg, 1)
