"""Helpers shared by the mask refinements (ROI coordinates: (0, 0) is the ROI's top-left pixel)."""

from __future__ import annotations

import cv2
import numpy as np

from cyclesiam.tracking.mask_refine.base import RefineInput


def box_on_roi(inp: RefineInput, margin: float, shape: tuple[int, int] | None = None) -> np.ndarray:
    """uint8 0/255 on the ROI (or on `shape`, the ROI resized): the tracker's box grown by `margin`
    times its width/height on each side. Pixel (c, r) is inside when its centre is."""
    r0, r1, c0, c1 = inp.roi
    h, w = shape if shape is not None else (r1 - r0, c1 - c0)
    sy, sx = h / (r1 - r0), w / (c1 - c0)
    x, y, bw, bh = inp.box
    x0, x1 = (x - margin * bw - c0) * sx, (x + bw * (1 + margin) - c0) * sx
    y0, y1 = (y - margin * bh - r0) * sy, (y + bh * (1 + margin) - r0) * sy
    out = np.zeros((h, w), np.uint8)
    # centre c + 0.5 in [x0, x1)  <=>  c in [ceil(x0 - 0.5), ceil(x1 - 0.5))
    cx0, cx1 = max(int(np.ceil(x0 - 0.5)), 0), min(int(np.ceil(x1 - 0.5)), w)
    cy0, cy1 = max(int(np.ceil(y0 - 0.5)), 0), min(int(np.ceil(y1 - 0.5)), h)
    if cx1 > cx0 and cy1 > cy0:
        out[cy0:cy1, cx0:cx1] = 255
    return out


def fill_holes(binary: np.ndarray) -> np.ndarray:
    """Every outer contour filled: holes inside a component become part of it (uint8 0/255)."""
    contours, _ = cv2.findContours((binary > 0).astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    out = np.zeros(binary.shape, np.uint8)
    if contours:
        cv2.drawContours(out, contours, -1, 255, thickness=cv2.FILLED)
    return out


def work_size(roi_shape: tuple[int, int], max_side: int) -> tuple[int, int]:
    """(h, w) of the ROI scaled down so its longer side is at most `max_side` (never up)."""
    h, w = roi_shape
    s = min(1.0, max_side / max(h, w))
    return max(1, int(round(h * s))), max(1, int(round(w * s)))


def resize_to(image: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize to (h, w): area averaging down, bilinear up."""
    h, w = shape
    if image.shape[:2] == (h, w):
        return image
    shrink = h < image.shape[0] or w < image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)


def upscale_binary(small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """A 0/255 mask computed at work size back to the ROI size, edges interpolated (uint8 0/255)."""
    binary = np.where(small > 0, 255, 0).astype(np.uint8)
    if binary.shape[:2] == tuple(shape):
        return binary
    up = cv2.resize(binary, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return cv2.threshold(up, 127, 255, cv2.THRESH_BINARY)[1]
