"""tracker.box_in_image: the box cut to the image (report / state), on real frames with the shipped model."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from cyclesiam.build import build_tracker
from cyclesiam.config import Config, ConfigError, load_config
from cyclesiam.sources import open_source
from cyclesiam.tracking.image_bounds import inside

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "models" / "cyclesiam_default.safetensors"
SHAPE = (256, 365)  # visp_line: a white sheet filling the frame, sliding out to the bottom-left
FIRST_BOX = (0.0, 0.0, 320.0, 256.0)  # annotations/real/visp_line row 0


def test_inside_cuts_the_part_outside_and_keeps_the_rest() -> None:
    center, size = inside(np.array([10.0, 100.0]), np.array([60.0, 40.0]), SHAPE, 4.0)
    np.testing.assert_allclose(center - size / 2, [0.0, 80.0])
    np.testing.assert_allclose(size, [40.0, 40.0])
    center, size = inside(np.array([100.0, 100.0]), np.array([60.0, 40.0]), SHAPE, 4.0)
    np.testing.assert_allclose(center, [100.0, 100.0])
    np.testing.assert_allclose(size, [60.0, 40.0])
    # a box wholly outside becomes a min_size box on the border, inside the image
    center, size = inside(np.array([-50.0, 100.0]), np.array([20.0, 20.0]), SHAPE, 4.0)
    np.testing.assert_allclose(size, [4.0, 20.0])
    np.testing.assert_allclose(center[0] - size[0] / 2, 0.0)


def test_unknown_value_is_refused() -> None:
    with pytest.raises(ConfigError, match="box_in_image"):
        load_config(None, {"tracker": {"box_in_image": "clip"}})


def track(mode: str, frames: list[np.ndarray]) -> tuple[list[tuple[float, ...]], list[tuple[float, ...]]]:
    """Reported boxes and the tracker's own state boxes over `frames` (the first initialises)."""
    cfg = Config()
    cfg.runtime.device, cfg.runtime.backend = "cpu", "torch"
    cfg = dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, mask_enabled=False, box_in_image=mode))
    tracker = build_tracker(cfg, checkpoint=SHIPPED)
    tid = tracker.add_target(frames[0], FIRST_BOX)
    reported, state = [], []
    for frame in frames[1:]:
        (r,) = tracker.track(frame)
        reported.append(r.bbox)
        state.append(tracker.result(tid).bbox)
    return reported, state


def is_inside(box: tuple[float, ...]) -> bool:
    x, y, w, h = box
    return x >= -1e-6 and y >= -1e-6 and x + w <= SHAPE[1] + 1e-6 and y + h <= SHAPE[0] + 1e-6 and w > 0 and h > 0


@pytest.fixture(scope="module")
def line_frames(data_dir) -> list[np.ndarray]:
    source = open_source(str(data_dir / "visp_line"))
    frames = [source.frame(i) for i in range(6)]
    assert frames[0].shape[:2] == SHAPE
    return frames


def test_report_cuts_the_reported_box_and_state_cuts_the_track(line_frames) -> None:
    none_reported, none_state = track("none", line_frames)
    assert not all(is_inside(b) for b in none_reported), "the precondition: the plain track hangs over the border"
    assert none_reported == none_state

    reported, state = track("report", line_frames)
    assert state == none_state, "report leaves the track alone"
    for box, plain in zip(reported, none_reported):
        assert is_inside(box)
        c, s = inside(np.array([plain[0] + plain[2] / 2, plain[1] + plain[3] / 2]), np.array(plain[2:]), SHAPE, 4.0)
        np.testing.assert_allclose(box, [*(c - s / 2), *s], atol=1e-6)

    reported, state = track("state", line_frames)
    assert reported == state and all(is_inside(b) for b in state)
