"""LOST policy "hold" (tracker.lost_hold: true): a LOST target's box is held and searched for in
the wider tracker.lost_search_size crop with tracker.lost_window_influence (no motion prior)."""

from __future__ import annotations

from cyclesiam.config import ModelConfig
from cyclesiam.tracking.lost.report import ReportLost
from cyclesiam.tracking.state import TrackState
from cyclesiam.tracking.target import Target


class HoldLost(ReportLost):
    def held(self, target: Target) -> bool:
        return target.state == TrackState.LOST

    def search_size(self, target: Target, model_cfg: ModelConfig) -> int:
        return self.cfg.lost_search_size if self.held(target) else model_cfg.search_size

    def window_influence(self, target: Target) -> float:
        return self.cfg.lost_window_influence if self.held(target) else self.cfg.window_influence
