"""Scale "template" (tracker.scale_from: template, the default): one search at the current size,
then template-sized crops at size x each scale around the new centre are embedded and the one most
similar (cosine) to the target's first template wins; the size moves towards it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from cyclesiam.config import TrackerConfig
from cyclesiam.tracking.scale.base import ONE_SCALE, ScaleStrategy
from cyclesiam.tracking.scale.common import move_sizes, scale_factors, scale_penalties

if TYPE_CHECKING:
    from cyclesiam.tracking.search import SearchRows
    from cyclesiam.tracking.similarity import Appearance
    from cyclesiam.tracking.target import Target


class TemplateScale(ScaleStrategy):
    def from_search(self, found: "SearchRows", factors: np.ndarray, members: "list[Target]",
                    image_shape: Sequence[int]) -> "SearchRows":
        # the size is picked in settle(): the regression's size is blind to scale
        found.post.size = np.stack([t.size for t in members])
        return found

    def similarity_factors(self, all_held: bool) -> np.ndarray:
        return ONE_SCALE if all_held else scale_factors(self.cfg)

    def settle(self, found: "SearchRows", appearance: "Appearance", members: "list[Target]", moving: list[int],
               image_shape: Sequence[int]) -> np.ndarray | None:
        factors = scale_factors(self.cfg)
        similarity = appearance.measure(moving, factors)
        sizes = np.stack([members[b].size for b in moving])
        return pick_template_scales(similarity, factors, sizes, found.post.lr[moving], self.cfg, image_shape)


def pick_template_scales(similarity: np.ndarray, factors: np.ndarray, sizes: np.ndarray, lr: np.ndarray,
                         cfg: TrackerConfig, image_shape: Sequence[int]) -> np.ndarray:
    """tracker.scale_from "template": per target keep the scale whose crop is most similar to the
    template (x scale_penalty when not 1; non-finite similarities never win, none finite = keep the
    size) and move the size towards size x that factor by the smoothing weight `lr` [B] -> sizes [B, 2]."""
    sim = np.where(np.isfinite(similarity), similarity, -np.inf)
    sim = sim * scale_penalties(factors, cfg)[None, :]
    keep = np.flatnonzero(factors == 1.0)[0]
    pick = np.where(np.isfinite(sim).any(axis=1), np.argmax(sim, axis=1), keep)
    return move_sizes(sizes, factors[pick], lr, cfg, image_shape)
