"""LOST policy "report" (tracker.lost_hold: false, the default): a LOST target is tracked exactly
as before and only reported LOST until it scores as itself again."""

from __future__ import annotations

from cyclesiam.config import ModelConfig, TrackerConfig
from cyclesiam.tracking.target import Target


class ReportLost:
    """The LOST policy interface, and its "report" behaviour: nothing changes while LOST."""

    def __init__(self, cfg: TrackerConfig) -> None:
        self.cfg = cfg

    def held(self, target: Target) -> bool:
        """Whether the target's box is held this frame (not moved, searched for instead)."""
        return False

    def search_size(self, target: Target, model_cfg: ModelConfig) -> int:
        return model_cfg.search_size

    def window_influence(self, target: Target) -> float:
        return self.cfg.window_influence
