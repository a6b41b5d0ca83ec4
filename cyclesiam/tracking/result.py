"""What the tracker reports per target and frame, and the check of a box given to it."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from cyclesiam.tracking.state import TrackState


@dataclass
class TrackResult:
    """One target in one frame. bbox = (x, y, w, h) top-left, pixels; polygon = 4 corners."""

    id: str
    bbox: tuple[float, float, float, float]
    score: float
    state: TrackState
    polygon: list[list[float]]
    mask: np.ndarray | None = None  # uint8 HxW, 0/255; None when not computed
    # cosine similarity of the template-sized crop at the box to the template (the LOST rule's
    # second signal); NaN when this frame did not measure it
    similarity: float = math.nan


def validate_box(bbox: Sequence[float], image_shape: Sequence[int]) -> tuple[float, float, float, float]:
    """A finite, positive box (x, y, w, h) clipped to the image; ValueError otherwise."""
    try:
        values = [float(v) for v in bbox]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"box must be 4 numbers (x, y, w, h), got {bbox!r}") from exc
    if len(values) != 4:
        raise ValueError(f"box must be 4 numbers (x, y, w, h), got {len(values)}: {bbox!r}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"box has NaN or infinite values: {values}")
    x, y, w, h = values
    if w <= 0 or h <= 0:
        raise ValueError(f"box must have positive width and height, got w={w}, h={h}")
    height, width = int(image_shape[0]), int(image_shape[1])
    x1, y1 = max(x, 0.0), max(y, 0.0)
    x2, y2 = min(x + w, float(width)), min(y + h, float(height))
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        raise ValueError(f"box {values} is entirely outside the {width}x{height} image")
    return x1, y1, x2 - x1, y2 - y1
