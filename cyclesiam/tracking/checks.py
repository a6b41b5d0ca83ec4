"""The tracker config's checks (values the strategies and stages accept)."""

from __future__ import annotations

from cyclesiam.config import TrackerConfig
from cyclesiam.tracking.image_bounds import BOX_IN_IMAGE
from cyclesiam.tracking.scale import SCALE_SOURCES
from cyclesiam.tracking.template_update import TEMPLATE_UPDATERS

CENTER_SOURCES = ("regression", "peak")
TEMPLATE_UPDATES = tuple(TEMPLATE_UPDATERS)


def check_tracker_config(cfg: TrackerConfig) -> None:
    """ValueError unless center_from and template_update are known, scale_steps is odd and >= 1
    (symmetric around the current size), scale_step > 1 and 0 < scale_penalty <= 1. Used at
    construction and by the node before it applies run-time parameter changes."""
    if cfg.center_from not in CENTER_SOURCES:
        raise ValueError(f"tracker.center_from must be one of {CENTER_SOURCES}, got '{cfg.center_from}'")
    if not (0.0 <= cfg.lost_similarity <= 1.0 and 0.0 <= cfg.recover_similarity <= 1.0):
        raise ValueError(f"tracker.lost_similarity and recover_similarity must be in [0, 1] (0 = off), got "
                         f"{cfg.lost_similarity} and {cfg.recover_similarity}")
    if cfg.scale_from not in SCALE_SOURCES:
        raise ValueError(f"tracker.scale_from must be one of {SCALE_SOURCES}, got '{cfg.scale_from}'")
    if cfg.box_in_image not in BOX_IN_IMAGE:
        raise ValueError(f"tracker.box_in_image must be one of {BOX_IN_IMAGE}, got '{cfg.box_in_image}'")
    if cfg.template_update not in TEMPLATE_UPDATES:
        raise ValueError(f"tracker.template_update must be one of {TEMPLATE_UPDATES}, got '{cfg.template_update}'")
    if not (0.0 < cfg.template_update_rate <= 1.0 and 0.0 <= cfg.template_update_anchor <= 1.0):
        raise ValueError(f"tracker.template_update_rate must be in (0, 1] and template_update_anchor in [0, 1], got "
                         f"{cfg.template_update_rate} and {cfg.template_update_anchor}")
    if cfg.scale_steps < 1 or cfg.scale_steps % 2 == 0:
        raise ValueError(f"tracker.scale_steps must be odd and >= 1 (1 = no scale search, 3 = sizes x "
                         f"scale_step^(-1, 0, 1)), got {cfg.scale_steps}")
    if cfg.scale_steps > 1 and not cfg.scale_step > 1.0:
        raise ValueError(f"tracker.scale_step must be > 1, got {cfg.scale_step}")
    if not 0.0 < cfg.scale_penalty <= 1.0:
        raise ValueError(f"tracker.scale_penalty must be in (0, 1], got {cfg.scale_penalty}")
    if not 0.0 <= cfg.distractor_penalty <= 1.0:
        raise ValueError(f"tracker.distractor_penalty must be in [0, 1] (0 = off), got {cfg.distractor_penalty}")
    if not 0.0 <= cfg.distractor_score <= 1.0:
        raise ValueError(f"tracker.distractor_score must be in [0, 1], got {cfg.distractor_score}")
    if not (cfg.distractor_distance > 0.0 and cfg.distractor_radius >= 0.0):
        raise ValueError(f"tracker.distractor_distance must be > 0 and distractor_radius >= 0 (target sizes), got "
                         f"{cfg.distractor_distance} and {cfg.distractor_radius}")
