"""tracker.box_in_image: what the tracker does with the part of a box that lies outside the image.

none    the box may hang over the border (pysot: only the centre and the size are bounded).
report  the reported box (TrackResult.bbox, and the polygon when it is the box's) is the part inside
        the image; the search state keeps the whole box. Boxes are annotated that way: the part
        outside the frame cannot be seen (annotations/real/README.md).
state   the state itself is cut to the image every frame, so a large target that slides out of
        view is followed by its visible part, and a box cannot keep growing past the frame.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from cyclesiam.mask import box_polygon
from cyclesiam.tracking.result import TrackResult

BOX_IN_IMAGE = ("none", "report", "state")


def inside(center: np.ndarray, size: np.ndarray, image_shape: Sequence[int],
           min_size: float) -> tuple[np.ndarray, np.ndarray]:
    """Centre and size (w, h) of the part of the box inside the image, each side >= min_size
    (the min_size box is kept inside the image too) -> (center [2], size [2])."""
    extent = np.array([float(image_shape[1]), float(image_shape[0])])
    lo = np.clip(center - size / 2, 0.0, extent)
    hi = np.clip(center + size / 2, 0.0, extent)
    side = np.minimum(np.maximum(hi - lo, min(min_size, float(extent.min()))), extent)
    mid = np.clip((lo + hi) / 2, side / 2, extent - side / 2)
    return mid, side


def clip_result(result: TrackResult, image_shape: Sequence[int], min_size: float,
                polygon_from_box: bool) -> TrackResult:
    """`result` with its box cut to the image (its polygon too when it was the box's)."""
    x, y, w, h = result.bbox
    center, size = inside(np.array([x + w / 2, y + h / 2]), np.array([w, h]), image_shape, min_size)
    bbox = (float(center[0] - size[0] / 2), float(center[1] - size[1] / 2), float(size[0]), float(size[1]))
    if not polygon_from_box:
        return replace(result, bbox=bbox)
    return replace(result, bbox=bbox, polygon=[[float(px), float(py)] for px, py in box_polygon(bbox)])
