"""Test helper: the shipped model tracking one target through a list of frames."""

from __future__ import annotations

import dataclasses

import numpy as np

from cyclesiam.build import build_tracker
from cyclesiam.config import Config, TrackerConfig
from cyclesiam.default_model import default_checkpoint


def final_center(images: list[np.ndarray], box, tracker_cfg: TrackerConfig) -> np.ndarray:
    """The shipped model (cpu, `tracker_cfg`) initialised on images[0] at `box`, tracked through the
    rest: the centre (x, y) of its box on the last image."""
    cfg = Config()
    cfg.runtime.device = "cpu"
    tracker = build_tracker(dataclasses.replace(cfg, tracker=tracker_cfg), default_checkpoint())
    tracker.add_target(images[0], box)
    for image in images[1:]:
        (result,) = tracker.track(image)
    x, y, w, h = result.bbox
    return np.array([x + w / 2, y + h / 2])
