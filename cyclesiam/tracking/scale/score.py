"""Scale "score" (tracker.scale_from: score): every target is searched at each scale and the best
penalised score wins (SiamFC); with tracker.scale_calibration each target's scores per scale are
damped where its own first frame showed a wrong scale outscoring the true one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from cyclesiam.config import TrackerConfig
from cyclesiam.tracking.post import PostResult
from cyclesiam.tracking.scale.base import ONE_SCALE, ScaleStrategy
from cyclesiam.tracking.scale.common import move_sizes, scale_factors, scale_penalties

if TYPE_CHECKING:
    from cyclesiam.tracking.search import SearchRows
    from cyclesiam.tracking.target import Target


class ScoreScale(ScaleStrategy):
    def search_factors(self, all_held: bool) -> np.ndarray:
        # a held LOST target's box does not move and only the recovery test reads it: one scale is
        # enough, and the wide lost crop is the most expensive forward there is
        return ONE_SCALE if all_held else scale_factors(self.cfg)

    def from_search(self, found: "SearchRows", factors: np.ndarray, members: "list[Target]",
                    image_shape: Sequence[int]) -> "SearchRows":
        if len(factors) == 1:
            return found
        sizes = np.stack([t.size for t in members])
        chosen, picked = pick_scales(found.post, factors, sizes, self.cfg, image_shape, scale_biases(members, factors))
        rows = found.take(chosen)
        rows.post = picked
        return rows

    def on_add(self, target: "Target", search: "Callable[[np.ndarray], SearchRows]") -> Any:
        """tracker.scale_calibration: the target's own first frame searched at every scale (the true
        one is factor 1) -> (factors, scale_bias of the scores)."""
        if not self.cfg.scale_calibration:
            return None
        factors = scale_factors(self.cfg)
        return factors, scale_bias(search(factors).post.best_pscore()[None, :], factors)[0]


def scale_biases(members: "list[Target]", factors: np.ndarray) -> np.ndarray | None:
    """The targets' calibrated score factors [B, S] (1 where none was measured at these scales)."""
    if all(t.scale_bias is None for t in members):
        return None
    return np.stack([t.scale_bias[1] if t.scale_bias is not None and np.array_equal(t.scale_bias[0], factors)
                     else np.ones(len(factors)) for t in members])


def scale_bias(best_pscores: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Per-scale score factors from a search at the true scale (tracker.scale_calibration):
    best_pscores [B, S] of the scales `factors` [S] on a frame whose true size is factor 1.
    A scale that scored above the true one gets true / its score (< 1), the rest 1 -> [B, S]."""
    best = np.asarray(best_pscores, dtype=np.float64)
    true = best[:, np.flatnonzero(np.asarray(factors) == 1.0)[0]][:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(best > true, true / best, 1.0)
    return np.where(np.isfinite(ratio), np.clip(ratio, 0.0, 1.0), 1.0)


def pick_scales(post: PostResult, factors: np.ndarray, sizes: np.ndarray, cfg: TrackerConfig,
                image_shape: Sequence[int], bias: np.ndarray | None = None) -> tuple[np.ndarray, PostResult]:
    """Scale search: `post` holds B targets x S scales (target-major rows, state size x factors[s]).
    Per target keep the scale whose best penalised score (x scale_penalty off 1) is highest; the new
    size is the state size moved towards size x that factor by the usual smoothing weight (SiamFC).
    The box regression's size is not used here: a network whose regression is blind to scale
    (docs/MODEL.md) would otherwise drift; its position still is. `bias` [B, S] (scale_bias) scales
    each target's scores further.
    Returns (chosen rows [B], PostResult of those rows)."""
    s = len(factors)
    best_pscore = post.best_pscore().reshape(-1, s)
    best_pscore = best_pscore * scale_penalties(factors, cfg)[None, :]
    if bias is not None:
        best_pscore = best_pscore * bias
    pick = np.argmax(best_pscore, axis=1)
    chosen = np.arange(best_pscore.shape[0]) * s + pick
    picked = post.take(chosen)
    picked.size = move_sizes(sizes, factors[pick], picked.lr, cfg, image_shape)
    return chosen, picked
