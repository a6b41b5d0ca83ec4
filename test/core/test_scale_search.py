"""Scale search (tracker.scale_steps): unit behaviour, and the shipped model following a real zoom."""

from __future__ import annotations

import dataclasses
import re

import cv2
import numpy as np
import pytest

from cyclesiam.config import Config, TrackerConfig
from cyclesiam.default_model import default_checkpoint
from cyclesiam.sources import ImageFolderSource
from cyclesiam.tracker import PostResult, build_tracker, check_tracker_config, pick_scales, scale_factors

IMAGE = (480, 640)


def test_scale_factors() -> None:
    assert scale_factors(TrackerConfig(scale_steps=1)).tolist() == [1.0]
    assert np.allclose(scale_factors(TrackerConfig(scale_steps=3, scale_step=1.1)), [1 / 1.1, 1.0, 1.1])


@pytest.mark.parametrize("field, value, message", [
    ("scale_steps", 2, "odd"), ("scale_steps", 0, "odd"), ("scale_step", 1.0, "> 1"), ("scale_penalty", 0.0, "(0, 1]"),
    ("scale_penalty", 1.5, "(0, 1]"),
])
def test_bad_scale_search_settings_are_refused(field: str, value: float, message: str) -> None:
    cfg = dataclasses.replace(TrackerConfig(), **{field: value})
    with pytest.raises(ValueError, match=re.escape(message)):
        check_tracker_config(cfg)


def _post(best_pscores: list[float]) -> PostResult:
    n = len(best_pscores)
    return PostResult(best=np.zeros(n, int), score=np.full(n, 0.9), center=np.arange(2 * n, dtype=float).reshape(n, 2),
                      size=np.full((n, 2), -1.0), penalty=np.ones(n), pscore=np.array(best_pscores)[:, None],
                      lr=np.full(n, 0.5))


def test_pick_scales_keeps_the_best_scoring_scale_and_smooths_the_size() -> None:
    cfg = TrackerConfig(scale_steps=3, scale_step=1.1, scale_penalty=0.95)
    factors = scale_factors(cfg)
    sizes = np.array([[100.0, 50.0], [80.0, 80.0], [60.0, 40.0]])
    # target 0: larger scale clearly best; target 1: larger scale better but not by the penalty; target 2: smaller
    post = _post([0.5, 0.6, 0.9,   0.5, 0.8, 0.82,   0.9, 0.7, 0.6])
    chosen, picked = pick_scales(post, factors, sizes, cfg, IMAGE)
    assert chosen.tolist() == [2, 4, 6]
    assert np.allclose(picked.center, post.center[[2, 4, 6]])
    expected = sizes * (1 - 0.5) + sizes * np.array([1.1, 1.0, 1 / 1.1])[:, None] * 0.5
    assert np.allclose(picked.size, expected)


def _zoom_sequence(frame: np.ndarray, box: tuple[float, float, float, float], frames: int, rate: float):
    """Real frame seen through a window shrinking by `rate` per frame around the box centre
    (a camera moving towards the target): frames resized back to full size, true boxes."""
    h, w = frame.shape[:2]
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    images, boxes = [], []
    for i in range(frames):
        s = (1 - rate) ** i
        m = np.float32([[1 / s, 0, cx - cx / s], [0, 1 / s, cy - cy / s]])
        images.append(cv2.warpAffine(frame, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT))
        boxes.append((cx - box[2] / s / 2, cy - box[3] / s / 2, box[2] / s, box[3] / s))
    return images, boxes


def _final_size_ratio(checkpoint, scale_steps: int, images, boxes) -> float:
    cfg = Config()
    cfg.runtime.device = "cpu"
    cfg = dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, scale_steps=scale_steps,
                                                                mask_enabled=False))
    tracker = build_tracker(cfg, checkpoint)
    tracker.add_target(images[0], boxes[0])
    for image in images[1:]:
        (result,) = tracker.track(image)
    return float(np.sqrt(result.bbox[2] * result.bbox[3] / (boxes[-1][2] * boxes[-1][3])))


@pytest.mark.parametrize("rate", [0.01, -0.015])  # towards the target (x1.27 over 25 frames), away (x0.70)
def test_shipped_model_follows_a_zoom_better_with_scale_search(cube_frames_dir, rate: float) -> None:
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    frame = cv2.imread(str(ImageFolderSource(cube_frames_dir).files[0]))
    images, boxes = _zoom_sequence(frame, (315.0, 205.0, 129.0, 145.0), frames=25, rate=rate)
    assert abs(np.log(boxes[-1][2] / boxes[0][2])) > 0.2  # the target really changes size
    with_search = _final_size_ratio(path, 3, images, boxes)
    without = _final_size_ratio(path, 1, images, boxes)  # size from the (scale-blind) regression
    assert 0.8 < with_search < 1.25, with_search
    assert abs(np.log(with_search)) < abs(np.log(without)) - 0.1, (with_search, without)
