"""cyclesiam-track / cyclesiam-bench on real footage: in-process with an explicitly requested
random-init light model, and as real subprocesses with the shipped default model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cyclesiam.cli import bench, track
from cyclesiam.sources import VideoSource

FAST = ["--checkpoint", "random", "--set", "model.backbone=light", "--device", "cpu", "--no-progress"]


def _check_schema(doc: dict, n_frames: int, box: list[float]) -> None:
    assert set(doc) == {"frames"}
    frames = doc["frames"]
    assert [f["index"] for f in frames] == list(range(n_frames))
    for f in frames:
        assert set(f) == {"index", "bbox", "score", "state", "polygon"}
        assert len(f["bbox"]) == 4 and all(isinstance(v, float) for v in f["bbox"])
        assert f["bbox"][2] > 0 and f["bbox"][3] > 0
        assert isinstance(f["score"], float) and 0.0 <= f["score"] <= 1.0
        assert f["state"] in ("tracking", "lost")
        assert len(f["polygon"]) == 4 and all(len(p) == 2 for p in f["polygon"])
    assert frames[0]["bbox"] == box and frames[0]["state"] == "tracking"


def test_track_video_writes_json_and_annotated_video(tree_video, tmp_path):
    out_json, out_video = tmp_path / "r" / "result.json", tmp_path / "annotated.avi"
    code = track.main([str(tree_video), "--box", "120,60,80,80", "--json", str(out_json), "--out", str(out_video), *FAST])
    assert code == 0
    doc = json.loads(out_json.read_text())
    _check_schema(doc, 68, [120.0, 60.0, 80.0, 80.0])
    assert doc["frames"][0]["polygon"] == [[120.0, 60.0], [200.0, 60.0], [200.0, 140.0], [120.0, 140.0]]
    video = VideoSource(out_video)
    assert len(video) == 68 and video.frame(0).shape == (240, 320, 3)


def test_track_bag_topic_and_stdout(tmp_path, tree_video, read_frames, capsys):
    from test_sources import write_ros2_bag

    bag = write_ros2_bag(tmp_path / "bag", read_frames(tree_video, 6), "mcap")
    code = track.main([str(bag), "--topic", "/cam/png/compressed", "--box", "10,20,50,40", *FAST])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    _check_schema(doc, 6, [10.0, 20.0, 50.0, 40.0])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--box", "1,2,0,5"], "positive width"),
        (["--box", "900,2,10,5"], "outside"),
        (["--box", "1,2,3,4", "--topic", "/cam"], "not a bag"),
        (["--box", "1,2,3,4", "--set", "tracker.nope=1"], "unknown key"),
    ],
)
def test_track_errors_are_reported(tree_video, capsys, argv, message):
    assert track.main([str(tree_video), *argv, *FAST]) == 2
    assert message in capsys.readouterr().err


def test_track_missing_input_and_bad_box_syntax(tmp_path, capsys):
    assert track.main([str(tmp_path / "nothing.mp4"), "--box", "1,2,3,4", *FAST]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        track.main([str(tmp_path), "--box", "1,2,3"])


def test_bench_prints_a_table(cube_frames_dir, capsys):
    code = bench.main(["--checkpoint", "random", "--backbones", "light", "--modes", "box", "mask", "--targets", "2", "--iterations", "2",
                       "--warmup", "0", "--device", "cpu", "--frames", str(cube_frames_dir)])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["backbone", "mode", "targets", "mean"]
    rows = [line.split() for line in lines[1:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [("light", "box", "2"), ("light", "box+mask", "2")]
    assert all(float(r[3]) > 0 and float(r[6]) > 0 for r in rows)
    assert np.isfinite([float(v) for r in rows for v in r[3:7]]).all()


REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "cyclesiam_default.safetensors"


def _cli(module: str, *argv: str) -> subprocess.CompletedProcess:
    """The real entry point in a fresh interpreter, from the repo root, without a model override."""
    env = {k: v for k, v in os.environ.items() if k != "CYCLESIAM_DEFAULT_CHECKPOINT"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", module, *argv], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=600)


def _model_lines(stderr: str, prog: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith(f"{prog}: model ")]


@pytest.fixture(scope="module")
def shipped_sha() -> str:
    from cyclesiam.default_model import sha256_prefix

    assert SHIPPED.is_file(), "the shipped model is part of the repo"
    return sha256_prefix(SHIPPED)


def test_track_without_checkpoint_runs_the_shipped_model_and_says_so(tree_video, tmp_path, shipped_sha):
    out = tmp_path / "r.json"
    proc = _cli("cyclesiam.cli.track", str(tree_video), "--box", "120,60,80,80", "--json", str(out), "--no-progress")
    assert proc.returncode == 0, proc.stderr
    assert _model_lines(proc.stderr, "cyclesiam-track") == [
        f"cyclesiam-track: model models/cyclesiam_default.safetensors (shipped default, sha256 {shipped_sha})"]
    scores = [f["score"] for f in json.loads(out.read_text())["frames"][1:]]
    # a random-init network scores every frame 0.5 (softmax of two near-equal logits)
    assert np.ptp(scores) > 0.05 and max(scores) > 0.8


def test_track_random_init_only_on_request(tree_video, tmp_path):
    out = tmp_path / "r.json"
    proc = _cli("cyclesiam.cli.track", str(tree_video), "--box", "120,60,80,80", "--json", str(out),
                "--checkpoint", "random", "--set", "model.backbone=light", "--no-progress")
    assert proc.returncode == 0, proc.stderr
    lines = _model_lines(proc.stderr, "cyclesiam-track")
    assert len(lines) == 1 and "random-init" in lines[0]
    missing = _cli("cyclesiam.cli.track", str(tree_video), "--box", "1,2,30,40", "--checkpoint", str(tmp_path / "no.safetensors"))
    assert missing.returncode == 2 and "checkpoint not found" in missing.stderr


def test_bench_without_checkpoint_runs_the_shipped_model(cube_frames_dir, shipped_sha):
    proc = _cli("cyclesiam.cli.bench", "--modes", "box", "--targets", "1", "--iterations", "1", "--warmup", "0",
                "--device", "cpu", "--frames", str(cube_frames_dir))
    assert proc.returncode == 0, proc.stderr
    assert _model_lines(proc.stderr, "cyclesiam-bench") == [
        f"cyclesiam-bench: model models/cyclesiam_default.safetensors (shipped default, sha256 {shipped_sha})"]
    rows = proc.stdout.strip().splitlines()[1:]
    assert [r.split()[:3] for r in rows] == [["mobilenet_v2", "box", "1"]]
