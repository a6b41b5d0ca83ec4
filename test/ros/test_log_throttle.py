"""Throttled logging per kind of problem through a real rclpy logger, and untrusted-string escaping."""

from __future__ import annotations

import rclpy.logging

from cyclesiam_ros.log_throttle import LogThrottle, ThrottledLogger, untrusted


def test_untrusted_strings_are_one_bounded_line():
    assert untrusted("bgr8") == "bgr8"
    assert untrusted("caméra_1") == "caméra_1"
    forged = untrusted("id\n[ERROR] [0.0] [cyclesiam_tracker]: forged\x1b[31m")
    assert "\n" not in forged and "\x1b" not in forged and forged.startswith("id\\x0a[ERROR]")
    long = untrusted("x" * 20000)
    assert long == "x" * 64 + "...(+19936 chars)"
    assert len(untrusted("\n" * 1000)) < 100
    assert untrusted("\u2028a") == "\\u2028a"  # a Unicode line separator splits lines in some viewers


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_one_line_per_kind_then_the_suppressed_count(capfd):
    clock = Clock()
    log = ThrottledLogger(rclpy.logging.get_logger("throttle_test"), period_s=5.0, clock=clock)
    kinds = ["encoding", "step", "data_size", "score"]
    for index in range(40):  # 40 bad inputs of 4 kinds, byte counts in every message
        clock.now = index * 0.01
        log.error(kinds[index % 4], f"bad {kinds[index % 4]}: {1000 + index} bytes")
    lines = [line for line in capfd.readouterr().err.splitlines() if "throttle_test" in line]
    assert len(lines) == 4 and [line.split(": ", 1)[1] for line in lines] == [
        "bad encoding: 1000 bytes", "bad step: 1001 bytes", "bad data_size: 1002 bytes", "bad score: 1003 bytes"]
    clock.now = 6.0
    assert log.error("step", "bad step: 7 bytes")
    assert not log.error("step", "bad step: 8 bytes")
    lines = [line for line in capfd.readouterr().err.splitlines() if "throttle_test" in line]
    assert len(lines) == 1 and lines[0].endswith("bad step: 7 bytes (9 similar suppressed since the last one)")


def test_every_severity_through_one_logger(capfd):
    """rclpy refuses a second severity from one call site: each must log from its own."""
    log = ThrottledLogger(rclpy.logging.get_logger("severity_test"), period_s=5.0, clock=Clock())
    assert log.info("a", "one") and log.warning("b", "two") and log.error("c", "three")
    assert log.warning("d", "four") and log.info("e", "five")
    err = capfd.readouterr().err
    assert [line.split("]", 1)[0] for line in err.splitlines() if "severity_test" in line] == [
        "[INFO", "[WARN", "[ERROR", "[WARN", "[INFO"]


def test_kinds_are_bounded():
    throttle = LogThrottle(period_s=100.0, clock=Clock())
    for index in range(1000):
        assert throttle.admit(f"kind{index}") == 0
    assert len(throttle._last) <= 256
