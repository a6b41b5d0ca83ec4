"""cyclesiam-eval as a real subprocess: the shipped model by default, random init only on request."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "cyclesiam_default.safetensors"


def _eval(*argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "CYCLESIAM_DEFAULT_CHECKPOINT"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.run([sys.executable, "-m", "cyclesiam_train.eval.cli", *argv], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.fixture()
def cube_otb(tmp_path: Path, cube_frames_dir: Path) -> Path:
    """The hand-annotated mbt_cube dev clip as an OTB folder (frames linked, not copied)."""
    seq = tmp_path / "otb" / "mbt_cube"
    seq.mkdir(parents=True)
    (seq / "img").symlink_to(cube_frames_dir.resolve())
    (seq / "groundtruth_rect.txt").symlink_to(REPO / "annotations" / "dev" / "mbt_cube" / "groundtruth_rect.txt")
    return seq.parent


SHORT = ["--format", "otb", "--set", "eval.protocols=[ope]", "--set", "eval.max_frames=31"]


def test_eval_without_checkpoint_or_tracker_runs_the_shipped_model(cube_otb: Path, tmp_path: Path) -> None:
    from cyclesiam.default_model import sha256_prefix

    proc = _eval("--dataset", str(cube_otb), "--out", str(tmp_path / "out"), *SHORT)
    assert proc.returncode == 0, proc.stderr
    assert f"cyclesiam-eval: model models/cyclesiam_default.safetensors (shipped default, sha256 {sha256_prefix(SHIPPED)})" \
        in proc.stderr.splitlines()
    doc = json.loads((tmp_path / "out" / "results.json").read_text())
    assert list(doc["trackers"]) == ["cyclesiam_default"]
    # frames 10, 20, 30 scored; the shipped model follows the cube over the first second
    assert doc["trackers"]["cyclesiam_default"]["sequences"]["mbt_cube"]["ope"]["mean_iou"] > 0.5


def test_eval_baselines_alone_and_random_on_request(cube_otb: Path, tmp_path: Path) -> None:
    proc = _eval("--dataset", str(cube_otb), "--out", str(tmp_path / "a"), "--tracker", "kcf",
                 "--checkpoint", "random", "--set", "model.backbone=light", *SHORT)
    assert proc.returncode == 0, proc.stderr
    assert "random-init" in proc.stderr
    assert list(json.loads((tmp_path / "a" / "results.json").read_text())["trackers"]) == ["cyclesiam-random", "kcf"]
    only = _eval("--dataset", str(cube_otb), "--out", str(tmp_path / "b"), "--tracker", "kcf", *SHORT)
    assert only.returncode == 0 and "cyclesiam-eval: model" not in only.stderr
    missing = _eval("--dataset", str(cube_otb), "--out", str(tmp_path / "c"), "--checkpoint", str(tmp_path / "x.safetensors"), *SHORT)
    assert missing.returncode == 2 and "checkpoint not found" in missing.stderr


def test_still_baseline_holds_the_first_box_and_scores_the_clips_motion(cube_otb: Path, tmp_path: Path) -> None:
    proc = _eval("--dataset", str(cube_otb), "--out", str(tmp_path / "s"), "--tracker", "still", "--format", "otb",
                 "--set", "eval.protocols=[ope]")  # the whole clip: still costs microseconds a frame
    assert proc.returncode == 0, proc.stderr
    boxes = np.loadtxt(tmp_path / "s" / "predictions" / "still" / "mbt_cube.txt", delimiter=",")
    first = np.loadtxt(REPO / "annotations" / "dev" / "mbt_cube" / "groundtruth_rect.txt", delimiter=",", max_rows=1)
    assert np.allclose(boxes, np.round(first, 2))  # every frame: the init box
    ope = json.loads((tmp_path / "s" / "results.json").read_text())["trackers"]["still"]["sequences"]["mbt_cube"]["ope"]
    assert ope["mean_iou"] < 0.6  # the camera orbits the cube: a box held still loses it
