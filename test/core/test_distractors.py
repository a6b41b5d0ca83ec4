"""Distractor memory (tracker.distractor_*): peak finding, damping, and the shipped model not
jumping to a copy of the target while the target is hidden."""

from __future__ import annotations

import dataclasses
import re

import cv2
import numpy as np
import pytest

from cyclesiam.anchors import generate_anchors
from cyclesiam.config import AnchorConfig, Config, TrackerConfig
from cyclesiam.default_model import default_checkpoint
from cyclesiam.distractors import distractor_factors, find_distractors, local_peaks
from cyclesiam.sources import ImageFolderSource
from cyclesiam.config import validate
from shipped_tracking import final_center

R = 25


def test_local_peaks_are_strict_enough() -> None:
    score_map = np.zeros((R, R))
    score_map[5, 5], score_map[5, 6] = 0.9, 0.8  # one peak with a shoulder
    score_map[20, 3] = 0.6
    score_map[12, 12] = 0.2  # below min_score
    score_map[0, 24] = np.nan
    rows, cols = local_peaks(score_map, min_score=0.5)
    assert sorted(zip(rows.tolist(), cols.tolist())) == [(5, 5), (20, 3)]


def test_find_distractors_returns_far_peaks_in_image_pixels() -> None:
    anchors = generate_anchors(AnchorConfig(), R)  # k R R rows, centres on the stride grid around 0
    k = len(anchors) // (R * R)
    maps = np.zeros((k, R, R))
    maps[2, 12, 12] = 0.95  # the target, at the crop centre
    maps[0, 12, 20] = 0.90  # 8 cells to the right
    maps[1, 3, 12] = 0.40  # too weak
    crop_center, scale_z = np.array([300.0, 200.0]), 0.5
    stride = anchors[1, 0] - anchors[0, 0]
    found = find_distractors(maps.reshape(-1), anchors, R, crop_center, scale_z, new_center=crop_center,
                             target_size=40.0, min_score=0.5, min_distance=0.75)
    assert np.allclose(found, [[300.0 + 8 * stride / scale_z, 200.0]])
    near_only = find_distractors(maps.reshape(-1), anchors, R, crop_center, scale_z, new_center=crop_center,
                                 target_size=1000.0, min_score=0.5, min_distance=0.75)
    assert near_only.shape == (0, 2)


def test_distractor_factors_damp_only_candidates_near_a_remembered_peak() -> None:
    anchors = generate_anchors(AnchorConfig(), R)
    centers, scale_z = np.array([[300.0, 200.0], [50.0, 50.0]]), np.array([0.5, 1.0])
    points = [np.array([[340.0, 200.0]]), np.empty((0, 2))]
    factors = distractor_factors(anchors, R, centers, scale_z, points, radii=np.array([10.0, 10.0]), penalty=0.4)
    positions = centers[0] + anchors[:, :2] / scale_z[0]
    near = np.hypot(*(positions - points[0][0]).T) <= 10.0
    assert near.any() and (~near).any()
    assert np.allclose(factors[0][near], 0.6) and np.allclose(factors[0][~near], 1.0)
    assert np.allclose(factors[1], 1.0)  # nothing remembered for the second row


@pytest.mark.parametrize("field, value, message", [
    ("distractor_penalty", -0.1, "[0, 1]"), ("distractor_penalty", 1.5, "[0, 1]"), ("distractor_score", 2.0, "[0, 1]"),
    ("distractor_distance", 0.0, "distractor_distance"), ("distractor_radius", -1.0, "distractor_radius"),
])
def test_bad_distractor_settings_are_refused(field: str, value: float, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        validate(dataclasses.replace(TrackerConfig(), **{field: value}))


def _hidden_target_scene(frame: np.ndarray, box: tuple[int, int, int, int], shift: int) -> list[np.ndarray]:
    """The target, a copy of it `shift` pixels to the right; then the target painted out (inpainted)
    for 6 frames; then back. Small noise per frame so no two frames are identical."""
    x, y, w, h = box
    scene = frame.copy()
    scene[y:y + h, x + shift:x + shift + w] = frame[y:y + h, x:x + w]
    hole = np.zeros(scene.shape[:2], np.uint8)
    hole[y - 10:y + h + 10, x - 10:x + w + 10] = 255
    hidden = cv2.inpaint(scene, hole, 5, cv2.INPAINT_TELEA)
    rng = np.random.default_rng(0)

    def noisy(image: np.ndarray) -> np.ndarray:
        return np.clip(image.astype(np.int16) + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)

    return [noisy(scene) for _ in range(6)] + [noisy(hidden) for _ in range(6)] + [noisy(scene) for _ in range(4)]


def test_shipped_model_does_not_jump_to_a_copy_while_the_target_is_hidden(cube_frames_dir) -> None:
    """A weak motion prior (window_influence 0.2, the default 0.3's) lets the track jump to a copy 1.4
    target sizes away once the target is painted out; remembering the copy as a distractor keeps it
    where the target was, and on the target when it comes back. Model-dependent: with the default
    model since 2026-12-03 (pool recipe + 250 steps) at 0.15 the copy 180 px away wins even with the
    memory (at 160 px the memory holds at 0.15 and 0.2); with the previous model the track did not jump
    at 0.2 and the memory held at 0.15 (docs/MODEL.md, "the longer pool recipe"). The scene is set at
    the training crops' context_amount 0.5 and the five-scale search at 1.05 (the default until
    2026-12-03): at today's 3 x 1.10 the track does not jump in this scene (x 386 against the target's
    380 without the memory), so there would be no failure for the memory to prevent."""
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    frame = cv2.imread(str(ImageFolderSource(cube_frames_dir).files[0]))
    box, shift = (315, 205, 129, 145), 180
    images = _hidden_target_scene(frame, box, shift)
    target_x, copy_x = box[0] + box[2] / 2, box[0] + shift + box[2] / 2
    base = dataclasses.replace(Config().tracker, window_influence=0.2, mask_enabled=False, context_amount=0.5,
                               scale_steps=5, scale_step=1.05)
    penalty = Config().tracker.distractor_penalty or 0.5
    without = final_center(images, box, dataclasses.replace(base, distractor_penalty=0.0))[0]
    with_memory = final_center(images, box, dataclasses.replace(base, distractor_penalty=penalty))[0]
    assert abs(without - copy_x) < 30, (without, copy_x)  # the failure the memory is for really happens
    assert abs(with_memory - target_x) < 30, (with_memory, target_x)
