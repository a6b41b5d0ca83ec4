"""Motion model (tracker.motion): where a target's next search crop, and with it the cosine window,
is centred.

none      the last position (SiamRPN): a target that moves steadily sits off-centre in every crop
          and the window pulls it back towards where it was.
velocity  the last position plus the target's smoothed displacement per frame (constant velocity):
          v <- motion_rate x (newest displacement) + (1 - motion_rate) x v, at most one target extent
          sqrt(w h) long, and zero while the target is not TRACKING (a LOST box does not move on).

A new model is one class here and one entry in MOTION_MODELS.
"""

from __future__ import annotations

import numpy as np

from cyclesiam.config import TrackerConfig
from cyclesiam.tracking.state import TrackState
from cyclesiam.tracking.target import Target


class LastPosition:
    """"none": search where the target was."""

    def __init__(self, cfg: TrackerConfig) -> None:
        self.cfg = cfg

    def search_center(self, target: Target) -> np.ndarray:
        return target.center

    def update(self, target: Target, previous_center: np.ndarray) -> None:
        """After the frame: `target.center` is the new position, `previous_center` the one before."""


class ConstantVelocity(LastPosition):
    """"velocity": search where the target would be had it kept its recent velocity."""

    def search_center(self, target: Target) -> np.ndarray:
        return target.center + target.velocity if target.state == TrackState.TRACKING else target.center

    def update(self, target: Target, previous_center: np.ndarray) -> None:
        if target.state != TrackState.TRACKING:
            target.velocity = np.zeros(2)
            return
        rate = self.cfg.motion_rate
        velocity = rate * (target.center - previous_center) + (1.0 - rate) * target.velocity
        length, cap = float(np.hypot(*velocity)), target.extent
        target.velocity = velocity * (cap / length) if length > cap else velocity


MOTION_MODELS: dict[str, type[LastPosition]] = {"none": LastPosition, "velocity": ConstantVelocity}


def motion_model(cfg: TrackerConfig) -> LastPosition:
    return MOTION_MODELS[cfg.motion](cfg)


__all__ = ["MOTION_MODELS", "ConstantVelocity", "LastPosition", "motion_model"]
