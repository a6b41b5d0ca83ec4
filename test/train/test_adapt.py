"""cyclesiam-adapt end to end on a real clip (tiny budget), its label-free check, and Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cyclesiam.checkpoint import read_checkpoint, save_checkpoint
from cyclesiam.config import ModelConfig
from cyclesiam.default_model import resolve_checkpoint
from cyclesiam.models.builder import build_model
from cyclesiam.sources import VideoSource
from cyclesiam_train import label_free_check as check
from cyclesiam_train.adapt import main

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow
TINY = ["--trips", "2", "--length", "4", "--no-progress", "--device", "cpu", "--threads", "1", "--set", "train.batch_size=2",
        "train.workers=0"]


def _env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""), PYTHONUNBUFFERED="1")


def test_adapt_end_to_end_on_a_real_clip(tmp_path, tree_video) -> None:
    run = tmp_path / "run"
    t0 = time.monotonic()
    threads = torch.get_num_threads()
    assert main(["--data", str(tree_video), "--out", str(run), "--minutes", "0.3", *TINY]) == 0
    took = time.monotonic() - t0
    assert torch.get_num_threads() == threads  # --threads does not leak into the caller
    report = (run / "report.md").read_text()
    assert (run / "before_after.png").stat().st_size > 10_000
    # the model to use is exactly the one the check chose, and says so in the report
    base = resolve_checkpoint(None)
    chosen = (run / "model.safetensors").read_bytes()
    adapted = (run / "adapted.safetensors").read_bytes()
    if "is **the adapted model**" in report:
        assert chosen == adapted
    else:
        assert "is **BASE**" in report and chosen == base.read_bytes()
    # the adapted model is the fine-tuned weights blended halfway back to BASE (--blend 0.5)
    base_state, _cfg, _meta = read_checkpoint(base)
    tuned_state, _cfg, _meta = read_checkpoint(run / "train" / "model.safetensors")
    blended, _cfg, blend_meta = read_checkpoint(run / "adapted.safetensors")
    moved = [k for k in base_state if base_state[k].is_floating_point() and not torch.equal(base_state[k], tuned_state[k])]
    assert moved and not any(k.startswith("backbone.") for k in moved)  # the backbone stays frozen
    for k in moved:
        torch.testing.assert_close(blended[k], 0.5 * base_state[k] + 0.5 * tuned_state[k])
    assert blend_meta["provenance"]["blend"]["weight"] == 0.5 and "0.5 x the fine-tuned weights" in report
    # the adapted model started from BASE, trained at least one step, never on the held-out 20 %
    _state, _cfg, meta = read_checkpoint(run / "train" / "model.safetensors")
    prov = meta["provenance"]
    assert prov["init_from"] == str(base) and prov["steps"] >= 1 and prov["holdout"] == 0.2
    assert prov["data"][0]["frames"] == 54  # 68 frames, the last 14 held out
    assert prov["config"]["train"]["lr"] == 5e-4 and prov["config"]["train"]["freeze_backbone_steps"] == -1
    assert "round-trip IoU" in report and "s/step" in report
    assert took < 600
    # a second adapt into the same RUN_DIR is refused before it touches the chosen model
    assert main(["--data", str(tree_video), "--out", str(run), "--minutes", "0.3", *TINY]) == 2
    assert (run / "model.safetensors").read_bytes() == chosen


def test_compare_calls_better_only_when_clearly_better() -> None:
    def trips(values):
        return [check.TripResult(v, 0.0, 0.0) for v in values]

    base = trips([0.5, 0.6, 0.7, 0.4, 0.8, 0.55])
    assert not check.compare(base, base).better
    assert check.compare(base, trips([v + 0.1 for v in [0.5, 0.6, 0.7, 0.4, 0.8, 0.55]])).better
    noisy = trips([0.9, 0.3, 0.95, 0.1, 0.85, 0.6])  # higher on average, but not consistently
    verdict = check.compare(base, noisy)
    assert verdict.gain > 0 and not verdict.better
    with pytest.raises(ValueError):
        check.compare(base, base[:3])


@pytest.fixture
def one_thread():
    """One torch thread (fast on a shared CPU), the process default restored after the test."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_label_free_signal_ranks_the_shipped_model_above_an_untrained_one(tmp_path, tree_video, one_thread) -> None:
    """The signal has to tell models apart on real footage: the shipped model against a random-init one."""
    torch.manual_seed(0)
    source = VideoSource(tree_video)
    plan = check.plan_trips([source], [(20, 68)], 4, 8, np.random.default_rng(0), check.seed_config())
    untrained = save_checkpoint(tmp_path / "untrained.safetensors", build_model(ModelConfig(backbone="light")),
                                ModelConfig(backbone="light"))
    random_init = check.measure(untrained, [source], plan)
    shipped = check.measure(resolve_checkpoint(None), [source], plan)
    assert check.summary(shipped)["iou"] > check.summary(random_init)["iou"] + 0.1


def test_a_check_past_its_deadline_stops_after_the_minimum_trips(tree_video, one_thread) -> None:
    """The check's share of the --minutes budget: no trip starts after the deadline, once two are done."""
    source = VideoSource(tree_video)
    plan = check.plan_trips([source], [(20, 68)], 5, 4, np.random.default_rng(0), check.seed_config())
    shipped = resolve_checkpoint(None)
    everything = check.measure(shipped, [source], plan)
    cut = check.measure(shipped, [source], plan, deadline=time.monotonic() - 1.0)
    assert len(everything) == 5 and len(cut) == check.MIN_TRIPS
    assert [r.iou for r in cut] == [r.iou for r in everything[:check.MIN_TRIPS]]  # the same first trips


def test_ctrl_c_leaves_a_model_the_tracker_loads(tmp_path, tree_video, read_frames) -> None:
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "cyclesiam_train.adapt", "--data", str(tree_video), "--out", str(run),
                             "--minutes", "5", *TINY], cwd=REPO, env=_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None and not (run / "train" / "metrics.jsonl").is_file():
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)  # mid-training
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 128 + signal.SIGINT, err[-3000:]
    assert "Traceback" not in err
    assert read_checkpoint(run / "train" / "model.safetensors")[2]["provenance"]["steps"] >= 1
    assert (run / "model.safetensors").read_bytes() == resolve_checkpoint(None).read_bytes()  # BASE until checked
    clip = tmp_path / "clip"  # three real frames: the point is that the model loads and tracks
    clip.mkdir()
    for i, frame in enumerate(read_frames(tree_video, 3)):
        cv2.imwrite(str(clip / f"{i:03d}.png"), frame)
    track = subprocess.run([sys.executable, "-m", "cyclesiam.cli.track", str(clip), "--box", "120,60,80,90",
                            "--checkpoint", str(run / "model.safetensors"), "--device", "cpu", "--set",
                            "runtime.backend=torch", "--no-progress"], cwd=REPO, env=_env(), capture_output=True,
                           text=True, timeout=600)
    assert track.returncode == 0, track.stderr[-2000:]


def test_check_trips_start_from_the_seeds_in_the_held_out_tail(tmp_path, tree_video, read_frames) -> None:
    """Adapting with seeds (the node's own detections recorded with the frames), the check's round trips
    start from the detections in the held-out tail, not from random boxes; a recording without any there
    gets random label-free boxes."""
    from conftest import write_bag

    from cyclesiam_train.adapt import held_out_trips
    from cyclesiam_train.config import SeedConfig

    tail_box = (90.0, 30.0, 100.0, 110.0)
    tree_frames = read_frames(tree_video, 20)
    bag = write_bag(tmp_path / "dets", tree_frames,
                    detections=[(3, [(10.0, 10.0, 50.0, 50.0)]), (16, [tail_box]), (17, [tail_box])])
    seeds = SeedConfig(source="topic", topic="/detections")
    streams, plan = held_out_trips([str(bag)], [], 0.2, 4, 8, 0, seeds)  # frames 16..19 held out
    assert sorted((t.start, t.box) for t in plan) == [(16, tail_box), (17, tail_box)]
    assert all(t.length == 20 - t.start for t in plan) and all(any(t.shift) for t in plan)
    _, random_plan = held_out_trips([str(bag)], [], 0.2, 4, 8, 0)
    assert len(random_plan) == 4 and all(t.box != tail_box for t in random_plan)
    no_tail = write_bag(tmp_path / "early", tree_frames, detections=[(3, [(10.0, 10.0, 50.0, 50.0)])])
    _, fallback = held_out_trips([str(no_tail)], [], 0.2, 3, 8, 0, seeds)
    assert len(fallback) == 3 and all(16 <= t.start < 20 for t in fallback)


def test_adapt_seeded_by_a_recorded_detection_topic(tmp_path, tree_video, read_frames, capsys) -> None:
    """`--seed-topic`: the node's own detections recorded with the frames seed the cycle (those in the
    held-out tail are not trained on) and the check's round trips start from the ones in the tail."""
    from conftest import write_bag

    frames = read_frames(tree_video, 20)
    crown = (50.0, 8.0, 226.0, 235.0)
    bag = write_bag(tmp_path / "rec", frames, detections=[(i, [crown]) for i in range(20)],
                    detection_topic="/cyclesiam_tracker/detections")
    run = tmp_path / "run"
    assert main(["--data", str(bag), "--out", str(run), "--minutes", "0.3", "--seed-topic",
                 "/cyclesiam_tracker/detections", *TINY]) == 0
    captured = capsys.readouterr()
    printed = captured.out + captured.err
    assert "from the seeds there" in printed
    assert "seeds: 16 from topic /cyclesiam_tracker/detections (1 bag(s)); 4 of 20 in the held-out tails" in printed
    _state, _cfg, meta = read_checkpoint(run / "train" / "model.safetensors")
    assert meta["provenance"]["config"]["train"]["seeds"]["source"] == "topic"
    with pytest.raises(SystemExit):
        main(["--data", str(bag), "--out", str(tmp_path / "x"), "--seed-topic", "/t", "--seeds", "f.yaml"])
