"""A short history of received frames, so a box drawn on a past frame is applied to it.

Kept sorted by stamp: a frame that arrives a little late (out-of-order delivery, a driver that
stamps jittery) is inserted in its place; only a jump back of more than `reset_jump_ns` (a bag
loop, a clock reset) clears the history. Bounded by a frame count and by bytes of pixels.
"""

from __future__ import annotations

import bisect
import enum
import threading
from dataclasses import dataclass

import numpy as np

DEFAULT_RESET_JUMP_NS = 1_000_000_000  # a stamp more than 1 s older than the newest: time restarted
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


@dataclass
class Frame:
    stamp_ns: int
    frame_id: str
    image: np.ndarray  # HxWx3 uint8 BGR
    received: float  # time.monotonic() at reception
    header: object  # the input std_msgs/Header (outputs carry it)


class Added(enum.Enum):
    """What `FrameHistory.add` did with a frame."""

    APPENDED = "appended"  # newest so far
    INSERTED = "inserted"  # older than the newest, stored in stamp order
    DROPPED = "dropped"  # older than every frame of a full history: not kept
    RESET = "reset"  # time jumped back more than reset_jump_ns: history cleared, frame stored


class FrameHistory:
    """Thread-safe, stamp-sorted store of the last `size` frames (at most `max_bytes` of pixels)."""

    def __init__(self, size: int = 30, max_bytes: int = DEFAULT_MAX_BYTES,
                 reset_jump_ns: int = DEFAULT_RESET_JUMP_NS) -> None:
        self._frames: list[Frame] = []
        self._stamps: list[int] = []
        self._bytes = 0
        self._size = max(1, size)
        self._max_bytes = max_bytes
        self.reset_jump_ns = reset_jump_ns
        self._lock = threading.Lock()

    def resize(self, size: int | None = None, max_bytes: int | None = None) -> None:
        with self._lock:
            if size is not None:
                self._size = max(1, size)
            if max_bytes is not None:
                self._max_bytes = max_bytes
            self._evict()

    def add(self, frame: Frame) -> Added:
        """Store `frame` in stamp order; the result says whether it was in order."""
        with self._lock:
            outcome = Added.APPENDED
            if self._stamps and frame.stamp_ns < self._stamps[-1]:
                if self._stamps[-1] - frame.stamp_ns > self.reset_jump_ns:
                    self._clear()
                    outcome = Added.RESET
                else:
                    outcome = Added.INSERTED
            index = bisect.bisect_right(self._stamps, frame.stamp_ns)
            self._stamps.insert(index, frame.stamp_ns)
            self._frames.insert(index, frame)
            self._bytes += frame.image.nbytes
            evicted = self._evict()
            return Added.DROPPED if index < evicted else outcome

    def _evict(self) -> int:
        """Drop the oldest frames over the count or byte bound (the newest always stays)."""
        drop, remaining, count = 0, self._bytes, len(self._frames)
        while count - drop > 1 and (count - drop > self._size or remaining > self._max_bytes):
            remaining -= self._frames[drop].image.nbytes
            drop += 1
        if drop:
            del self._frames[:drop], self._stamps[:drop]
            self._bytes = remaining
        return drop

    def latest(self) -> Frame | None:
        with self._lock:
            return self._frames[-1] if self._frames else None

    def lookup(self, stamp_ns: int, tolerance_ns: int) -> Frame | None:
        """The stored frame closest to `stamp_ns` within `tolerance_ns`, else None."""
        with self._lock:
            if not self._frames:
                return None
            index = bisect.bisect_left(self._stamps, stamp_ns)
            near = self._frames[max(0, index - 1) : index + 1]
        best = min(near, key=lambda f: abs(f.stamp_ns - stamp_ns))
        return best if abs(best.stamp_ns - stamp_ns) <= tolerance_ns else None

    def span(self) -> tuple[int, int] | None:
        with self._lock:
            if not self._frames:
                return None
            return self._stamps[0], self._stamps[-1]

    def nbytes(self) -> int:
        with self._lock:
            return self._bytes

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def clear(self) -> None:
        with self._lock:
            self._clear()

    def _clear(self) -> None:
        self._frames.clear()
        self._stamps.clear()
        self._bytes = 0
