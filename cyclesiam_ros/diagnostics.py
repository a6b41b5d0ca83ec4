"""Node statistics and the /diagnostics status built from them."""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue


class NodeStats:
    """Counters and a sliding window of latencies for diagnostics."""

    def __init__(self, window: int = 300) -> None:
        self.received = 0
        self.processed = 0
        self.dropped = 0
        self.bad_images = 0
        self.errors = 0
        self._latencies: deque[float] = deque(maxlen=window)
        self.core_ms: deque[float] = deque(maxlen=window)  # tracker.track() time per frame
        self._processed_times: deque[float] = deque(maxlen=window)
        self._received_at_last: tuple[float, int] = (time.monotonic(), 0)
        self.targets: dict[str, str] = {}

    def record(self, latency: float, results) -> None:
        self.processed += 1
        now = time.monotonic()
        self._latencies.append(latency)
        self._processed_times.append(now)
        self.targets = {r.id: r.state for r in results}

    def summary(self) -> dict[str, Any]:
        now = time.monotonic()
        recent = [t for t in self._processed_times if now - t <= 2.0]
        last_time, last_count = self._received_at_last
        input_rate = (self.received - last_count) / max(now - last_time, 1e-6)
        self._received_at_last = (now, self.received)
        lat = np.array(self._latencies) * 1000.0 if self._latencies else np.zeros(1)
        core = np.array(self.core_ms) if self.core_ms else np.zeros(1)
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
            "targets": ",".join(f"{k}:{v}" for k, v in self.targets.items()),
            "targets_lost": sum(1 for v in self.targets.values() if v == "lost"),
        }


def diagnostic_status(name: str, hardware_id: str, summary: dict[str, Any]) -> DiagnosticStatus:
    """The node's one status: its level and message judged from `summary`, every value attached."""
    status = DiagnosticStatus(name=name, hardware_id=hardware_id)
    status.level, status.message = DiagnosticStatus.OK, "ok"
    if summary["targets_lost"] > 0:
        status.level, status.message = DiagnosticStatus.WARN, f"{summary['targets_lost']} target(s) lost"
    if summary["processed_rate_hz"] == 0 and summary["input_rate_hz"] > 0:
        status.level, status.message = DiagnosticStatus.WARN, "receiving images but processing none"
    status.values = [KeyValue(key=k, value=str(v)) for k, v in summary.items()]
    return status


def diagnostic_array(status: DiagnosticStatus, stamp) -> DiagnosticArray:
    array = DiagnosticArray()
    array.header.stamp = stamp
    array.status = [status]
    return array
