"""A target's tracking state and the LOST hysteresis."""

from __future__ import annotations

import enum
import math

from cyclesiam.config import TrackerConfig


class TrackState(str, enum.Enum):
    """A str enum: `TrackState.LOST == "lost"`, so string comparisons elsewhere keep working."""

    TRACKING = "tracking"
    LOST = "lost"

    def __str__(self) -> str:
        return self.value


def next_state(state: TrackState, low_count: int, score: float, cfg: TrackerConfig,
               similarity: float = math.nan) -> tuple[TrackState, int]:
    """LOST hysteresis: lost after `lost_frames` consecutive low frames (score < lost_threshold and,
    when lost_similarity > 0, template similarity < lost_similarity); back when score >=
    recover_threshold (and similarity >= recover_similarity when that is > 0). A NaN similarity
    (not measured) never blocks LOST and never allows recovery that needs it."""
    if state == TrackState.TRACKING:
        similar = cfg.lost_similarity > 0 and similarity >= cfg.lost_similarity
        if score < cfg.lost_threshold and not similar:
            low_count += 1
            if low_count >= cfg.lost_frames:
                return TrackState.LOST, low_count
            return TrackState.TRACKING, low_count
        return TrackState.TRACKING, 0
    unlike = cfg.recover_similarity > 0 and not similarity >= cfg.recover_similarity
    if score >= cfg.recover_threshold and not unlike:
        return TrackState.TRACKING, 0
    return TrackState.LOST, low_count


def reads_similarity(state: TrackState, score: float, cfg: TrackerConfig) -> bool:
    """Whether `next_state` reads the similarity at this score (elsewhere any value gives the same state)."""
    if state == TrackState.TRACKING:
        return cfg.lost_similarity > 0 and score < cfg.lost_threshold
    return cfg.recover_similarity > 0 and score >= cfg.recover_threshold


def similarity_decides(cfg: TrackerConfig) -> bool:
    """Whether the LOST rule reads the template similarity."""
    return cfg.lost_similarity > 0 or cfg.recover_similarity > 0
