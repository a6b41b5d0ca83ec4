"""Checkpoint round trip and refusal of every kind of bad file, never unpickling."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import cyclesiam
from cyclesiam.checkpoint import CheckpointError, load_model, read_checkpoint, save_checkpoint
from cyclesiam.config import ModelConfig
from cyclesiam.models import build_model, prepare_for_inference

PROVENANCE = {"data": ["run1.mcap"], "steps": 12, "git": "abc123"}


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    cfg = ModelConfig(backbone="light", channels=32, head_channels=48, mask_hidden=64)
    model = build_model(cfg)
    # non-trivial BN statistics so that buffers are checked too
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
    model.eval()
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_checkpoint(path, model, cfg, PROVENANCE)
    return path, model, cfg


def test_round_trip_equal_outputs_and_metadata(saved):
    path, model, cfg = saved
    loaded, cfg2, meta = load_model(path, "cpu")
    assert cfg2 == cfg
    assert meta["provenance"] == PROVENANCE
    assert meta["cyclesiam_version"] == cyclesiam.__version__ and meta["torch_version"] == torch.__version__
    assert meta["format_version"] == 1 and meta["model_config"]["channels"] == 32
    z = torch.rand(2, 3, 127, 127) * 255
    x = torch.rand(2, 3, 255, 255) * 255
    with torch.no_grad():
        for a, b in zip(model(z, x), loaded(z, x)):
            torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not loaded.training
    state, _, _ = read_checkpoint(path)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    # no temp files left behind by the atomic write
    assert [p.name for p in path.parent.iterdir()] == ["model.safetensors"]


def test_overwrite_is_atomic_replace(saved, tmp_path):
    path, model, cfg = saved
    target = tmp_path / "sub" / "c.safetensors"
    save_checkpoint(target, model, cfg, {"round": 1})
    # a DataParallel/DDP wrapper is unwrapped (no "module." prefix in the file)
    save_checkpoint(target, torch.nn.DataParallel(model), cfg, {"round": 2})
    state, _, meta = read_checkpoint(target)
    assert meta["provenance"] == {"round": 2} and set(state) == set(model.state_dict())


def test_refuses_torch_save_pickle(saved, tmp_path):
    _, model, _ = saved
    bad = tmp_path / "weights.safetensors"  # the name lies; the content is a torch.save zip
    torch.save(model.state_dict(), bad)
    with pytest.raises(CheckpointError, match=r"weights\.safetensors.*zip archive.*never loaded"):
        load_model(bad)
    legacy = tmp_path / "legacy.bin"
    torch.save(model.state_dict(), legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match=r"legacy\.bin.*pickle"):
        read_checkpoint(legacy)
    pth = tmp_path / "model.pth"
    pth.write_bytes(b"not even a pickle")
    with pytest.raises(CheckpointError, match=r"model\.pth.*pickle"):
        read_checkpoint(pth)


class _Trap:
    """Unpickling this creates the marker file: proof that a loader unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_malicious_pickle_is_never_executed(tmp_path):
    import pickle

    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"w": _Trap(marker)}, protocol=2))
    with pytest.raises(CheckpointError, match=r"evil\.safetensors.*pickle"):
        load_model(evil)
    assert not marker.exists()


def test_refuses_truncated_file(saved, tmp_path):
    path, _, _ = saved
    data = path.read_bytes()
    for cut in (4, 200, len(data) // 2, len(data) - 1):
        bad = tmp_path / f"cut{cut}.safetensors"
        bad.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=rf"cut{cut}\.safetensors.*(truncated|corrupt)"):
            read_checkpoint(bad)


def test_refuses_random_bytes_and_missing_file(tmp_path):
    bad = tmp_path / "noise.safetensors"
    bad.write_bytes(torch.randint(0, 256, (4096,), generator=torch.Generator().manual_seed(0), dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(CheckpointError, match=r"noise\.safetensors"):
        read_checkpoint(bad)
    with pytest.raises(CheckpointError, match=r"not found.*absent\.safetensors"):
        read_checkpoint(tmp_path / "absent.safetensors")


def test_refuses_foreign_safetensors_and_missing_metadata(saved, tmp_path):
    _, model, cfg = saved
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    foreign = tmp_path / "foreign.safetensors"
    save_file(state, str(foreign))  # right tensors, no metadata
    with pytest.raises(CheckpointError, match=r"foreign\.safetensors.*not a CycleSiam checkpoint"):
        read_checkpoint(foreign)
    partial = tmp_path / "partial.safetensors"
    save_file(state, str(partial), metadata={"format": "cyclesiam-checkpoint", "format_version": "1"})
    with pytest.raises(CheckpointError, match=r"partial\.safetensors.*lacks 'model_config'"):
        read_checkpoint(partial)
    badcfg = tmp_path / "badcfg.safetensors"
    save_file(state, str(badcfg), metadata={"format": "cyclesiam-checkpoint", "format_version": "1", "model_config": json.dumps({"chanels": 3})})
    with pytest.raises(CheckpointError, match=r"badcfg\.safetensors.*chanels"):
        read_checkpoint(badcfg)


def _with_metadata_of(good: Path, state: dict, out: Path) -> Path:
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as fh:
        meta = fh.metadata()
    save_file(state, str(out), metadata=meta)
    return out


def test_refuses_wrong_keys_and_shapes(saved, tmp_path):
    path, model, _ = saved
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    renamed = dict(state)
    renamed["rpn.clss.weight"] = renamed.pop("rpn.cls.weight")
    bad = _with_metadata_of(path, renamed, tmp_path / "keys.safetensors")
    with pytest.raises(CheckpointError, match=r"keys\.safetensors.*1 missing key\(s\) \[rpn\.cls\.weight\].*1 unexpected key\(s\) \[rpn\.clss\.weight\]"):
        load_model(bad)
    reshaped = dict(state, **{"rpn.loc.weight": torch.zeros(4, 48, 1, 1)})
    bad = _with_metadata_of(path, reshaped, tmp_path / "shapes.safetensors")
    with pytest.raises(CheckpointError, match=r"shapes\.safetensors.*rpn\.loc\.weight: \(4, 48, 1, 1\) vs \(20, 48, 1, 1\)"):
        load_model(bad)


def test_a_checkpoint_claiming_a_huge_network_is_refused_without_building_it(saved, tmp_path):
    """The shape check builds plausible models on the CPU; a claimed 200000-wide network (tens of GB
    as real tensors) must still end in a clear error, not an allocation."""
    from safetensors import safe_open

    path, model, _ = saved
    with safe_open(str(path), framework="pt") as fh:
        meta = dict(fh.metadata())
    claimed = json.loads(meta["model_config"])
    claimed.update(channels=200_000, head_channels=200_000)
    meta["model_config"] = json.dumps(claimed)
    huge = tmp_path / "huge.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(huge), metadata=meta)
    with pytest.raises(CheckpointError, match=r"huge\.safetensors"):
        read_checkpoint(huge)


def test_refuses_to_save_a_bn_folded_model(saved, tmp_path):
    _, model, cfg = saved
    fused = prepare_for_inference(model, "cpu", channels_last=False)
    with pytest.raises(CheckpointError, match="BN-folded"):
        save_checkpoint(tmp_path / "fused.safetensors", fused, cfg, {})
    assert not (tmp_path / "fused.safetensors").exists()
