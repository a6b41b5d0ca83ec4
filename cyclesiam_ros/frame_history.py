"""A short history of received frames, so a box drawn on a past frame is applied to it."""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass

import numpy as np


@dataclass
class Frame:
    stamp_ns: int
    frame_id: str
    image: np.ndarray  # HxWx3 uint8 BGR
    received: float  # time.monotonic() at reception
    header: object  # the input std_msgs/Header (outputs carry it)


class FrameHistory:
    """Thread-safe ring buffer of the last `size` frames, looked up by stamp."""

    def __init__(self, size: int = 30) -> None:
        self._frames: collections.deque[Frame] = collections.deque(maxlen=max(1, size))
        self._lock = threading.Lock()

    def resize(self, size: int) -> None:
        with self._lock:
            self._frames = collections.deque(self._frames, maxlen=max(1, size))

    def add(self, frame: Frame) -> bool:
        """Store a frame; returns False (and clears the history) when time went backwards."""
        with self._lock:
            went_back = bool(self._frames) and frame.stamp_ns < self._frames[-1].stamp_ns
            if went_back:
                self._frames.clear()
            self._frames.append(frame)
            return not went_back

    def latest(self) -> Frame | None:
        with self._lock:
            return self._frames[-1] if self._frames else None

    def lookup(self, stamp_ns: int, tolerance_ns: int) -> Frame | None:
        """The stored frame closest to `stamp_ns` within `tolerance_ns`, else None."""
        with self._lock:
            if not self._frames:
                return None
            best = min(self._frames, key=lambda f: abs(f.stamp_ns - stamp_ns))
        return best if abs(best.stamp_ns - stamp_ns) <= tolerance_ns else None

    def span(self) -> tuple[int, int] | None:
        with self._lock:
            if not self._frames:
                return None
            return self._frames[0].stamp_ns, self._frames[-1].stamp_ns

    def clear(self) -> None:
        with self._lock:
            self._frames.clear()
