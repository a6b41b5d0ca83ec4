"""tracker.template_bank: the rotated crops, the per-target choice of kernel rows, the settings, and the
shipped model keeping a turned target next to an upright copy of it."""

from __future__ import annotations

import dataclasses
import re

import cv2
import numpy as np
import pytest
import torch

from cyclesiam.build import build_tracker
from cyclesiam.config import Config, TrackerConfig, validate
from cyclesiam.default_model import default_checkpoint
from cyclesiam.sources import ImageFolderSource
from cyclesiam.tracking.target import Target
from cyclesiam.tracking.template_bank import best_kernel_rows, own_kernel_scores, rotate_crop, template_bank
from shipped_tracking import final_center


def test_rotate_crop_turns_a_bar_about_the_centre() -> None:
    crop = torch.zeros(3, 127, 127)
    crop[:, 60:67, 20:107] = 255.0  # a horizontal bar through the centre
    turned = rotate_crop(crop, 90.0)
    assert turned.shape == crop.shape and turned.dtype == crop.dtype
    assert turned[:, 20:107, 60:67].mean() > 200 and turned[:, 60:67, 20:50].mean() < 30  # now vertical
    assert torch.allclose(rotate_crop(crop, 0.0), crop, atol=1e-3)
    back = rotate_crop(rotate_crop(crop, 60.0), -60.0)
    assert (back[:, 62:65, 30:97] > 200).all()  # the bar's core survives a turn there and back


def test_best_kernel_rows_picks_each_targets_best_kernel() -> None:
    # target 0: 3 kernels x 2 scales; target 1: 1 kernel (no template crop); target 2: 3 kernels, a tie
    scores = np.array([0.2, 0.3, 0.9, 0.1, 0.4, 0.5,  # best 0.9 at kernel 1
                       0.7, 0.6,
                       0.8, 0.1, 0.8, 0.2, np.nan, np.nan])  # kernels 0 and 1 tie: the own kernel (0) wins
    rows = best_kernel_rows(scores, [3, 1, 3], n_scales=2)
    assert rows.tolist() == [2, 3, 6, 7, 8, 9]


@pytest.mark.parametrize("field, value, message", [
    ("template_bank", "mirror", "template_bank"), ("template_bank_angle", 0.0, "template_bank_angle"),
    ("template_bank_angle", 180.0, "template_bank_angle"),
])
def test_bad_template_bank_settings_are_refused(field: str, value, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        validate(dataclasses.replace(TrackerConfig(), **{field: value}))


def _turned_target_scene(frame: np.ndarray, box: tuple[int, int, int, int], shift: int) -> list[np.ndarray]:
    """A bar-like target cut from a real frame on a plain background, an upright copy `shift` px to
    its right; from the 4th frame on the target itself is turned by 90 degrees (the copy is not)."""
    x, y, w, h = box
    patch = frame[y:y + h, x:x + w]
    background = np.full_like(frame, int(np.median(frame)))
    rng = np.random.default_rng(0)

    def scene(turned: bool) -> np.ndarray:
        image = background.copy()
        cx, cy = x + w // 2, y + h // 2
        target = np.rot90(patch) if turned else patch
        th, tw = target.shape[:2]
        image[cy - th // 2:cy - th // 2 + th, cx - tw // 2:cx - tw // 2 + tw] = target
        image[y:y + h, x + shift:x + shift + w] = patch
        return np.clip(image.astype(np.int16) + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)

    return [scene(False) for _ in range(4)] + [scene(True) for _ in range(6)]


def test_shipped_model_keeps_a_turned_target_next_to_an_upright_copy(cube_frames_dir) -> None:
    """The zebrafish failure in small: one kernel scores the upright copy above the turned target and
    the track jumps to it; the rotations bank (90 degrees, the turn here) keeps it on the target."""
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    frame = cv2.imread(str(ImageFolderSource(cube_frames_dir).files[0]))
    box, shift = (300, 230, 150, 50), 150
    images = _turned_target_scene(frame, box, shift)
    target, copy = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2]), np.array([box[0] + shift + box[2] / 2,
                                                                                   box[1] + box[3] / 2])
    base = dataclasses.replace(Config().tracker, template_bank="none", mask_enabled=False)
    one = final_center(images, box, base)
    bank = final_center(images, box, dataclasses.replace(base, template_bank="rotations", template_bank_angle=90.0))
    assert np.hypot(*(one - copy)) < 30, (one, copy)  # the failure the bank is for really happens
    assert np.hypot(*(bank - target)) < 30, (bank, target)


def test_bank_is_built_once_and_rebuilt_after_a_network_swap(cube_frames_dir) -> None:
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    frames = [cv2.imread(str(f)) for f in ImageFolderSource(cube_frames_dir).files[:3]]
    cfg = Config()
    cfg.runtime.device = "cpu"
    cfg.tracker = dataclasses.replace(cfg.tracker, template_bank="rotations", mask_enabled=False)
    tracker = build_tracker(cfg, path)
    tid = tracker.add_target(frames[0], (315, 205, 129, 145))
    tracker.track(frames[1])
    target = tracker._targets[tid]
    first = target.bank
    assert first is not None and first.shape == (2, *target.zf.shape) and target.bank_angles == (60.0, -60.0)
    assert not torch.allclose(first[0], target.zf) and not torch.allclose(first[0], first[1])
    tracker.track(frames[2])
    assert target.bank is first  # embedded once, not every frame
    tracker.replace_network(tracker.backend, tracker.model_cfg, {tid: target.zf})
    assert target.bank is None  # kernels of the old network are dropped ...
    tracker.track(frames[2])
    assert target.bank is not None and torch.allclose(target.bank, first, atol=1e-4)  # ... and re-embedded


# ----------------------------------------------------------------- rotations_on_drop: the gated bank

def _gated(trigger: float = 0.5, hold: int = 2) -> TrackerConfig:
    return dataclasses.replace(TrackerConfig(), template_bank="rotations_on_drop", template_bank_trigger=trigger,
                               template_bank_hold=hold)


def test_gate_opens_on_a_low_upright_score_and_holds() -> None:
    torch.manual_seed(0)
    target = Target(id="1", center=np.zeros(2), size=np.ones(2), zf=torch.randn(8, 5, 5),
                    reference=torch.randn(8, 5, 5), template_crop=torch.rand(3, 31, 31) * 255)
    embedded: list[int] = []

    def embed(crops: torch.Tensor) -> torch.Tensor:
        embedded.append(len(crops))
        return torch.randn(len(crops), 8, 5, 5)

    bank = template_bank(_gated(trigger=0.5, hold=2))
    counts = []
    for upright in (0.9, 0.3, 0.9, 0.9, 0.9, 0.2, 0.9, 0.5):
        target.upright_score = upright  # what the previous frame's search left
        kernels = bank.kernels(target, embed)
        assert kernels[0] is target.zf
        counts.append(len(kernels))
    # low at 0.3 -> that frame and 2 more; 0.5 is not below the trigger
    assert counts == [1, 3, 3, 3, 1, 3, 3, 3]
    assert embedded == [2]  # the turned kernels are embedded once, at the first trigger


def test_own_kernel_scores_read_each_targets_first_kernel() -> None:
    raw = np.array([0.2, 0.3, 0.9, 0.1, 0.4, 0.5,  # target 0: kernels x 2 scales, own best 0.3
                    0.7, 0.6,  # target 1: one kernel
                    0.8, 0.1, 0.95, 0.2, 0.0, 0.0])  # target 2: own best 0.8 (0.95 is a turned kernel's)
    assert own_kernel_scores(raw, [3, 1, 3], n_scales=2).tolist() == [0.3, 0.7, 0.8]


@pytest.mark.parametrize("field, value", [("template_bank_trigger", -0.1), ("template_bank_trigger", 1.1),
                                          ("template_bank_hold", -1), ("template_bank_hold", 10001)])
def test_bad_gate_settings_are_refused(field: str, value) -> None:
    with pytest.raises(ValueError, match=re.escape(field)):
        validate(dataclasses.replace(_gated(), **{field: value}))


def _shipped_track(frames: list[np.ndarray], box, tracker_cfg: TrackerConfig, force_low: bool = False):
    """The shipped model on `frames` from `box`: per frame (bbox, score, upright_score, bank searched)."""
    cfg = Config()
    cfg.runtime.device = "cpu"
    tracker = build_tracker(dataclasses.replace(cfg, tracker=tracker_cfg), default_checkpoint())
    tid = tracker.add_target(frames[0], box)
    target = tracker._targets[tid]
    if force_low:
        target.upright_score = 0.0
    out = []
    for frame in frames[1:]:
        (result,) = tracker.track(frame)
        out.append((result.bbox, result.score, target.upright_score, target.bank is not None))
    return out


def test_gated_bank_untriggered_is_exactly_none(cube_frames_dir) -> None:
    """Below every upright score of the clip the gate never opens: the very same boxes and scores as
    "none", and the turned kernels are never even embedded."""
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    frames = [cv2.imread(str(f)) for f in ImageFolderSource(cube_frames_dir).files[:8]]
    box = (315, 205, 129, 145)
    base = dataclasses.replace(Config().tracker, template_bank="none", mask_enabled=False)
    none = _shipped_track(frames, box, base)
    lowest = min(upright for _, _, upright, _ in none)
    assert all(score == upright for _, score, upright, _ in none)  # one kernel: its score is the upright one
    gated = _shipped_track(frames, box, dataclasses.replace(base, template_bank="rotations_on_drop",
                                                            template_bank_trigger=lowest - 1e-3))
    assert [(b, s) for b, s, _, _ in gated] == [(b, s) for b, s, _, _ in none]
    assert not any(embedded for *_, embedded in gated)


def test_gated_bank_triggered_and_held_is_the_rotations_bank(cube_frames_dir) -> None:
    """Triggered before the first frame and held for the whole clip, the gate searches every turned
    kernel every frame: the same boxes as "rotations"."""
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    frames = [cv2.imread(str(f)) for f in ImageFolderSource(cube_frames_dir).files[:6]]
    box = (315, 205, 129, 145)
    base = dataclasses.replace(Config().tracker, template_bank="none", mask_enabled=False, template_bank_angle=30.0)
    rotations = _shipped_track(frames, box, dataclasses.replace(base, template_bank="rotations"))
    gated = _shipped_track(frames, box, dataclasses.replace(base, template_bank="rotations_on_drop",
                                                            template_bank_trigger=0.01, template_bank_hold=100),
                           force_low=True)
    assert all(embedded for *_, embedded in gated)
    np.testing.assert_allclose([b for b, *_ in gated], [b for b, *_ in rotations], atol=1e-6)


def _turning_target_scene(frame: np.ndarray, box: tuple[int, int, int, int], shift: int,
                          angles: list[float]) -> list[np.ndarray]:
    """As _turned_target_scene, but the target turns gradually: one frame per angle (degrees), the
    upright copy `shift` px to its right stays as it is."""
    x, y, w, h = box
    patch = frame[y:y + h, x:x + w]
    background = np.full_like(frame, int(np.median(frame)))
    side = int(np.ceil(np.hypot(w, h))) | 1
    canvas, alpha = np.zeros((side, side) + patch.shape[2:], patch.dtype), np.zeros((side, side), np.float32)
    oy, ox = (side - h) // 2, (side - w) // 2
    canvas[oy:oy + h, ox:ox + w], alpha[oy:oy + h, ox:ox + w] = patch, 1.0
    rng = np.random.default_rng(0)

    def scene(angle: float) -> np.ndarray:
        matrix = cv2.getRotationMatrix2D(((side - 1) / 2, (side - 1) / 2), angle, 1.0)
        turned = cv2.warpAffine(canvas, matrix, (side, side), flags=cv2.INTER_LINEAR)
        a = cv2.warpAffine(alpha, matrix, (side, side), flags=cv2.INTER_LINEAR)[..., None]
        image = background.copy().astype(np.float32)
        top, left = y + h // 2 - side // 2, x + w // 2 - side // 2
        region = image[top:top + side, left:left + side]
        image[top:top + side, left:left + side] = a * turned + (1 - a) * region
        image[y:y + h, x + shift:x + shift + w] = patch
        return np.clip(image + rng.integers(-3, 4, image.shape), 0, 255).astype(np.uint8)

    return [scene(a) for a in angles]


def test_shipped_model_gated_bank_keeps_a_turning_target(cube_frames_dir) -> None:
    """The turned-target scene above, turning 30 degrees a frame, the gate at trigger 0.8: shut while the
    target is upright; the upright score drops as it turns, the gate opens, and the track stays on the
    target where one kernel goes to the copy. (A 90-degree turn within ONE frame, the scene above, is
    beyond the gate: the copy wins that frame at a high upright score.)"""
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    frame = cv2.imread(str(ImageFolderSource(cube_frames_dir).files[0]))
    box, shift = (300, 230, 150, 50), 160
    images = _turning_target_scene(frame, box, shift, [0.0] * 4 + [30.0, 60.0] + [90.0] * 6)
    target = np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])
    base = dataclasses.replace(Config().tracker, template_bank="none", mask_enabled=False, template_bank_angle=60.0)
    one = _shipped_track(images, box, base)
    # 0.8, not the shipped 0.6: on this scene the 30-degree frame scores 0.69 upright and the copy wins at 60
    gated = _shipped_track(images, box, dataclasses.replace(base, template_bank="rotations_on_drop",
                                                            template_bank_trigger=0.8))
    assert not any(embedded for *_, embedded in gated[:3])  # upright frames: the gate stays shut
    assert gated[-1][3]  # it opened during the turn (the signal is the previous frame's upright score)
    assert _distance(one[-1][0], target) > 100  # one kernel goes to the copy (the failure really happens)
    assert _distance(gated[-1][0], target) < 30


def _distance(bbox, point: np.ndarray) -> float:
    x, y, w, h = bbox
    return float(np.hypot(x + w / 2 - point[0], y + h / 2 - point[1]))


def test_gated_bank_in_a_batch_only_the_triggered_target_searches_turned(cube_frames_dir) -> None:
    """The turning-target scene with two targets in one batched search: the turning one gated open from
    the start, its upright copy shut. The open one tracks as under "rotations" (which keeps it where
    "none" loses it), the shut one as under "none", its turned kernels never embedded (each against
    itself alone; batching moves boxes by float noise only)."""
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    frame = cv2.imread(str(ImageFolderSource(cube_frames_dir).files[0]))
    turning, shift = (300, 230, 150, 50), 160
    copy = (turning[0] + shift, *turning[1:])
    images = _turning_target_scene(frame, turning, shift, [0.0] * 4 + [30.0, 60.0] + [90.0] * 3)
    base = dataclasses.replace(Config().tracker, template_bank="none", mask_enabled=False, template_bank_angle=60.0)
    cfg = Config()
    cfg.runtime.device = "cpu"
    gated_cfg = dataclasses.replace(base, template_bank="rotations_on_drop", template_bank_trigger=0.01,
                                    template_bank_hold=100)
    tracker = build_tracker(dataclasses.replace(cfg, tracker=gated_cfg), path)
    opened, shut = (tracker.add_target(images[0], box) for box in (turning, copy))
    tracker._targets[opened].upright_score = 0.0
    joint = [tracker.track(image) for image in images[1:]]
    assert tracker._targets[opened].bank is not None and tracker._targets[shut].bank is None
    rotations = _shipped_track(images, turning, dataclasses.replace(base, template_bank="rotations"))
    one = _shipped_track(images, turning, base)
    assert _distance(rotations[-1][0], _center(one[-1][0])) > 100  # the reference really differs
    np.testing.assert_allclose([r[0].bbox for r in joint], [b for b, *_ in rotations], atol=1e-3)
    np.testing.assert_allclose([r[1].bbox for r in joint], [b for b, *_ in _shipped_track(images, copy, base)],
                               atol=1e-3)


def _center(bbox) -> np.ndarray:
    x, y, w, h = bbox
    return np.array([x + w / 2, y + h / 2])
