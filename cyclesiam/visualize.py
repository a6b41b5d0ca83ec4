"""Overlay of tracking results on a frame (debug image, annotated videos, contact sheets)."""

from __future__ import annotations

from typing import Iterable, Sequence

import cv2
import numpy as np

# BGR colours, one per target in turn
PALETTE = [(0, 200, 255), (255, 120, 0), (60, 220, 60), (200, 60, 255), (0, 80, 255), (255, 255, 0)]
LOST_COLOUR = (0, 0, 255)


def colour_for(index: int) -> tuple[int, int, int]:
    return PALETTE[index % len(PALETTE)]


def draw_results(image: np.ndarray, results: Iterable, mask_alpha: float = 0.45) -> np.ndarray:
    """A copy of BGR `image` with each result's mask tint, rotated polygon, box, id, score, state.

    `results` are objects with id, bbox (x, y, w, h), score, state, polygon and optional mask
    (cyclesiam.tracker.TrackResult).
    """
    canvas = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    for index, result in enumerate(results):
        colour = colour_for(index) if result.state == "tracking" else LOST_COLOUR
        if result.mask is not None and result.state == "tracking":
            _tint(canvas, result.mask > 0, colour, mask_alpha)
        x, y, w, h = (int(round(v)) for v in result.bbox)
        thickness = 2 if result.state == "tracking" else 1
        cv2.rectangle(canvas, (x, y), (x + w, y + h), colour, thickness)
        if result.polygon is not None and len(result.polygon) >= 3 and result.state == "tracking":
            pts = np.asarray(result.polygon, dtype=np.float32).round().astype(np.int32)
            cv2.polylines(canvas, [pts], True, colour, 1, cv2.LINE_AA)
        label = f"{result.id} {result.score:.2f}" + ("" if result.state == "tracking" else " LOST")
        _label(canvas, label, (x, max(12, y - 4)), colour)
    return canvas


def draw_text_lines(image: np.ndarray, lines: Sequence[str]) -> np.ndarray:
    """Top-left status text (frame number, fps, latency) on `image`, in place."""
    for row, line in enumerate(lines):
        _label(image, line, (6, 16 + 16 * row), (255, 255, 255))
    return image


def contact_sheet(frames: Sequence[np.ndarray], columns: int = 4, width: int = 320) -> np.ndarray:
    """Frames resized to `width` and tiled row by row into one image."""
    if not frames:
        raise ValueError("no frames for the contact sheet")
    tiles = []
    for frame in frames:
        scale = width / frame.shape[1]
        tiles.append(cv2.resize(frame, (width, int(round(frame.shape[0] * scale))), interpolation=cv2.INTER_AREA))
    height = max(t.shape[0] for t in tiles)
    rows = []
    for start in range(0, len(tiles), columns):
        row = tiles[start : start + columns]
        row += [np.zeros_like(tiles[0])] * (columns - len(row))
        rows.append(np.hstack([cv2.copyMakeBorder(t, 0, height - t.shape[0], 0, 0, cv2.BORDER_CONSTANT) for t in row]))
    return np.vstack(rows)


def _tint(canvas: np.ndarray, mask: np.ndarray, colour: tuple[int, int, int], alpha: float) -> None:
    """Blend `colour` into `canvas` where the bool HxW `mask` is set."""
    if mask.shape != canvas.shape[:2] or not mask.any():
        return
    # the mask's bounding rectangle blended whole, then copied where the mask is: the same values as
    # blending the masked pixels, without a full-frame boolean gather and scatter (~4x faster)
    x, y, w, h = cv2.boundingRect(mask.view(np.uint8))
    window, inside = canvas[y : y + h, x : x + w], mask[y : y + h, x : x + w]
    blended = (window.astype(np.float32) * (1 - alpha) + np.array(colour, np.float32) * alpha).astype(np.uint8)
    np.copyto(window, blended, where=inside[..., None])


def _label(canvas: np.ndarray, text: str, origin: tuple[int, int], colour: tuple[int, int, int]) -> None:
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(canvas, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.45, colour, 1, cv2.LINE_AA)
