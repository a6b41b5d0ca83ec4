"""Trackers for the evaluation harness: OpenCV CSRT / KCF baselines, the still box, and our SiamTracker.

All implement the harness protocol (:class:`cyclesiam_train.eval.runner.EvalTracker`):
``init(frame, box, mask=None)`` and ``update(frame) -> (box, score, mask or None)``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np

Box = tuple[float, float, float, float]
OPENCV_TRACKERS = ("csrt", "kcf")
STILL = "still"
BASELINES = (*OPENCV_TRACKERS, STILL)


def _opencv_factory(kind: str) -> Callable[[], Any]:
    """The OpenCV constructor for ``kind`` (main namespace first, then ``cv2.legacy``)."""
    names = {"csrt": "TrackerCSRT_create", "kcf": "TrackerKCF_create"}
    if kind not in names:
        raise ValueError(f"unknown OpenCV tracker '{kind}'; known: {', '.join(OPENCV_TRACKERS)}")
    for namespace in (cv2, getattr(cv2, "legacy", None)):
        if namespace is not None and hasattr(namespace, names[kind]):
            return getattr(namespace, names[kind])
    raise RuntimeError(f"this OpenCV build has no {names[kind]} (install opencv-contrib-python-headless)")


def _int_box(box: Box, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    """An integer box inside the image, at least 2x2 (OpenCV trackers reject empty ROIs)."""
    x, y, w, h = box
    x0 = int(np.clip(round(x), 0, shape[1] - 2))
    y0 = int(np.clip(round(y), 0, shape[0] - 2))
    w0 = int(np.clip(round(w), 2, shape[1] - x0))
    h0 = int(np.clip(round(h), 2, shape[0] - y0))
    return x0, y0, w0, h0


class OpenCVTracker:
    """CSRT or KCF. When OpenCV reports a failure the last box is held with score 0 and ``lost``."""

    def __init__(self, kind: str = "csrt") -> None:
        self.name = kind
        self.backend = "opencv"
        self._factory = _opencv_factory(kind)
        self._tracker: Any = None
        self._last: Box | None = None
        self.lost = False

    def init(self, frame: np.ndarray, box: Box, mask: np.ndarray | None = None) -> None:
        self._tracker = self._factory()
        self.lost = False
        self._tracker.init(frame, _int_box(box, frame.shape))
        self._last = tuple(float(v) for v in box)  # type: ignore[assignment]

    def update(self, frame: np.ndarray) -> tuple[Box | None, float, np.ndarray | None]:
        if self._tracker is None:
            raise RuntimeError("update() before init()")
        ok, box = self._tracker.update(frame)
        self.lost = not (ok and all(math.isfinite(v) for v in box) and box[2] > 0 and box[3] > 0)
        if not self.lost:
            self._last = tuple(float(v) for v in box)  # type: ignore[assignment]
            return self._last, 1.0, None
        return self._last, 0.0, None


class StillBox:
    """The first box, held still on every frame: what a clip gives a tracker that never moves.

    A floor for reading a table: where it scores high, the clip rewards standing still."""

    def __init__(self) -> None:
        self.name = STILL
        self.backend = "none"
        self._box: Box | None = None
        self.lost = False

    def init(self, frame: np.ndarray, box: Box, mask: np.ndarray | None = None) -> None:
        self._box = tuple(float(v) for v in box)  # type: ignore[assignment]

    def update(self, frame: np.ndarray) -> tuple[Box | None, float, np.ndarray | None]:
        if self._box is None:
            raise RuntimeError("update() before init()")
        return self._box, 1.0, None


def make_baseline(kind: str) -> "OpenCVTracker | StillBox":
    """A baseline tracker by name: one of BASELINES."""
    if kind == STILL:
        return StillBox()
    return OpenCVTracker(kind)


class SiamTrackerAdapter:
    """Our SiamTracker (one target), built by :func:`cyclesiam.build.build_tracker`; imported lazily.

    ``config`` is a :class:`cyclesiam.config.Config`: the checkpoint's stored model config
    decides the architecture, the tracker/runtime sections decide inference. ``checkpoint``
    None builds a randomly initialised model from ``config.model`` (harness smoke tests).
    """

    def __init__(self, checkpoint: str | Path | None, config: Any, name: str | None = None) -> None:
        from cyclesiam.build import build_tracker
        from cyclesiam.tracker import LOST

        self.name = name or (Path(checkpoint).stem if checkpoint else "cyclesiam-random")
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self._tracker = build_tracker(config, checkpoint=self.checkpoint)
        self.backend = self._tracker.backend.name  # what runtime.backend resolved to
        self._target: str | None = None
        self._lost_state = LOST
        self.lost = False

    def init(self, frame: np.ndarray, box: Box, mask: np.ndarray | None = None) -> None:
        self._tracker.clear()
        self.lost = False
        m = None if mask is None else (np.asarray(mask) > 0).astype(np.uint8) * 255
        self._target = self._tracker.add_target(frame, tuple(float(v) for v in box), mask=m)

    def update(self, frame: np.ndarray) -> tuple[Box | None, float, np.ndarray | None]:
        results = [r for r in self._tracker.track(frame) if r.id == self._target]
        self.lost = not results or results[0].state == self._lost_state
        if not results:
            return None, 0.0, None
        r = results[0]
        mask = None if getattr(r, "mask", None) is None else np.asarray(r.mask) > 0
        return tuple(float(v) for v in r.bbox), float(r.score), mask  # type: ignore[return-value]


def make_tracker(spec: str, config: Any) -> Any:
    """A harness tracker from a baseline name (``csrt``, ``kcf``, ``still``) or a checkpoint path."""
    if spec in BASELINES:
        return make_baseline(spec)
    return SiamTrackerAdapter(spec, config)
