"""The depth frames kept for pairing with colour images by stamp: a small bounded buffer, the
nearest stamp within a tolerance, and a bounded wait for a depth frame that is still on its
way (aligned depth often arrives a few ms after its colour image).

The wait never becomes a per-frame cost when it cannot help: after a lookup that found
nothing, the next ones wait again only once a depth frame for the missed stamp arrived within
the wait (depth that comes late), not when stamps never match or depth lags by more."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class DepthFrame:
    stamp_ns: int
    depth: np.ndarray  # HxW uint16 mm or float32 m
    received: float  # time.monotonic()


class DepthPairing:
    """Thread-safe: the subscription thread adds, the tracking worker looks up."""

    def __init__(self, size: int) -> None:
        self._frames: deque[DepthFrame] = deque(maxlen=size)
        self._arrived = threading.Condition()
        self.last_arrival: float | None = None  # monotonic time of the last depth message, good or bad
        self.may_wait = True  # False after a miss, until a depth frame shows that waiting would have found it
        self._missed: tuple[int, int, float, float] | None = None  # stamp, tolerance, when, wait of the last miss

    def resize(self, size: int) -> None:
        with self._arrived:
            if size != self._frames.maxlen:
                self._frames = deque(self._frames, maxlen=size)

    def note_arrival(self) -> None:
        self.last_arrival = time.monotonic()

    def add(self, frame: DepthFrame) -> None:
        with self._arrived:
            self._frames.append(frame)
            if self._missed is not None:
                stamp, tolerance, when, wait = self._missed
                if abs(frame.stamp_ns - stamp) <= tolerance and time.monotonic() - when <= wait:
                    self.may_wait, self._missed = True, None
            self._arrived.notify_all()

    def newest_stamp(self) -> int | None:
        with self._arrived:
            return self._frames[-1].stamp_ns if self._frames else None

    def lookup(self, stamp_ns: int, tolerance_ns: int, wait_s: float) -> DepthFrame | None:
        """The stored frame nearest `stamp_ns` within `tolerance_ns`; while none is stored and a
        later depth frame could still match, wait up to `wait_s` for it."""
        deadline = time.monotonic() + (wait_s if self.may_wait else 0.0)
        with self._arrived:
            while True:
                found = self._nearest(stamp_ns, tolerance_ns)
                newest = self._frames[-1].stamp_ns if self._frames else None
                remaining = deadline - time.monotonic()
                if found is not None or remaining <= 0 or (newest is not None and newest > stamp_ns + tolerance_ns):
                    break
                self._arrived.wait(remaining)
            self.may_wait = found is not None
            self._missed = None if found is not None else (stamp_ns, tolerance_ns, time.monotonic(), wait_s)
        return found

    def _nearest(self, stamp_ns: int, tolerance_ns: int) -> DepthFrame | None:
        best = min(self._frames, key=lambda f: abs(f.stamp_ns - stamp_ns), default=None)
        return best if best is not None and abs(best.stamp_ns - stamp_ns) <= tolerance_ns else None
