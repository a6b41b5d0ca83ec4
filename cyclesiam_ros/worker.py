"""The newest-frame worker: one thread runs the tracker on the newest frame; a frame that
arrives while it works replaces the pending one and counts as dropped (no queue, no lag)."""

from __future__ import annotations

import threading
from typing import Callable

from cyclesiam_ros.frame_history import Frame


class NewestFrameWorker:
    def __init__(self, process: Callable[[Frame], None], on_error: Callable[[Frame, Exception], None],
                 name: str = "cyclesiam_worker") -> None:
        self._process = process
        self._on_error = on_error
        self._wake = threading.Condition()
        self._pending: Frame | None = None
        self._running = True
        self._dropped_since_take = 0
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._thread.start()

    def submit(self, frame: Frame) -> bool:
        """Make `frame` the next one to process; True when it replaced an unprocessed frame."""
        with self._wake:
            replaced = self._pending is not None
            if replaced:
                self._dropped_since_take += 1
            self._pending = frame
            self._wake.notify()
        return replaced

    def take_dropped(self) -> int:
        """Frames dropped since the last call."""
        with self._wake:
            dropped, self._dropped_since_take = self._dropped_since_take, 0
        return dropped

    def stop(self, timeout: float = 5.0) -> None:
        with self._wake:
            self._running = False
            self._wake.notify_all()
        self._thread.join(timeout=timeout)

    def _loop(self) -> None:
        while True:
            with self._wake:
                while self._pending is None and self._running:
                    self._wake.wait(timeout=0.5)
                if not self._running:
                    return
                frame, self._pending = self._pending, None
            try:
                self._process(frame)
            except Exception as exc:  # keep serving: one bad frame must not kill the node
                self._on_error(frame, exc)
