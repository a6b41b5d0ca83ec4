"""Swapping the network of a running tracker (cyclesiam/model_swap.py) on real video: targets keep
ids, states and boxes; the same weights swapped in change nothing; bad files leave the tracker as it was."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cyclesiam.build import build_tracker
from cyclesiam.checkpoint import load_model, save_checkpoint
from cyclesiam.config import Config
from cyclesiam.model_swap import ModelSwapError, model_identity, prepare_network, swap_in

BOXES = [(120.0, 60.0, 60.0, 80.0), (40.0, 120.0, 50.0, 50.0)]


@pytest.fixture(scope="module")
def frames(tree_video, read_frames):
    return read_frames(tree_video, 14)


@pytest.fixture(scope="module")
def perturbed(shipped_checkpoint, tmp_path_factory):
    """The shipped model with its neck and head weights moved: another valid checkpoint of the same architecture."""
    model, model_cfg, _ = load_model(shipped_checkpoint)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ("head" in name or "neck" in name) and p.dim() > 1:
                p.mul_(1.0 + 0.2 * torch.randn_like(p))
    return save_checkpoint(tmp_path_factory.mktemp("swap") / "perturbed.safetensors", model, model_cfg)


def config() -> Config:
    cfg = Config()
    cfg.runtime = dataclasses.replace(cfg.runtime, device="cpu", backend="torch")
    # one scale, no masks: the least work per frame on a busy CPU (the swap does not depend on them)
    cfg.tracker = dataclasses.replace(cfg.tracker, template_update="none", scale_steps=1, mask_enabled=False)
    return cfg


def started(shipped_checkpoint, frames):
    tracker = build_tracker(config(), shipped_checkpoint)
    for box in BOXES:
        tracker.add_target(frames[0], box)
    for frame in frames[1:6]:
        tracker.track(frame)
    return tracker


def boxes(results):
    return np.array([r.bbox for r in results])


def test_same_weights_swapped_in_change_nothing(shipped_checkpoint, frames):
    plain, swapped = started(shipped_checkpoint, frames), started(shipped_checkpoint, frames)
    new = prepare_network(config(), shipped_checkpoint, swapped.model_cfg, swapped.template_crops())
    swap_in(swapped, new)
    for frame in frames[6:]:
        a, b = plain.track(frame), swapped.track(frame)
        assert [r.id for r in a] == [r.id for r in b]
        np.testing.assert_allclose(boxes(a), boxes(b), atol=1e-3)


def test_other_weights_keep_ids_states_and_boxes(shipped_checkpoint, perturbed, frames):
    tracker = started(shipped_checkpoint, frames)
    before = {tid: tracker.result(tid) for tid in tracker.target_ids}
    old_backend = tracker.backend
    new = prepare_network(config(), perturbed, tracker.model_cfg, tracker.template_crops())
    assert new.identity.startswith("perturbed.safetensors@") and new.identity != model_identity(shipped_checkpoint)
    # a target set after the crops were read still gets a template from the new network
    late = tracker.add_target(frames[6], (200.0, 40.0, 40.0, 40.0))
    swap_in(tracker, new)
    assert tracker.backend is new.backend and tracker.backend is not old_backend
    for tid, r in before.items():
        after = tracker.result(tid)
        assert (after.bbox, after.state) == (r.bbox, r.state)
    assert tracker.target_ids == ["1", "2", late]
    results = tracker.track(frames[7])
    assert [r.id for r in results] == ["1", "2", late]
    assert all(np.isfinite(r.score) for r in results)
    # the new weights really are in use: the template of a kept crop differs from the old network's
    crop = tracker.template_crops()["1"][None]
    assert not torch.allclose(new.backend.template(crop), old_backend.template(crop))


@pytest.mark.parametrize("kind", ["missing", "truncated", "not_checkpoint", "pickle", "template_size"])
def test_bad_file_is_refused_and_tracker_untouched(kind, shipped_checkpoint, frames, tmp_path):
    from safetensors.torch import save_file

    from cyclesiam.config import ModelConfig
    from cyclesiam.models.builder import build_model

    path = tmp_path / f"{kind}.safetensors"
    if kind == "truncated":
        path.write_bytes(shipped_checkpoint.read_bytes()[: 1 << 20])
    elif kind == "not_checkpoint":
        save_file({"w": torch.zeros(3)}, str(path))
    elif kind == "pickle":
        path = tmp_path / "model.pth"
        torch.save({"w": torch.zeros(3)}, path)
    elif kind == "template_size":
        cfg = dataclasses.replace(ModelConfig(), backbone="light", template_size=111)
        save_checkpoint(path, build_model(cfg), cfg)
    tracker = started(shipped_checkpoint, frames)
    backend = tracker.backend
    with pytest.raises(ModelSwapError) as err:
        prepare_network(config(), path, tracker.model_cfg, tracker.template_crops())
    assert path.name in str(err.value)
    assert tracker.backend is backend
    assert [r.id for r in tracker.track(frames[6])] == ["1", "2"]
