"""cyclesiam_train.blend: the weight-space blend `cyclesiam-adapt --blend` writes."""

from __future__ import annotations

import pytest
import torch

from cyclesiam.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from cyclesiam.config import ModelConfig
from cyclesiam.models.builder import build_model
from cyclesiam_train.blend import blend_checkpoints


def _saved(tmp_path, name: str, seed: int, cfg: ModelConfig):
    torch.manual_seed(seed)
    return save_checkpoint(tmp_path / name, build_model(cfg), cfg, {"seed": seed})


def test_blend_is_the_weighted_mean_of_every_float_tensor(tmp_path) -> None:
    cfg = ModelConfig(backbone="light")
    a, b = _saved(tmp_path, "a.safetensors", 0, cfg), _saved(tmp_path, "b.safetensors", 1, cfg)
    out = blend_checkpoints(a, b, tmp_path / "out.safetensors", 0.25)
    sa, sb = read_checkpoint(a)[0], read_checkpoint(b)[0]
    blended, blended_cfg, meta = read_checkpoint(out)
    assert blended_cfg == cfg and meta["provenance"]["blend"]["weight"] == 0.25 and meta["provenance"]["seed"] == 1
    floats = [k for k in sa if sa[k].is_floating_point()]
    assert any(not torch.equal(sa[k], sb[k]) for k in floats)
    for k in floats:
        torch.testing.assert_close(blended[k], 0.75 * sa[k] + 0.25 * sb[k])
    load_model(out)  # a normal checkpoint
    assert torch.equal(read_checkpoint(blend_checkpoints(a, b, tmp_path / "one.safetensors", 1.0))[0][floats[0]], sb[floats[0]])


def test_blend_refuses_other_architectures_and_weights_outside_0_1(tmp_path) -> None:
    a = _saved(tmp_path, "a.safetensors", 0, ModelConfig(backbone="light"))
    other = _saved(tmp_path, "c.safetensors", 0, ModelConfig(backbone="light", mask=False))
    with pytest.raises(CheckpointError, match="cannot be blended"):
        blend_checkpoints(a, other, tmp_path / "x.safetensors")
    with pytest.raises(ValueError):
        blend_checkpoints(a, a, tmp_path / "x.safetensors", 1.5)
    assert not (tmp_path / "x.safetensors").exists()


def test_adapt_refuses_a_blend_outside_0_1_before_writing_anything(tmp_path, tree_video, capsys) -> None:
    from cyclesiam_train.adapt import main

    assert main(["--data", str(tree_video), "--out", str(tmp_path / "run"), "--blend", "0", "--no-progress"]) == 2
    assert "--blend must be in (0, 1]" in capsys.readouterr().err and not (tmp_path / "run").exists()
