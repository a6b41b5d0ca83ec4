"""tracker.motion: the velocity model's smoothing, cap and reset, its settings, and the shipped tracker
searching ahead of a target that slides at a constant speed (the crop centre leads, the box keeps up)."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch

from cyclesiam.build import build_tracker
from cyclesiam.config import Config, ConfigError, TrackerConfig, validate
from cyclesiam.default_model import default_checkpoint
from cyclesiam.sources import ImageFolderSource
from cyclesiam.tracking.motion import ConstantVelocity, LastPosition, motion_model
from cyclesiam.tracking.state import TrackState
from cyclesiam.tracking.target import Target


def _target(center=(100.0, 100.0), size=(20.0, 20.0)) -> Target:
    return Target(id="a", center=np.array(center), size=np.array(size), zf=torch.zeros(1), reference=torch.zeros(1))


def _move(model: LastPosition, target: Target, step) -> None:
    previous = target.center
    target.center = previous + np.asarray(step, dtype=float)
    model.update(target, previous)


def test_velocity_smooths_caps_and_resets() -> None:
    model = motion_model(TrackerConfig(motion="velocity", motion_rate=0.5))
    assert isinstance(model, ConstantVelocity)
    target = _target()
    _move(model, target, (10.0, 0.0))
    np.testing.assert_allclose(target.velocity, [5.0, 0.0])
    np.testing.assert_allclose(model.search_center(target), target.center + [5.0, 0.0])
    for _ in range(20):
        _move(model, target, (10.0, -4.0))
    np.testing.assert_allclose(target.velocity, [10.0, -4.0], atol=1e-4)
    _move(model, target, (300.0, 0.0))  # a jump: at most one target size sqrt(w h) = 20
    assert np.hypot(*target.velocity) == pytest.approx(20.0)
    target.state = TrackState.LOST
    np.testing.assert_array_equal(model.search_center(target), target.center)  # a LOST box does not move on
    _move(model, target, (10.0, 0.0))
    np.testing.assert_array_equal(target.velocity, [0.0, 0.0])


def test_none_searches_where_the_target_was() -> None:
    model = motion_model(TrackerConfig(motion="none"))
    target = _target()
    _move(model, target, (10.0, 0.0))
    np.testing.assert_array_equal(model.search_center(target), target.center)
    np.testing.assert_array_equal(target.velocity, [0.0, 0.0])


@pytest.mark.parametrize("field, value", [("motion", "kalman"), ("motion_rate", 0.0), ("motion_rate", 1.5)])
def test_bad_motion_settings_are_refused(field: str, value) -> None:
    with pytest.raises(ConfigError, match=field):
        validate(dataclasses.replace(TrackerConfig(), **{field: value}), "tracker")


def _sliding_scene(frame: np.ndarray, step: int, frames: int) -> list[np.ndarray]:
    """The real frame shifted right by `step` px more every frame (the scene slides under a still camera)."""
    h, w = frame.shape[:2]
    return [cv2.warpAffine(frame, np.float32([[1, 0, step * i], [0, 1, 0]]), (w, h), borderMode=cv2.BORDER_REFLECT)
            for i in range(frames)]


def test_shipped_tracker_searches_ahead_of_a_sliding_target(cube_frames_dir) -> None:
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    frame = cv2.imread(str(ImageFolderSource(cube_frames_dir).files[0]))
    box, step = (215.0, 205.0, 129.0, 145.0), 12
    images = _sliding_scene(frame, step, 10)
    ends = {}
    for motion in ("none", "velocity"):
        cfg = Config()
        cfg.runtime.device = "cpu"
        cfg = dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, motion=motion, mask_enabled=False))
        tracker = build_tracker(cfg, path)
        tid = tracker.add_target(images[0], box)
        for image in images[1:]:
            (result,) = tracker.track(image)
        target = tracker._targets[tid]
        ends[motion] = (result.bbox[0] + result.bbox[2] / 2, target.velocity.copy())
    true_x = box[0] + box[2] / 2 + step * 9
    x_none, v_none = ends["none"]
    x_velocity, v_velocity = ends["velocity"]
    np.testing.assert_array_equal(v_none, [0.0, 0.0])
    assert abs(v_velocity[0] - step) < 4 and abs(v_velocity[1]) < 4, v_velocity  # it learnt the slide
    assert abs(x_velocity - true_x) < 10 and abs(x_none - true_x) < 10, (x_velocity, x_none, true_x)  # both follow


def test_a_held_lost_target_forgets_its_velocity(cube_frames_dir) -> None:
    """lost_hold: a LOST target's box is held (it does not move this frame); its velocity is reset all the
    same, so the search after it recovers does not jump ahead by the motion it had before it was lost."""
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    frame = cv2.imread(str(ImageFolderSource(cube_frames_dir).files[0]))
    cfg = Config()
    cfg.runtime.device = "cpu"
    cfg = dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, motion="velocity", lost_hold=True,
                                                                mask_enabled=False))
    tracker = build_tracker(cfg, path)
    tid = tracker.add_target(frame, (315.0, 205.0, 129.0, 145.0))
    target = tracker._targets[tid]
    target.state, target.velocity = TrackState.LOST, np.array([30.0, 0.0])
    center = target.center.copy()
    tracker.track(np.full_like(frame, 127))  # nothing to find: stays LOST, held
    assert target.state == TrackState.LOST
    np.testing.assert_array_equal(target.center, center)
    np.testing.assert_array_equal(target.velocity, [0.0, 0.0])
