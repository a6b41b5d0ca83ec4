"""Scale "template_fit" (tracker.scale_from: template_fit): the template strategy, with the picked
scale refined between the steps: the vertex of the parabola through the best scale's (penalised)
similarity and its two neighbours', in log-scale, at most half a step from the best.

Why: the template strategy's argmax between near-tied scales (similarities within 1e-3, common when
the similarity is low) turns float rounding (torch against onnxruntime) into a different size, and
the size integrates those flips. The vertex is continuous where two neighbouring scales swap places
(both sides put it half-way), so a tiny difference in the similarities gives a tiny difference in
the size (docs/MODEL.md, "Same track on both backends")."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from cyclesiam.config import TrackerConfig
from cyclesiam.tracking.post import _parabola_vertex
from cyclesiam.tracking.scale.common import move_sizes, scale_penalties
from cyclesiam.tracking.scale.template import TemplateScale


def pick_fitted_scales(similarity: np.ndarray, factors: np.ndarray, sizes: np.ndarray, lr: np.ndarray,
                       cfg: TrackerConfig, image_shape: Sequence[int]) -> np.ndarray:
    """As `pick_template_scales`, the factor refined to the parabola vertex (factor_best x
    scale_step^offset, |offset| <= 0.5; no refinement at the first or last scale or next to a
    non-finite similarity) -> sizes [B, 2]."""
    sim = np.where(np.isfinite(similarity), similarity, -np.inf)
    sim = sim * scale_penalties(factors, cfg)[None, :]
    keep = np.flatnonzero(factors == 1.0)[0]
    any_finite = np.isfinite(sim).any(axis=1)
    best = np.where(any_finite, np.argmax(sim, axis=1), keep)
    rows = np.arange(len(best))
    last = len(factors) - 1
    left = np.where(best > 0, sim[rows, np.maximum(best - 1, 0)], -np.inf)
    right = np.where(best < last, sim[rows, np.minimum(best + 1, last)], -np.inf)
    with np.errstate(invalid="ignore"):
        offset = np.where(any_finite, _parabola_vertex(left, sim[rows, best], right), 0.0)
    return move_sizes(sizes, factors[best] * cfg.scale_step ** offset, lr, cfg, image_shape)


class TemplateFitScale(TemplateScale):
    pick = staticmethod(pick_fitted_scales)
