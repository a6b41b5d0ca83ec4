"""Mask refinements (tracker.mask_refine, cyclesiam/tracking/mask_refine/) on real annotated frames
of the real validation set, on bad inputs, and through the config."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest

from cyclesiam.config import Config, ConfigError, TrackerConfig, fields_of, validate
from cyclesiam.mask import box_polygon
from cyclesiam.tracking.mask_refine import MASK_REFINERS, RefineInput, mask_refiner
from cyclesiam.tracking.masks import refined_mask

REPO = Path(__file__).resolve().parents[2]
REAL = REPO / "annotations" / "real"


def _jaccard(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a > 0, b > 0
    return float((a & b).sum() / max((a | b).sum(), 1))


def _real_keyframe(clip: str, index: int):
    """(frame BGR, gt mask bool, gt box) of a mask keyframe of the real set (footage from data/)."""
    from cyclesiam_train.eval.datasets import DatasetError, load_real

    try:
        (seq,) = load_real(REAL / clip)
    except DatasetError as exc:
        pytest.fail(f"real footage missing: {exc} (scripts/fetch_data.sh fetches it)")
    for i, frame in seq.iter_frames():
        if i == index:
            return frame, seq.mask(i) > 0, tuple(float(v) for v in seq.boxes[i])
    raise AssertionError(f"{clip} has no frame {index}")


def _ellipse_prediction(box, shape, spill: float) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    """What the ellipse-seeded mask head gives: a soft ellipse on the box, `spill` times its size,
    on a window twice the box (clipped to the image) -> (ROI probabilities, ROI)."""
    x, y, w, h = box
    cx, cy = x + w / 2, y + h / 2
    r0, r1 = max(int(cy - h), 0), min(int(cy + h), shape[0])
    c0, c1 = max(int(cx - w), 0), min(int(cx + w), shape[1])
    prob = np.zeros((r1 - r0, c1 - c0), np.float32)
    cv2.ellipse(prob, (int(cx - c0), int(cy - r0)), (int(w * spill / 2), int(h * spill / 2)), 0, 0, 360, 1.0, -1)
    return cv2.GaussianBlur(prob, (0, 0), max(w, h) / 20), (r0, r1, c0, c1)


# the clips and keyframes: a non-elliptical target on each (vent, tower, sheet)
@pytest.mark.parametrize("clip, index", [("bikes", 10), ("city", 60), ("visp_line", 10)])
def test_colour_raises_j_over_an_ellipse_mask_on_a_real_annotated_frame(clip, index) -> None:
    frame, gt, box = _real_keyframe(clip, index)
    prob, roi = _ellipse_prediction(box, frame.shape, spill=1.1)
    raw = refined_mask(MASK_REFINERS["none"](), frame, prob, roi, box, 0.5)
    colour = refined_mask(MASK_REFINERS["colour"](), frame, prob, roi, box, 0.5)
    assert not colour.empty
    j_raw, j_colour = _jaccard(raw.mask, gt), _jaccard(colour.mask, gt)
    assert j_colour > j_raw + 0.02, (j_raw, j_colour)


def _grey_frame() -> np.ndarray:
    return np.full((120, 160, 3), 128, np.uint8)


@pytest.mark.parametrize("name", sorted(MASK_REFINERS))
def test_an_empty_network_mask_gives_an_empty_result_with_the_box_as_polygon(name) -> None:
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)
    box = (50.0, 40.0, 30.0, 20.0)
    res = refined_mask(MASK_REFINERS[name](), frame, np.zeros((60, 80), np.float32), (20, 80, 30, 110), box, 0.5)
    assert res.empty and res.mask.shape == (120, 160) and not res.mask.any()
    np.testing.assert_allclose(res.polygon, box_polygon(box))


@pytest.mark.parametrize("name", sorted(MASK_REFINERS))
def test_a_box_running_past_the_image_border_keeps_the_mask_inside_the_image(name) -> None:
    frame = np.zeros((120, 160, 3), np.uint8)
    cv2.circle(frame, (5, 60), 25, (40, 200, 90), -1)  # a target cut by the left border
    box = (-20.0, 35.0, 50.0, 50.0)
    prob = np.zeros((90, 60), np.float32)
    cv2.circle(prob, (5, 45), 28, 1.0, -1)
    res = refined_mask(MASK_REFINERS[name](), frame, prob, (15, 105, 0, 60), box, 0.5)
    assert res.mask.shape == (120, 160) and res.mask.dtype == np.uint8
    assert not res.empty and res.mask[60, 2] == 255 and not res.mask[:, 60:].any()
    assert set(np.unique(res.mask)) <= {0, 255}


@pytest.mark.parametrize("name", sorted(MASK_REFINERS))
def test_a_flat_grey_image_leaves_the_network_mask_usable(name) -> None:
    prob = np.zeros((60, 80), np.float32)
    prob[20:40, 25:55] = 0.9
    box = (55.0, 40.0, 30.0, 20.0)
    res = refined_mask(MASK_REFINERS[name](), _grey_frame(), prob, (20, 80, 30, 110), box, 0.5)
    assert not res.empty
    # no colour tells target from background: the result stays near the network mask
    assert 0.5 <= _jaccard(res.mask[20:80, 30:110], prob > 0.5) <= 1.0


@pytest.mark.parametrize("name", sorted(MASK_REFINERS))
def test_a_one_pixel_roi_and_an_empty_roi_do_not_fail(name) -> None:
    frame = _grey_frame()
    box = (10.0, 10.0, 1.0, 1.0)
    one = refined_mask(MASK_REFINERS[name](), frame, np.ones((1, 1), np.float32), (10, 11, 10, 11), box, 0.5)
    assert one.mask.sum() == 255
    none = refined_mask(MASK_REFINERS[name](), frame, np.zeros((0, 0), np.float32), (0, 0, 0, 0), box, 0.5)
    assert none.empty and not none.mask.any()


def test_the_config_offers_exactly_the_registered_refinements_and_refuses_others() -> None:
    info = {f.name: f for f in fields_of(TrackerConfig)}["mask_refine"]
    assert set(info.choices) == set(MASK_REFINERS)
    assert info.description and not info.restart
    with pytest.raises(ConfigError, match="tracker.mask_refine"):
        validate(dataclasses.replace(Config(), tracker=dataclasses.replace(TrackerConfig(), mask_refine="snake")))
    with pytest.raises(ValueError, match="mask_refine"):
        validate(dataclasses.replace(TrackerConfig(), mask_refine="snake"))
    for name in MASK_REFINERS:
        assert type(mask_refiner(dataclasses.replace(TrackerConfig(), mask_refine=name))) is MASK_REFINERS[name]


def test_refine_input_gives_the_roi_view_and_the_raw_mask() -> None:
    frame = np.arange(120 * 160 * 3, dtype=np.uint32).reshape(120, 160, 3).astype(np.uint8)
    prob = np.full((10, 20), 0.4, np.float32)
    prob[2:5, 3:9] = 0.7
    inp = RefineInput(frame, prob, (30, 40, 50, 70), (55.0, 31.0, 5.0, 3.0), 0.5)
    assert inp.image.shape == (10, 20, 3) and np.shares_memory(inp.image, frame)
    assert (inp.raw() == np.where(prob > 0.5, 255, 0)).all()


def test_colour_masks_of_the_shipped_model_beat_its_raw_masks_and_its_own_box_on_a_real_clip() -> None:
    """visp_line (a white sheet sliding out of the frame, every frame mask-annotated), 8 frames, the
    shipped model at its defaults except mask_refine: the refined masks' mean J beats the raw masks'
    and the tracker's own box filled in (on the whole val set: docs/MODEL.md)."""
    from cyclesiam.build import build_tracker
    from cyclesiam.default_model import default_checkpoint
    from cyclesiam_train.eval.datasets import load_real
    from cyclesiam_train.eval.metrics import box_to_mask

    checkpoint = default_checkpoint()
    assert checkpoint is not None, "the shipped model is missing"
    (seq,) = load_real(REAL / "visp_line")
    frames = [frame for i, frame in seq.iter_frames() if i <= 8]
    j: dict[str, list[float]] = {"none": [], "colour": [], "box": []}
    for name in ("none", "colour"):
        cfg = Config()
        cfg.runtime.device, cfg.runtime.backend, cfg.tracker.mask_refine = "cpu", "torch", name
        tracker = build_tracker(cfg, checkpoint)
        tracker.add_target(frames[0], tuple(float(v) for v in seq.boxes[0]))
        for i, frame in enumerate(frames[1:], start=1):
            (result,) = tracker.track(frame)
            gt = seq.mask(i) > 0
            j[name].append(_jaccard(result.mask, gt))
            if name == "none":
                j["box"].append(_jaccard(box_to_mask(result.bbox, gt.shape), gt))
    mean = {k: float(np.mean(v)) for k, v in j.items()}
    assert mean["colour"] > mean["none"] + 0.05 and mean["colour"] > mean["box"] + 0.05, mean
