"""Training reliability: SIGKILL at random moments resumes from the last checkpoint; truncated bags train."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from conftest import write_bag

from cyclesiam_train.cli import main

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_sigkill_at_random_moments_always_resumes_from_the_last_checkpoint(tmp_path, tree_video) -> None:
    """probes/train_kill.py with 3 kills on a real clip: every kill leaves a readable checkpoint and model at most
    one interval behind, every resume starts at that checkpoint, and the run still ends with every step logged."""
    out = tmp_path / "kill.json"
    proc = subprocess.run([sys.executable, str(REPO / "probes" / "train_kill.py"), "--data", str(tree_video),
                           "--kills", "3", "--steps", "14", "--every", "2", "--seed", "1", "--json", str(out),
                           "--workdir", str(tmp_path / "work")], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.is_file(), proc.stdout + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert len(rows) == 3, result
    for r in rows:
        assert r["checkpoint_ok"] and r["model_ok"], r
        assert 0 <= r["lost"] <= 2, r  # at most one checkpoint interval lost
        assert r["resumed_at"] == r["checkpoint_step"] and r["checkpoint_step"] >= 2, r
        assert r["model_step"] in (r["checkpoint_step"], r["checkpoint_step"] - 2), r  # written right after it
    assert result["final"]["exit_code"] == 0 and result["final"]["steps"] == list(range(14))
    assert result["final"]["stale_temporaries"] == []
    assert proc.returncode == 0 and "PASS" in proc.stdout, proc.stdout


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_bag_trains_on_its_readable_part_with_one_warning(tmp_path, tree_video, read_frames,
                                                                    light_overrides, storage) -> None:
    from cyclesiam.checkpoint import read_checkpoint
    from cyclesiam.sources import TruncatedBagWarning

    bag = write_bag(tmp_path / "bag", read_frames(tree_video, 12), storage=storage)
    storage_file = next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))
    storage_file.write_bytes(storage_file.read_bytes()[: int(storage_file.stat().st_size * 0.6)])  # recorder killed
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        rc = main(["--data", str(bag), "--out", str(tmp_path / "run"), "--no-progress", "--set", *light_overrides,
                   "train.steps=2", "train.checkpoint_every=1"])
    assert rc == 0
    truncated = [w for w in record if issubclass(w.category, TruncatedBagWarning)]
    assert len(truncated) == 1 and str(bag) in str(truncated[0].message)
    frames = read_checkpoint(tmp_path / "run" / "model.safetensors")[2]["provenance"]["data"][0]["frames"]
    assert 2 <= frames < 12


def test_a_model_whose_header_length_ends_in_0x80_is_not_taken_for_a_pickle(tmp_path) -> None:
    """Found by the SIGKILL bench: the pickle check looked only at the first byte, which is the low byte of the
    safetensors header length, so one model file in 256 (depending on its provenance's length) was refused."""
    import struct

    import torch

    from cyclesiam.checkpoint import CheckpointError, read_checkpoint, save_checkpoint
    from cyclesiam.config import ModelConfig
    from cyclesiam.models.builder import build_model

    cfg = ModelConfig(backbone="light")
    model = build_model(cfg)
    path = tmp_path / "model.safetensors"

    def header_length(pad: int) -> int:
        save_checkpoint(path, model, cfg, provenance={"pad": "x" * pad})
        return struct.unpack("<Q", path.read_bytes()[:8])[0]

    first = (0x80 - header_length(0)) % 256
    pad = next(n for n in range(max(0, first - 8), first + 264) if header_length(n) & 0xFF == 0x80)
    assert path.read_bytes()[:1] == b"\x80"
    state, _cfg, meta = read_checkpoint(path)
    assert meta["provenance"]["pad"] == "x" * pad and set(state) == set(model.state_dict())
    pickled = tmp_path / "model2.safetensors"  # a real pickle is still refused, whatever its name
    pickled.write_bytes(b"\x80\x04\x95" + b"\x00" * 64)
    with pytest.raises(CheckpointError, match="pickle"):
        read_checkpoint(pickled)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
