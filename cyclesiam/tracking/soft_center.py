"""tracker.center_from "soft": the new centre is the weighted mean of the regressed centres of the
candidates near the best one, not the regressed centre of the argmax alone.

Why: near the peak, neighbouring anchors have penalised scores within 1e-4..1e-2 of each other
while their regressed centres differ by 1-4 crop pixels. The argmax between such near-ties turns
float rounding (torch against onnxruntime, 1e-6 in the scores) into a jump of pixels, and the
free-running track diverges from there (docs/MODEL.md, "Same track on both backends"). Weights
exp((pscore - best) / temperature) x a gate on d, the distance of a candidate's regressed centre to
the best's: 1 up to r = spread x extent, exp(-(d - r)^2 / (2 r^2)) beyond. They are continuous in
the scores: a tie that flips between neighbours (closer than r, same gate for both) moves the
centre by a hair, and far peaks (look-alikes) get no say.
"""

from __future__ import annotations

import numpy as np

TEMPERATURE = 0.01  # pscore units: neighbours within a few hundredths of the peak share the vote
SPREAD = 0.25  # the gate's flat radius and fall-off, in target extents (sqrt(w h) at crop scale)


def soft_centers(pscore: np.ndarray, boxes: np.ndarray, best: np.ndarray, extent: np.ndarray,
                 temperature: float = TEMPERATURE, spread: float = SPREAD) -> np.ndarray:
    """Centre offsets [B, 2] (crop pixels, relative to the crop centre) from pscore [B, N] (-inf at
    invalid candidates), boxes [B, N, 4] (cx, cy, w, h, crop pixels), best [B] (the argmax) and
    extent [B] (the target's sqrt(w h) at crop scale). A row with no finite pscore keeps its best box's
    centre (the caller holds such a row anyway)."""
    rows = np.arange(len(best))
    top = pscore[rows, best][:, None]
    xy = boxes[..., :2]
    ref = xy[rows, best][:, None, :]
    radius = np.maximum(spread * np.asarray(extent, dtype=np.float64), 1e-6)[:, None]
    d = np.sqrt(((xy - ref) ** 2).sum(axis=-1))
    valid = np.isfinite(pscore) & np.isfinite(d) & np.isfinite(top)
    with np.errstate(invalid="ignore", over="ignore"):
        log_w = (pscore - top) / temperature - np.maximum(d - radius, 0.0) ** 2 / (2.0 * radius**2)
    weights = np.where(valid, np.exp(np.where(valid, log_w, -np.inf)), 0.0)
    total = weights.sum(axis=1, keepdims=True)
    mean = (weights[..., None] * np.where(valid[..., None], xy, 0.0)).sum(axis=1) / np.where(total > 0, total, 1.0)
    return np.where(total > 0, mean, ref[:, 0, :])
