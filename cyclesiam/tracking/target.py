"""Everything the tracker keeps per target (the model is state-free)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from cyclesiam.mask import box_polygon
from cyclesiam.tracking.result import TrackResult
from cyclesiam.tracking.state import TrackState


@dataclass
class Target:
    id: str
    center: np.ndarray  # (cx, cy) image pixels
    size: np.ndarray  # (w, h) image pixels
    zf: torch.Tensor  # [C, t, t] search kernel: the template features (adapted by tracker.template_update)
    reference: torch.Tensor  # [C, t, t] the first template's features: what the template similarity compares with
    running: torch.Tensor | None = None  # tracker.template_update: the updated template before the anchor mix
    # [3, T, T] float BGR 0..255: the template crop of the box the target was set from; a swapped-in network
    # re-creates zf and reference from it (cyclesiam/tracking/network_swap.py)
    template_crop: torch.Tensor | None = None
    score: float = 1.0
    state: TrackState = TrackState.TRACKING
    low_count: int = 0
    frames: int = 0
    polygon: np.ndarray | None = None
    mask: np.ndarray | None = None
    # what the scale strategy measured when the target was added (scale/score.py: calibration)
    scale_bias: Any = None
    # tracker.distractor_*: strong peaks away from the target in the last frame [D, 2] image pixels
    distractors: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))
    similarity: float = math.nan  # to the template at the last box (TrackResult.similarity)
    # tracker.template_bank "rotations": the extra kernels [K, C, t, t] and the angles they were turned by
    bank: torch.Tensor | None = None
    bank_angles: tuple[float, ...] = ()
    # tracker.template_bank "rotations_on_drop": the own kernel's raw score in the last search, and how many
    # more frames the bank is searched for after the last frame that followed a low one
    upright_score: float = 1.0
    bank_hold: int = 0
    # tracker.motion "velocity": the smoothed displacement per frame (image pixels)
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        cx, cy = self.center
        w, h = self.size
        return (float(cx - w / 2), float(cy - h / 2), float(w), float(h))

    @property
    def extent(self) -> float:
        return extent(self.size)

    def result(self) -> TrackResult:
        poly = self.polygon if self.polygon is not None else box_polygon(self.bbox)
        return TrackResult(
            id=self.id,
            bbox=self.bbox,
            score=float(self.score),
            state=self.state,
            polygon=[[float(px), float(py)] for px, py in poly],
            mask=self.mask,
            similarity=float(self.similarity),
        )


def extent(size: np.ndarray) -> float:
    """sqrt(w * h): the target size the tracker.distractor_* distances are measured in."""
    return math.sqrt(size[0] * size[1])
