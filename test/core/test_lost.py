"""LOST on real footage with the shipped model: the cycle-trained score stays high on background
(0.6-0.85 where the cube was painted out), so the LOST rule also asks the template similarity."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from cyclesiam.config import Config, TrackerConfig
from cyclesiam.default_model import default_checkpoint
from cyclesiam.sources import ImageFolderSource
from cyclesiam.build import build_tracker
from cyclesiam.tracker import LOST, TRACKING

CUBE_BOX = (315, 205, 129, 145)  # the cube on the first mbt_cube frame


def _rule(**changes) -> TrackerConfig:
    """The shipped LOST rule (score and template similarity; lost targets followed, not held)."""
    return dataclasses.replace(Config().tracker, mask_enabled=False, **changes)


def _results(first: np.ndarray, frames: list[np.ndarray], tracker_cfg: TrackerConfig) -> list:
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    cfg = Config()
    cfg.runtime.device = "cpu"
    tracker = build_tracker(dataclasses.replace(cfg, tracker=tracker_cfg), path)
    tracker.add_target(first, CUBE_BOX)
    return [tracker.track(frame)[0] for frame in frames]


def _states(first: np.ndarray, frames: list[np.ndarray], tracker_cfg: TrackerConfig) -> list[str]:
    return [r.state for r in _results(first, frames, tracker_cfg)]


def _noisy(images: list[np.ndarray]) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [np.clip(im.astype(np.int16) + rng.integers(-3, 4, im.shape), 0, 255).astype(np.uint8) for im in images]


def _painted_out(frame: np.ndarray) -> np.ndarray:
    x, y, w, h = CUBE_BOX
    hole = np.zeros(frame.shape[:2], np.uint8)
    hole[y - 10:y + h + 10, x - 10:x + w + 10] = 255
    return cv2.inpaint(frame, hole, 5, cv2.INPAINT_TELEA)


@pytest.fixture(scope="module")
def first_frame(cube_frames_dir) -> np.ndarray:
    return cv2.imread(str(ImageFolderSource(cube_frames_dir).files[0]))


def test_lost_when_the_target_disappears_and_back_when_it_returns(first_frame) -> None:
    frames = _noisy([first_frame] * 3 + [_painted_out(first_frame)] * 8 + [first_frame] * 3)
    states = _states(first_frame, frames, _rule())
    assert states[:3] == [TRACKING] * 3
    assert LOST in states[3:8], states  # within 5 frames of the cube vanishing
    assert all(s == LOST for s in states[states.index(LOST):11]), states  # the empty place never recovers it
    assert states[-1] == TRACKING, states
    # the score alone at its earlier values (0.3 / 0.6) never notices: what the similarity is for
    plain = _rule(lost_similarity=0.0, recover_similarity=0.0, lost_threshold=0.3, recover_threshold=0.6)
    assert LOST not in _states(first_frame, frames, plain)
    # held instead of followed: LOST as well, and found again in the wide search
    held = _states(first_frame, frames, _rule(lost_hold=True))
    assert LOST in held[3:8] and held[-1] == TRACKING, held


def test_a_followed_lost_target_is_tracked_exactly_as_without_the_rule(first_frame) -> None:
    """With the template scale search, whose similarity is measured every frame (the default pooled one
    measures it only where the LOST rule reads it: test_scale_pooled.py)."""
    frames = _noisy([first_frame] * 2 + [_painted_out(first_frame)] * 6 + [first_frame] * 2)
    followed = _results(first_frame, frames, _rule(scale_from="template"))
    never_lost = _results(first_frame, frames, _rule(lost_threshold=0.0, lost_similarity=0.0, scale_from="template"))
    assert any(r.state == LOST for r in followed)
    assert all(r.state == TRACKING for r in never_lost)
    assert [r.bbox for r in followed] == [r.bbox for r in never_lost]
    # TrackResult.similarity is the rule's second signal: high on the cube, low where it was
    assert followed[0].similarity > 0.5 and followed[5].similarity < followed[0].similarity / 2


def test_lost_when_the_target_leaves_the_view(first_frame) -> None:
    height, width = first_frame.shape[:2]
    frames = []
    for step in range(1, 26):  # the view pans right 25 px per frame: the cube leaves on the left
        shift = np.float32([[1, 0, -25 * step], [0, 1, 0]])
        frames.append(cv2.warpAffine(first_frame, shift, (width, height), borderValue=(128, 128, 128)))
    states = _states(first_frame, _noisy(frames), _rule())
    assert states[:12] == [TRACKING] * 12, states  # fully in view (x >= 15)
    assert LOST in states[12:], states  # left by frame 19 (x + w < 0 from shift 445 on)
    assert states[-1] == LOST, states


def test_no_lost_while_the_cube_is_tracked_in_real_footage(cube_frames_dir) -> None:
    files = ImageFolderSource(cube_frames_dir).files
    frames = [cv2.imread(str(f)) for f in files[: 120]]
    states = _states(frames[0], frames[1:], _rule())
    assert LOST not in states


def test_lost_probe_reads_thresholds_off_real_footage(cube_frames_dir, tmp_path) -> None:
    """probes/lost_probe.py, as a user runs it for their own checkpoint: both signals separate the
    tracked cube from the painted-out one, and the printed thresholds lie between them."""
    import re
    import subprocess
    import sys
    from pathlib import Path

    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    repo = Path(__file__).resolve().parents[2]
    command = [sys.executable, str(repo / "probes" / "lost_probe.py"), "--checkpoint", str(path), "--box",
               ",".join(str(v) for v in CUBE_BOX), "--limit", "30", "--vanish", "5"]
    done = subprocess.run([*command, "--frames", str(cube_frames_dir)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    found = re.search(r"lost_threshold ([0-9.]+), tracker.lost_similarity ([0-9.]+)", done.stdout)
    assert found, done.stdout
    tracked = re.search(r"tracked \(p1/p5/p50\)\s+([0-9.]+)/\S+\s+([0-9.]+)/", done.stdout)
    vanished = re.search(r"vanished \(p50/p95/max\)\s+\S+/\S+/([0-9.]+)\s+\S+/\S+/([0-9.]+)", done.stdout)
    for k in (1, 2):
        assert float(vanished.group(k)) < float(found.group(k)) < float(tracked.group(k)), done.stdout
    missing = subprocess.run([*command, "--frames", str(tmp_path / "nope")], capture_output=True, text=True,
                             timeout=300)
    assert missing.returncode == 2 and "not found" in missing.stdout
