"""Mask back-projection (SiamMask): a 63x63 probability mask at one response position -> image.

The mask predicted at response position (i, j) covers the template-sized window
(127x127 at network scale) centred on that position in the search crop. In the image,
that window is centred on `crop_center + offset * scale` with side `template_size * scale`
(`scale` = image pixels per crop pixel), so the mask maps to the image with one affine
warp. Only the window's intersection with the image is warped.

Continuous pixel coordinates as in `cyclesiam.crop`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np


@dataclass
class MaskResult:
    mask: np.ndarray  # uint8 HxW, 0 / 255 (largest component only)
    polygon: np.ndarray  # [4, 2] float, min-area rotated box (or the fallback box)
    empty: bool  # True when nothing was above the threshold (polygon = fallback)


def box_polygon(bbox_xywh: Sequence[float]) -> np.ndarray:
    """The 4 corners [4, 2] of an axis-aligned box (x, y, w, h), clockwise from top-left."""
    x, y, w, h = (float(v) for v in bbox_xywh)
    return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], dtype=np.float64)


def window_in_image(
    crop_center: Sequence[float], offset: Sequence[float], scale: float, window_size: float
) -> tuple[float, float, float]:
    """(cx, cy, side) in the image of the window centred at `offset` (crop pixels from the crop centre)."""
    cx = float(crop_center[0]) + float(offset[0]) * scale
    cy = float(crop_center[1]) + float(offset[1]) * scale
    return cx, cy, float(window_size) * scale


def _window_roi(window: tuple[float, float, float], image_shape: Sequence[int]) -> tuple[int, int, int, int]:
    """Pixel-index bounds (r0, r1, c0, c1) of the window clipped to the image (may be empty)."""
    height, width = int(image_shape[0]), int(image_shape[1])
    cx, cy, side = window
    x0, y0 = cx - side / 2, cy - side / 2
    c0, r0 = max(int(np.floor(x0)), 0), max(int(np.floor(y0)), 0)
    c1, r1 = min(int(np.ceil(x0 + side)), width), min(int(np.ceil(y0 + side)), height)
    return r0, max(r1, r0), c0, max(c1, c0)


def _warp_roi(prob: np.ndarray, window: tuple[float, float, float], roi: tuple[int, int, int, int]) -> np.ndarray:
    """The probability mask warped onto the ROI of the image (float32, bilinear, 0 outside)."""
    r0, r1, c0, c1 = roi
    cx, cy, side = window
    x0, y0 = cx - side / 2, cy - side / 2
    a = side / prob.shape[0]
    # mask index u -> image index a*u + (x0 + a/2 - 1/2); shifted into the ROI
    matrix = np.array(
        [[a, 0.0, x0 + 0.5 * a - 0.5 - c0], [0.0, a, y0 + 0.5 * a - 0.5 - r0]], dtype=np.float64
    )
    return cv2.warpAffine(
        np.ascontiguousarray(prob, dtype=np.float32),
        matrix,
        (c1 - c0, r1 - r0),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )


def project_mask(
    prob: np.ndarray, window: tuple[float, float, float], image_shape: Sequence[int]
) -> np.ndarray:
    """Warp a square probability mask covering `window` (cx, cy, side) onto an image -> float32 HxW.

    Bilinear; outside the window is 0. Only the part of the image the window covers is computed.
    """
    out = np.zeros((int(image_shape[0]), int(image_shape[1])), dtype=np.float32)
    roi = _window_roi(window, image_shape)
    r0, r1, c0, c1 = roi
    if r1 > r0 and c1 > c0:
        out[r0:r1, c0:c1] = _warp_roi(prob, window, roi)
    return out


def largest_component(binary: np.ndarray) -> np.ndarray:
    """Keep only the largest 8-connected component of a mask (nonzero = set) -> uint8 0/255."""
    binary = (np.asarray(binary) > 0).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return np.zeros(binary.shape, dtype=np.uint8)
    if count == 2:  # one component: the mask itself (no pass over the labels)
        return np.multiply(binary, 255, dtype=np.uint8)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    # numpy, not cv2.compare: OpenCV reads a 1x1 array and a scalar as a 4-vector
    return np.where(labels == best, 255, 0).astype(np.uint8)


def rotated_box(mask: np.ndarray) -> np.ndarray | None:
    """Min-area rotated rectangle [4, 2] (continuous coordinates) enclosing the nonzero pixels, or None."""
    binary = (np.asarray(mask) > 0).astype(np.uint8)
    contours, _ = cv2.findContours(binary, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    pts = np.concatenate([c.reshape(-1, 2) for c in contours]).astype(np.float32)
    # pixel (c, r) covers [c, c+1] x [r, r+1]: enclose its 4 corners (a 1-pixel mask has area 1)
    corners = np.concatenate([pts, pts + (1, 0), pts + (0, 1), pts + (1, 1)]).astype(np.float32)
    return cv2.boxPoints(cv2.minAreaRect(corners)).astype(np.float64)


def mask_to_polygon(
    prob_image: np.ndarray, threshold: float, fallback_bbox: Sequence[float], offset: Sequence[int] = (0, 0)
) -> MaskResult:
    """Threshold a probability image, keep the largest component, fit a rotated box.

    `offset` (row, col) is added to the polygon (when `prob_image` is a region of a larger image).
    """
    _, binary = cv2.threshold(np.ascontiguousarray(prob_image, dtype=np.float32), threshold, 255, cv2.THRESH_BINARY)
    return binary_to_polygon(binary, fallback_bbox, offset)


def binary_to_polygon(binary: np.ndarray, fallback_bbox: Sequence[float], offset: Sequence[int] = (0, 0)) -> MaskResult:
    """Keep the largest component of a binary image (nonzero = set), fit a rotated box (see mask_to_polygon)."""
    mask = largest_component(binary)
    poly = rotated_box(mask)
    if poly is None:
        return MaskResult(mask=mask, polygon=box_polygon(fallback_bbox), empty=True)
    return MaskResult(mask=mask, polygon=poly + (offset[1], offset[0]), empty=False)


@dataclass
class WindowProbabilities:
    prob: np.ndarray  # float32 [r1 - r0, c1 - c0]: the mask probabilities warped onto the ROI (0 outside the window)
    roi: tuple[int, int, int, int]  # (r0, r1, c0, c1) pixel-index bounds in the image; may be empty


def backproject_probabilities(
    prob: np.ndarray,
    crop_center: Sequence[float],
    offset: Sequence[float],
    scale: float,
    window_size: float,
    image_shape: Sequence[int],
) -> WindowProbabilities:
    """63x63 probabilities at a response offset -> the probabilities on the image region the window covers.

    Arguments as in `backproject_mask`. The ROI is empty when the window lies outside the image.
    """
    window = window_in_image(crop_center, offset, scale, window_size)
    roi = _window_roi(window, image_shape)
    r0, r1, c0, c1 = roi
    if r1 <= r0 or c1 <= c0:
        return WindowProbabilities(np.zeros((max(r1 - r0, 0), max(c1 - c0, 0)), np.float32), roi)
    return WindowProbabilities(_warp_roi(prob, window, roi), roi)


def roi_result_to_image(res: MaskResult, roi: tuple[int, int, int, int], image_shape: Sequence[int]) -> MaskResult:
    """A MaskResult computed on an ROI (polygon already offset) with its mask pasted into a full-image mask."""
    full = np.zeros((int(image_shape[0]), int(image_shape[1])), dtype=np.uint8)
    r0, r1, c0, c1 = roi
    if r1 > r0 and c1 > c0:
        full[r0:r1, c0:c1] = res.mask
    return MaskResult(mask=full, polygon=res.polygon, empty=res.empty)


def backproject_mask(
    prob: np.ndarray,
    crop_center: Sequence[float],
    offset: Sequence[float],
    scale: float,
    window_size: float,
    image_shape: Sequence[int],
    threshold: float,
    fallback_bbox: Sequence[float],
) -> MaskResult:
    """Full pipeline: 63x63 probabilities at a response offset -> image mask + rotated polygon.

    `crop_center`: centre of the search crop in the image; `offset`: the response position's
    centre in crop pixels relative to the crop centre (the anchor centre); `scale`: image
    pixels per crop pixel; `window_size`: side the mask covers at crop scale (template size).
    """
    win = backproject_probabilities(prob, crop_center, offset, scale, window_size, image_shape)
    r0, r1, c0, c1 = win.roi
    if r1 <= r0 or c1 <= c0:
        full = np.zeros((int(image_shape[0]), int(image_shape[1])), dtype=np.uint8)
        return MaskResult(mask=full, polygon=box_polygon(fallback_bbox), empty=True)
    res = mask_to_polygon(win.prob, threshold, fallback_bbox, offset=(r0, c0))
    return roi_result_to_image(res, win.roi, image_shape)
