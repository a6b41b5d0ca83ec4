"""Scale strategies, chosen from the existing config keys: "none" when tracker.scale_steps is 1
(the box regression's size), else tracker.scale_from ("template" | "score" | "pooled"). A new strategy is one
file with a `ScaleStrategy` subclass and one entry in SCALE_STRATEGIES."""

from __future__ import annotations

from cyclesiam.config import TrackerConfig
from cyclesiam.tracking.scale.base import ScaleStrategy
from cyclesiam.tracking.scale.none import RegressionScale
from cyclesiam.tracking.scale.pooled import PooledScale
from cyclesiam.tracking.scale.score import ScoreScale
from cyclesiam.tracking.scale.template import TemplateScale

NO_SCALE = "none"
SCALE_STRATEGIES: dict[str, type[ScaleStrategy]] = {
    NO_SCALE: RegressionScale,
    "score": ScoreScale,
    "template": TemplateScale,
    "pooled": PooledScale,
}
# the values tracker.scale_from accepts ("none" is chosen by scale_steps 1, not named in the config)
SCALE_SOURCES = tuple(name for name in SCALE_STRATEGIES if name != NO_SCALE)


def scale_strategy_name(cfg: TrackerConfig) -> str:
    return NO_SCALE if cfg.scale_steps == 1 else cfg.scale_from


def scale_strategy(cfg: TrackerConfig) -> ScaleStrategy:
    return SCALE_STRATEGIES[scale_strategy_name(cfg)](cfg)
