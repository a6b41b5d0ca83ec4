"""Template similarity of a batch's new positions: template-sized crops at the new centres and the
current size x scale factors, embedded and compared (cosine) with each target's first template.
Read by the LOST rule and by the template scale strategy; each target is measured at most once
per frame at a given number of scales."""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
import torch

from cyclesiam.config import ModelConfig, TrackerConfig
from cyclesiam.tracking.network import Network, ms_since
from cyclesiam.tracking.scale.common import best_similarity, scale_rows, template_similarity
from cyclesiam.tracking.target import Target


class Appearance:
    """Similarities of the targets `members` at `centers` [B, 2] (their sizes as they were when searched)."""

    def __init__(self, net: Network, cfg: TrackerConfig, bgr: np.ndarray, members: list[Target],
                 centers: np.ndarray, timing: dict[str, float], pad: tuple[float, ...] | None = None) -> None:
        self._net, self._cfg, self._bgr, self._timing, self._pad = net, cfg, bgr, timing, pad
        self._members, self._centers = members, centers
        self._sizes = np.stack([t.size for t in members])
        self._latest: dict[int, np.ndarray] = {}  # member index -> [S] its latest measurement

    @property
    def model_cfg(self) -> "ModelConfig":
        return self._net.model_cfg

    def measure(self, rows: Sequence[int], factors: np.ndarray) -> np.ndarray:
        """Similarity [len(rows), S] of the listed members at each factor (reused when measured so)."""
        rows = list(rows)
        if all(len(self._latest.get(b, ())) == len(factors) for b in rows):
            return np.stack([self._latest[b] for b in rows])
        t0 = time.perf_counter()
        candidates = self._net.templates(self._bgr, *scale_rows(self._centers[rows], self._sizes[rows], factors),
                                         self._cfg.context_amount, self._pad)
        similarity = template_similarity(candidates.reshape(len(rows), len(factors), *candidates.shape[1:]),
                                         torch.stack([self._members[b].reference for b in rows]))
        self._timing["scale"] = self._timing.get("scale", 0.0) + ms_since(t0)
        self._latest.update(zip(rows, similarity))
        return similarity

    def best(self, row: int) -> float:
        """The member's best similarity over the scales of its latest measurement (NaN: none)."""
        latest = self._latest.get(row)
        return math.nan if latest is None else float(best_similarity(latest[None, :])[0])
