"""Log lines about untrusted input: one line per kind of problem per period, and strings escaped.

A misconfigured camera at 30 Hz must not flood the log, and a camera or client must not be able
to write into it: the throttle key is a fixed kind chosen by the code (never the message, which
holds byte counts and untrusted text), lines held back are counted and the count goes out with
the next line of that kind, and every untrusted string goes through `untrusted()` first.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

UNTRUSTED_LIMIT = 64  # characters of an untrusted string that reach a log line or a reply
MAX_KINDS = 256  # kinds are fixed strings in the code; the cap only guards against misuse


def untrusted(value: object, limit: int = UNTRUSTED_LIMIT) -> str:
    """`value` as a printable one-line string of at most `limit` characters (plus a length note).

    Control characters (newline, escape, ...) and other non-printable characters become `\\xNN` /
    `\\uNNNN` escapes, so the text can neither split a log line nor forge one.
    """
    text = value if isinstance(value, str) else str(value)
    out: list[str] = []
    used = 0
    for index, char in enumerate(text):
        piece = char if char.isprintable() else _escape(char)
        if used + len(piece) > limit:
            return "".join(out) + f"...(+{len(text) - index} chars)"
        out.append(piece)
        used += len(piece)
    return "".join(out)


def log_outcome(logger, success: bool, text: str) -> None:
    """A service's answer in the node log: info when it succeeded, warning when it was refused
    (two call sites: rclpy refuses two severities from one)."""
    if success:
        logger.info(text)
    else:
        logger.warning(text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


class LogThrottle:
    """Admits one line per kind per `period_s` and counts the lines it holds back."""

    def __init__(self, period_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.period_s = period_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}
        self._lock = threading.Lock()

    def admit(self, kind: str) -> int | None:
        """None when a line of `kind` must be held back; else how many were held back before it."""
        now = self._clock()
        with self._lock:
            last = self._last.get(kind)
            if last is not None and now - last < self.period_s:
                self._suppressed[kind] = self._suppressed.get(kind, 0) + 1
                return None
            if last is None and len(self._last) >= MAX_KINDS:
                self._forget_oldest()
            self._last[kind] = now
            return self._suppressed.pop(kind, 0)

    def suppressed(self, kind: str) -> int:
        with self._lock:
            return self._suppressed.get(kind, 0)

    def _forget_oldest(self) -> None:
        oldest = min(self._last, key=self._last.__getitem__)
        del self._last[oldest]
        self._suppressed.pop(oldest, None)


class ThrottledLogger:
    """An rclpy logger (or anything with warning/error/info) behind a `LogThrottle`.

    `logger.warning("bad_step", text)` logs `text` at once the first time, then at most once per
    period for that kind, with "(N similar suppressed)" when lines were held back.
    """

    def __init__(self, logger, period_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._logger = logger
        self.throttle = LogThrottle(period_s, clock)

    # rclpy ties a severity to the line that calls the logger (a second severity from the same
    # line raises ValueError): each severity has its own call.
    def info(self, kind: str, text: str) -> bool:
        line = self._admit(kind, text)
        if line is not None:
            self._logger.info(line)
        return line is not None

    def warning(self, kind: str, text: str) -> bool:
        line = self._admit(kind, text)
        if line is not None:
            self._logger.warning(line)
        return line is not None

    def error(self, kind: str, text: str) -> bool:
        line = self._admit(kind, text)
        if line is not None:
            self._logger.error(line)
        return line is not None

    def _admit(self, kind: str, text: str) -> str | None:
        """`text` (with the count held back) when a line of `kind` may go out now, else None."""
        held_back = self.throttle.admit(kind)
        if held_back is None:
            return None
        return f"{text} ({held_back} similar suppressed since the last one)" if held_back else text
