"""/diagnostics levels judged from one period's counters (the DDS side: test_node_parameters.py)."""

from __future__ import annotations

import pytest
from diagnostic_msgs.msg import DiagnosticStatus

from cyclesiam_ros.diagnostics import NodeStats, Thresholds, judge

pytestmark = pytest.mark.ros
LIMITS = Thresholds(stale_after=2.0, drop_warn=0.5)


def _period(stats: NodeStats, **counts: int) -> dict:
    stats.summary()  # start a new period
    stats.input_arrived()
    for _ in range(counts.pop("processed", 0)):
        stats.record(0.02, [])
    for name, n in counts.items():
        setattr(stats, name, getattr(stats, name) + n)
    return stats.summary()


def test_a_healthy_period_is_ok() -> None:
    assert judge(_period(NodeStats(), received=30, processed=30), LIMITS) == (DiagnosticStatus.OK, "ok")


def test_tracking_errors_in_a_period_warn_and_all_failing_is_an_error() -> None:
    level, message = judge(_period(NodeStats(), received=30, processed=20, errors=10), LIMITS)
    assert level == DiagnosticStatus.WARN and "10 tracking error(s)" in message
    level, message = judge(_period(NodeStats(), received=30, errors=30), LIMITS)
    assert level == DiagnosticStatus.ERROR and "every frame" in message
    level, _ = judge(_period(NodeStats(), received=30, dropped=20, errors=10), LIMITS)
    assert level == DiagnosticStatus.ERROR, "dropped frames were never tried: the tried ones all failed"


def test_a_frame_still_in_the_worker_is_not_a_failure() -> None:
    level, _ = judge(_period(NodeStats(), received=2, bad_images=1), LIMITS)
    assert level == DiagnosticStatus.WARN  # one bad, one pending: not every frame failed


def test_drops_above_the_share_warn() -> None:
    assert judge(_period(NodeStats(), received=30, processed=16, dropped=14), LIMITS)[0] == DiagnosticStatus.OK
    level, message = judge(_period(NodeStats(), received=30, processed=10, dropped=20), LIMITS)
    assert level == DiagnosticStatus.WARN and "dropped 20 of 30" in message


def test_no_input_for_longer_than_stale_after_warns() -> None:
    stats = NodeStats()
    summary = stats.summary()
    summary["seconds_since_input"] = 2.5
    level, message = judge(summary, LIMITS)
    assert level == DiagnosticStatus.WARN and "no image for 2.5 s (none yet)" in message
