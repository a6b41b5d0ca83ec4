"""End-to-end training on real rosbags: loss drops, exact resume after SIGTERM, DDP on CPU, errors, tracker load."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_bag
from safetensors.torch import load_file

from cyclesiam_train.cli import main
from cyclesiam_train.seeds import write_seed_file
from cyclesiam_train.train_state import read_state

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _metrics(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory, tree_frames) -> tuple[Path, Path]:
    """A 3-frame real MCAP bag and a seeds file with one box on its first frame."""
    d = tmp_path_factory.mktemp("tiny")
    bag = write_bag(d / "bag", tree_frames[:3])
    seeds = write_seed_file(d / "seeds.yaml", [{"bag": str(bag), "topic": "/camera/image", "frame": 0,
                                                "box": [120, 60, 80, 90]}])
    return bag, seeds


@pytest.fixture(scope="module")
def overfit_run(tmp_path_factory, tiny_clip, light_overrides) -> Path:
    bag, seeds = tiny_clip
    run = tmp_path_factory.mktemp("overfit") / "run"
    rc = main(["--data", str(bag), "--out", str(run), "--seeds", str(seeds), "--no-progress", "--set",
               *light_overrides, "train.steps=15", "train.lr=0.05", "train.search_shift=0.0",
               "train.search_scale_jitter=0.0", "train.checkpoint_every=100"])
    assert rc == 0
    return run


def test_short_run_overfits_a_tiny_clip(overfit_run) -> None:
    m = _metrics(overfit_run)
    assert [r["step"] for r in m] == list(range(15))
    first = np.mean([r["loss"] for r in m[:3]])
    last = np.mean([r["loss"] for r in m[-3:]])
    assert last < 0.95 * first, (first, last)  # total (mask-dominated at weight 36) drops clearly
    cls_first, cls_last = np.mean([r["cls"] for r in m[:3]]), np.mean([r["cls"] for r in m[-3:]])
    assert cls_last < 0.75 * cls_first, (cls_first, cls_last)
    mask_first, mask_last = np.mean([r["mask"] for r in m[:3]]), np.mean([r["mask"] for r in m[-3:]])
    assert mask_last < mask_first - 0.01
    assert (overfit_run / "loss.png").stat().st_size > 10_000
    _tensors, meta = read_state(overfit_run)
    assert meta["step"] == 15 and meta["info"]["config"]["train"]["lr"] == 0.05


def test_exported_model_loads_in_the_tracker_and_tracks(overfit_run, tree_frames) -> None:
    from cyclesiam.checkpoint import load_model
    from cyclesiam.config import Config
    from cyclesiam.build import build_tracker

    model, model_cfg, meta = load_model(overfit_run / "model.safetensors")
    assert model_cfg.backbone == "light"
    prov = meta["provenance"]
    assert prov["steps"] == 15 and np.isfinite(prov["loss"]) and prov["data"][0]["frames"] == 3
    assert prov["data"][0]["bytes"] > 0 and "cyclesiam-train" in prov["command"]
    cfg = Config()
    cfg.runtime.device = "cpu"
    tracker = build_tracker(cfg, checkpoint=overfit_run / "model.safetensors")
    tracker.add_target(tree_frames[0], (120, 60, 80, 90))
    results = tracker.track(tree_frames[1])
    assert len(results) == 1 and all(np.isfinite(results[0].bbox)) and results[0].bbox[2] > 0


def test_plot_command_redraws(overfit_run, tmp_path) -> None:
    from cyclesiam_train.metrics_log import plot_main

    assert plot_main([str(overfit_run), "--out", str(tmp_path / "p.png")]) == 0
    assert (tmp_path / "p.png").stat().st_size > 10_000


def test_resuming_a_finished_run_leaves_its_model_alone(overfit_run, capsys) -> None:
    """scripts/train_default_model.sh calls --resume on a stage that is already done."""
    model = overfit_run / "model.safetensors"
    before = model.read_bytes()
    assert main(["--resume", str(overfit_run), "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "already finished at step 15" in out.out + out.err and "nan" not in out.out + out.err
    assert model.read_bytes() == before
    assert [r["step"] for r in _metrics(overfit_run)] == list(range(15))


def test_resume_brings_a_lagging_model_level_with_the_checkpoint(overfit_run, tmp_path) -> None:
    """Two kills in a row, each between the state's write and the model's, leave the model two intervals
    behind; the next resume rewrites it from the state before training on (here: the model is missing)."""
    import shutil

    from cyclesiam.checkpoint import read_checkpoint

    run = tmp_path / "run"
    shutil.copytree(overfit_run, run)
    (run / "model.safetensors").unlink()
    assert main(["--resume", str(run), "--no-progress"]) == 0
    assert read_checkpoint(run / "model.safetensors")[2]["provenance"]["steps"] == 15
    a, b = load_file(str(overfit_run / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert max(float((a[k] - b[k]).abs().max()) for k in a) == 0.0


def test_resume_after_sigterm_gives_the_same_next_step_loss(tmp_path, tiny_clip, light_overrides) -> None:
    bag, _ = tiny_clip
    common = ["--data", str(bag), "--no-progress", "--set", *light_overrides, "train.steps=6",
              "train.checkpoint_every=100", "train.lr=0.02"]
    # uninterrupted reference run
    ref = tmp_path / "ref"
    assert main(common[:2] + ["--out", str(ref)] + common[2:]) == 0
    # interrupted run: SIGTERM once two steps are logged, then --resume
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "cyclesiam_train.cli", "--out", str(run), *common], cwd=REPO,
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if (run / "metrics.jsonl").is_file() and len(_metrics(run)) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"run ended before the signal: {proc.communicate()}"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err and "--resume" in out + err
    _t, meta = read_state(run)
    stopped = meta["step"]
    assert 2 <= stopped < 6
    assert not list(run.glob(".*.tmp")), "temporary files left behind"
    _assert_track_cli_loads(run / "model.safetensors", stopped, bag)  # a stopped run leaves a usable model
    assert main(["--resume", str(run), "--no-progress"]) == 0
    ref_m, run_m = _metrics(ref), _metrics(run)
    assert [r["step"] for r in run_m] == list(range(6))
    # same thread count in every segment, same data: the next step after resume is the same step
    assert run_m[stopped]["loss"] == pytest.approx(ref_m[stopped]["loss"], rel=1e-6, abs=1e-7)
    assert run_m[-1]["loss"] == pytest.approx(ref_m[-1]["loss"], rel=1e-5)
    a, b = load_file(str(ref / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert a.keys() == b.keys()
    assert max(float((a[k].float() - b[k].float()).abs().max()) for k in a) < 1e-5  # identical up to float noise


def _assert_track_cli_loads(model: Path, steps: int, clip: Path) -> None:
    """`cyclesiam-track --checkpoint MODEL` runs on a real clip, and the model says which step it is."""
    from cyclesiam.checkpoint import read_checkpoint

    assert read_checkpoint(model)[2]["provenance"]["steps"] == steps
    proc = subprocess.run([sys.executable, "-m", "cyclesiam.cli.track", str(clip), "--box", "120,60,80,90",
                           "--checkpoint", str(model), "--device", "cpu", "--set", "runtime.backend=torch",
                           "--no-progress"],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_init_from_starts_at_the_checkpoints_weights(tmp_path, tiny_clip, light_overrides) -> None:
    from cyclesiam.checkpoint import read_checkpoint

    bag, _ = tiny_clip
    first, second = tmp_path / "first", tmp_path / "second"
    sets = [*light_overrides, "train.checkpoint_every=100"]
    assert main(["--data", str(bag), "--out", str(first), "--no-progress", "--set", *sets, "train.steps=2",
                 "train.lr=0.05"]) == 0
    # lr 0: the second run's model is the first run's weights exactly (not a fresh init); its config comes
    # from the checkpoint even though the command line asks for another backbone
    assert main(["--data", str(bag), "--out", str(second), "--no-progress", "--init-from",
                 str(first / "model.safetensors"), "--set", *sets, "model.backbone=mobilenet_v2", "train.steps=1",
                 "train.lr=0.0", "train.momentum=0.0", "train.weight_decay=0.0"]) == 0
    a, cfg_a, _ = read_checkpoint(first / "model.safetensors")
    b, cfg_b, meta = read_checkpoint(second / "model.safetensors")
    assert cfg_b == cfg_a and cfg_b.backbone == "light"
    from cyclesiam.models.builder import build_model

    params = [name for name, _ in build_model(cfg_a).named_parameters()]
    assert all(torch.equal(a[k], b[k]) for k in params)
    assert meta["provenance"]["init_from"] == str(first / "model.safetensors")
    assert main(["--resume", str(second), "--init-from", str(first / "model.safetensors"), "--no-progress"]) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DDP_SCRIPT = """
import os, sys
from safetensors.torch import save_file
from cyclesiam_train.config import load_config, parse_dotted
from cyclesiam_train.trainer import train
bag, out = sys.argv[1], sys.argv[2]
cfg = load_config(None, parse_dotted(sys.argv[3:]))
res = train(cfg, [bag], out, progress=False)
state = {k: v.detach().contiguous().clone() for k, v in res.net.state_dict().items()}
save_file(state, os.path.join(out, "rank%s.safetensors" % os.environ["RANK"]))
"""


def test_two_process_ddp_on_cpu_gives_identical_weights(tmp_path, tiny_clip, light_overrides) -> None:
    bag, _ = tiny_clip
    script = tmp_path / "ddp_train.py"
    script.write_text(DDP_SCRIPT)
    out = tmp_path / "ddp"
    env = _env()
    env["GLOO_SOCKET_IFNAME"] = "lo"
    env["OMP_NUM_THREADS"] = "1"  # two ranks on two cores
    sets = [*light_overrides, "train.steps=2", "train.lr=0.05", "train.freeze_backbone_steps=1",
            "train.checkpoint_every=100"]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(script), str(bag), str(out), *sets]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r0, r1 = load_file(str(out / "rank0.safetensors")), load_file(str(out / "rank1.safetensors"))
    assert r0.keys() == r1.keys()
    for k in r0:
        assert torch.equal(r0[k], r1[k]), k
    # training happened (step 1 also trained the unfrozen backbone), and only rank 0 wrote the run files
    _t, meta = read_state(out)
    assert meta["step"] == 2 and meta["info"]["world_size"] == 2
    saved = {k[len("model."):]: v for k, v in _t.items() if k.startswith("model.")}
    assert set(saved) == set(r0) and all(torch.equal(saved[k], r0[k]) for k in r0)
    from cyclesiam.config import ModelConfig
    from cyclesiam.models.builder import build_model

    torch.manual_seed(0)
    init = build_model(ModelConfig(backbone="light")).state_dict()
    changed = [k for k in r0 if r0[k].is_floating_point() and not torch.equal(init[k], r0[k])]
    assert any(k.startswith("rpn.") for k in changed) and any(k.startswith("backbone.") for k in changed)
    assert len(_metrics(out)) == 2 and (out / "model.safetensors").is_file()


def test_cli_errors_are_clear_and_name_the_file(tmp_path, tiny_clip, tree_frames, light_overrides, capsys) -> None:
    bag, _ = tiny_clip
    base = ["--no-progress", "--set", *light_overrides, "train.steps=1"]
    assert main(["--data", str(bag), "--out", str(tmp_path / "a"), "--topic", "/nope", *base]) == 2
    err = capsys.readouterr().err
    assert str(bag) in err and "/nope" in err and "/camera/image" in err
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "metadata.yaml").write_text((bag / "metadata.yaml").read_text())
    for f in bag.glob("*.mcap"):
        (corrupt / f.name).write_bytes(b"\x89MCAP0\r\n" + b"\x00" * 64)
    assert main(["--data", str(corrupt), "--out", str(tmp_path / "b"), *base]) == 2
    assert str(corrupt) in capsys.readouterr().err
    empty = write_bag(tmp_path / "empty", [], topics=["/camera/image"])
    assert main(["--data", str(empty), "--out", str(tmp_path / "c"), *base]) == 2
    err = capsys.readouterr().err
    assert str(empty) in err and "zero frames" in err
    assert main(["--data", str(bag), "--out", str(tmp_path / "d"), "--seed-topic", "/detections", *base]) == 2
    assert "/detections" in capsys.readouterr().err
    assert main(["--data", str(bag), "--out", str(tmp_path / "e"), *base, "train.nope=1"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["--resume", str(tmp_path / "missing"), "--no-progress"]) == 2
    assert "no training checkpoint" in capsys.readouterr().err
