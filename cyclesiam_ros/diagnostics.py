"""Node statistics and the /diagnostics status judged from them.

Levels, per diagnostics period: ERROR when every frame that arrived failed (bad images,
tracking errors); WARN when no image arrived for `diagnostics_stale_after` s (a dead
camera), when some frames failed, when more than `diagnostics_drop_warn` of the frames were
dropped, when images arrive but none is processed, or when a target is LOST; else OK.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

COUNTERS = ("received", "processed", "dropped", "bad_images", "errors")


@dataclass(frozen=True)
class Thresholds:
    stale_after: float  # s without any image before WARN
    drop_warn: float  # dropped share of a period's frames above which WARN


class NodeStats:
    """Counters, their change since the last summary (the period), and a sliding window of
    latencies for diagnostics."""

    def __init__(self, window: int = 300) -> None:
        self.received = 0  # images converted and handed to the worker
        self.processed = 0  # frames tracked and published
        self.dropped = 0  # frames replaced by a newer one before the worker took them
        self.bad_images = 0  # images that could not be converted
        self.errors = 0  # frames on which tracking raised
        self._latencies: deque[float] = deque(maxlen=window)
        self.core_ms: deque[float] = deque(maxlen=window)  # tracker.track() time per frame
        self._processed_times: deque[float] = deque(maxlen=window)
        self._started = self._last_summary = time.monotonic()
        self._last_input: float | None = None
        self._at_last_summary = dict.fromkeys(COUNTERS, 0)
        self.targets: dict[str, str] = {}

    def input_arrived(self) -> None:
        """Any image message arrived (good or bad): the camera is alive."""
        self._last_input = time.monotonic()

    def record(self, latency: float, results) -> None:
        self.processed += 1
        now = time.monotonic()
        self._latencies.append(latency)
        self._processed_times.append(now)
        self.targets = {r.id: r.state for r in results}

    def summary(self) -> dict[str, Any]:
        """Rates, latencies, totals and the counts of the period since the previous call."""
        now = time.monotonic()
        recent = [t for t in self._processed_times if now - t <= 2.0]
        totals = {name: getattr(self, name) for name in COUNTERS}
        period = {name: totals[name] - self._at_last_summary[name] for name in COUNTERS}
        input_rate = period["received"] / max(now - self._last_summary, 1e-6)
        self._at_last_summary, self._last_summary = totals, now
        lat = np.array(self._latencies) * 1000.0 if self._latencies else np.zeros(1)
        core = np.array(self.core_ms) if self.core_ms else np.zeros(1)
        since_input = now - (self._last_input if self._last_input is not None else self._started)
        return {
            "processed_rate_hz": round(len(recent) / 2.0, 2),
            "input_rate_hz": round(input_rate, 2),
            "latency_p50_ms": round(float(np.percentile(lat, 50)), 2),
            "latency_p95_ms": round(float(np.percentile(lat, 95)), 2),
            "core_tracker_p50_ms": round(float(np.percentile(core, 50)), 2),
            "frames_received": self.received,
            "frames_processed": self.processed,
            "frames_dropped": self.dropped,
            "bad_images": self.bad_images,
            "errors": self.errors,
            "period_images": period["received"] + period["bad_images"],
            "period_received": period["received"],
            "period_processed": period["processed"],
            "period_dropped": period["dropped"],
            "period_bad_images": period["bad_images"],
            "period_errors": period["errors"],
            "seconds_since_input": round(since_input, 2),
            "input_seen": self._last_input is not None,
            "targets": ",".join(f"{k}:{v}" for k, v in self.targets.items()),
            "targets_lost": sum(1 for v in self.targets.values() if v == "lost"),
        }


def judge(summary: dict[str, Any], thresholds: Thresholds) -> tuple[bytes, str]:
    """The level and message of one period's `summary` (see the module docstring)."""
    failed = summary["period_bad_images"] + summary["period_errors"]
    failures = f"{summary['period_bad_images']} bad image(s), {summary['period_errors']} tracking error(s)"
    taken = summary["period_received"] - summary["period_dropped"]  # handed to the tracker (or still pending)
    if failed and summary["period_processed"] == 0 and taken <= summary["period_errors"]:
        return DiagnosticStatus.ERROR, f"every frame of the last period failed: {failures}"
    warnings = []
    if summary["seconds_since_input"] > thresholds.stale_after:
        never = "" if summary["input_seen"] else " (none yet)"
        warnings.append(f"no image for {summary['seconds_since_input']:.1f} s{never}")
    if failed:
        warnings.append(f"frames failed in the last period: {failures}")
    images = summary["period_images"]
    if images and summary["period_dropped"] / images > thresholds.drop_warn:
        warnings.append(f"dropped {summary['period_dropped']} of {images} frames (the node is slower than the input)")
    if summary["processed_rate_hz"] == 0 and summary["input_rate_hz"] > 0:
        warnings.append("receiving images but processing none")
    if summary["targets_lost"] > 0:
        warnings.append(f"{summary['targets_lost']} target(s) lost")
    if warnings:
        return DiagnosticStatus.WARN, "; ".join(warnings)
    return DiagnosticStatus.OK, "ok"


def diagnostic_status(name: str, hardware_id: str, summary: dict[str, Any], thresholds: Thresholds) -> DiagnosticStatus:
    """The node's one status: its level and message judged from `summary`, every value attached."""
    status = DiagnosticStatus(name=name, hardware_id=hardware_id)
    status.level, status.message = judge(summary, thresholds)
    status.values = [KeyValue(key=k, value=str(v)) for k, v in summary.items()]
    return status


def diagnostic_array(status: DiagnosticStatus, stamp) -> DiagnosticArray:
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [status]
    return array
