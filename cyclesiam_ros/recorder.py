"""`~/record`: the frames the node accepts, written to an MCAP bag (rosbag2) for `cyclesiam-adapt --data BAG`.

Same topic name, original header stamps (also the bag's log times) and message type as received
(sensor_msgs/Image or CompressedImage, the CDR bytes rclpy serialises). Every n-th frame is kept; a
recording stops by itself at its frame or byte bound and is closed on stop and on node shutdown.
Beside the frames, the node's own `~/detections` (vision_msgs/Detection2DArray, the TRACKING targets)
of each recorded frame it tracked, under that topic's full name and the frame's stamp: the seeds of
`cyclesiam-adapt --seed-topic`. The image callback only hands the message to a bounded queue (a frame
that finds it full is counted and not recorded); one writer thread serialises and writes.
"""

from __future__ import annotations

import datetime
import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from cyclesiam.bag_types import vision_msgs_typestore
from cyclesiam_ros.messages import stamp_ns


class RecordError(RuntimeError):
    """A recording cannot start (already recording, the bag folder exists, ...)."""


@dataclass(frozen=True)
class RecordLimits:
    max_frames: int
    max_bytes: int  # serialized message bytes in the bag (the frames and their tracked boxes)
    every_nth: int


@dataclass
class Summary:
    path: Path | None = None
    topic: str = ""
    frames: int = 0
    bytes: int = 0
    dropped: int = 0  # kept frames that found the writer queue full
    stopped: str = ""  # "" while recording; else why: "stop request", "max_frames", "max_bytes", "shutdown", "error: ..."
    results_topic: str = ""  # "" when the node's detections are not recorded
    results: int = 0  # detection messages written
    results_dropped: int = 0  # detection messages of recorded frames that found the writer queue full

    def describe(self) -> str:
        state = "recording" if not self.stopped else f"stopped ({self.stopped})"
        results = f" and {self.results} tracked-box message(s) of {self.results_topic}" if self.results_topic else ""
        if self.results_dropped:
            results += f" ({self.results_dropped} not recorded: writer queue full)"
        return (f"{state}: {self.frames} frame(s){results}, {self.bytes / 2**20:.1f} MiB of {self.topic} in "
                f"{self.path}; {self.dropped} frame(s) not recorded (writer queue full)")


def ros_type_name(msg: Any) -> str:
    """'sensor_msgs/msg/Image' for an rclpy message instance."""
    return f"{type(msg).__module__.split('.')[0]}/msg/{type(msg).__name__}"


# recorded frames whose tracked boxes may still come: a frame's result is published a few frames after
# it arrived at most (the tracker works on the newest frame only)
PENDING_RESULT_STAMPS = 64


class BagRecorder:
    """One recording at a time: `start`, `offer` (image callback, never blocks), `offer_result`
    (the tracked boxes of a frame, never blocks), `stop`."""

    def __init__(self, queue_size: int, log: Callable[[str], None] = print) -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=queue_size)  # (topic, message, is_frame)
        self._recorded: deque[int] = deque(maxlen=PENDING_RESULT_STAMPS)  # stamps of the frames queued
        self._log = log
        self._lock = threading.Lock()  # guards _active, _seen, _recorded and the summary counters
        self._active = False
        self._seen = 0
        self._limits = RecordLimits(1, 1, 1)
        self._summary = Summary()
        self._thread: threading.Thread | None = None
        self._stop_reason = ""

    @property
    def active(self) -> bool:
        return self._active

    def summary(self) -> Summary:
        with self._lock:
            return Summary(**vars(self._summary))

    def start(self, path: Path, topic: str, limits: RecordLimits, results_topic: str = "") -> Summary:
        """Open a new bag at `path` (must not exist) for `topic` (and `results_topic`, the tracked boxes
        of the recorded frames, when given); RecordError when recording or unusable."""
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        if self._active:
            raise RecordError(f"already recording ({self.summary().describe()}); stop it first")
        if self._thread is not None:
            self._thread.join()  # a recording that stopped at its bound: its writer is closed
        if path.exists():
            raise RecordError(f"{path} exists already; name a new bag folder (or leave path empty)")
        writer = Writer(path, version=9, storage_plugin=StoragePlugin.MCAP)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            writer.open()
        except (OSError, WriterError) as exc:
            raise RecordError(f"cannot create the bag {path}: {exc}") from None
        with self._lock:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._summary = Summary(path=path, topic=topic, results_topic=results_topic)
            self._limits, self._seen, self._stop_reason = limits, 0, ""
            self._recorded.clear()
            self._active = True
        self._thread = threading.Thread(target=self._write_loop, args=(writer,), name="cyclesiam_recorder",
                                        daemon=True)
        self._thread.start()
        return self.summary()

    def offer(self, msg: Any) -> None:
        """The image callback's part: keep every n-th message, queue it or count it as not recorded."""
        if not self._active:  # unlocked fast path; the locked check below decides
            return
        with self._lock:
            if not self._active:
                return
            self._seen += 1
            if (self._seen - 1) % self._limits.every_nth:
                return
            try:
                self._queue.put_nowait((self._summary.topic, msg, True))
            except queue.Full:
                self._summary.dropped += 1
                return
            if self._summary.results_topic:
                self._recorded.append(stamp_ns(msg.header))

    def wants_result(self, header: Any) -> bool:
        """Whether the tracked boxes of the frame with this header belong in the recording."""
        if not self._active:  # unlocked fast path
            return False
        with self._lock:
            return self._active and bool(self._summary.results_topic) and stamp_ns(header) in self._recorded

    def offer_result(self, msg: Any) -> None:
        """The tracked boxes (Detection2DArray) of a recorded frame; anything else is ignored."""
        with self._lock:
            if not (self._active and self._summary.results_topic) or stamp_ns(msg.header) not in self._recorded:
                return
            self._recorded.remove(stamp_ns(msg.header))  # one message per frame
            try:
                self._queue.put_nowait((self._summary.results_topic, msg, False))
            except queue.Full:
                self._summary.results_dropped += 1

    def stop(self, reason: str = "stop request", timeout: float = 30.0) -> Summary:
        """Stop taking frames, write the queued ones, close the bag; the summary of the recording."""
        with self._lock:
            was_active, self._active = self._active, False
            if was_active:
                self._stop_reason = reason
        if self._thread is not None:
            self._thread.join(timeout)
        return self.summary()

    def _write_loop(self, writer) -> None:
        from rclpy.serialization import serialize_message

        typestore = vision_msgs_typestore()  # the Jazzy types and vision_msgs (the tracked boxes)
        connections: dict[str, Any] = {}
        reason = ""
        try:
            while True:
                try:
                    topic, msg, is_frame = self._queue.get(timeout=0.1)
                except queue.Empty:
                    if not self._active:
                        break
                    continue
                data = serialize_message(msg)
                with self._lock:
                    full = self._summary.bytes + len(data) > self._limits.max_bytes
                if full:
                    reason = "max_bytes"
                    break
                if topic not in connections:
                    connections[topic] = writer.add_connection(topic, ros_type_name(msg), typestore=typestore)
                writer.write(connections[topic], stamp_ns(msg.header) or time.time_ns(), data)
                with self._lock:
                    self._summary.bytes += len(data)
                    if not is_frame:
                        self._summary.results += 1
                        continue
                    self._summary.frames += 1
                    if self._summary.frames >= self._limits.max_frames:
                        reason = "max_frames"
                        break
        except Exception as exc:  # disk full, unwritable folder: the node keeps tracking
            reason = f"error: {exc!r}"[:300]
        finally:
            try:
                writer.close()
            except Exception as exc:
                reason = reason or f"error closing the bag: {exc!r}"[:300]
            with self._lock:
                self._active = False
                self._summary.stopped = self._stop_reason or reason or "stop request"
                while not self._queue.empty():  # frames offered after the bound: not recorded
                    self._queue.get_nowait()
            if reason:
                self._log(f"record: {self._summary.describe()}")


def limits_for(request: Any, settings: Any) -> RecordLimits:
    """A Record request's bounds; 0 takes the node parameter (record_max_frames, record_max_mb,
    record_every_nth)."""
    return RecordLimits(
        max_frames=int(request.max_frames) or settings.record_max_frames,
        max_bytes=int(request.max_bytes) or settings.record_max_mb << 20,
        every_nth=int(request.every_nth) or settings.record_every_nth,
    )


def bag_path(requested: str, record_dir: str) -> Path:
    """The bag folder: the requested path (~ expanded), else a new record_<UTC time> under record_dir."""
    if requested:
        return Path(requested).expanduser()
    base = Path(record_dir).expanduser()
    name = "record_" + datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d_%H%M%S")
    path, n = base / name, 1
    while path.exists():
        path, n = base / f"{name}_{n}", n + 1
    return path


class RecordService:
    """The node's `~/record` service around one BagRecorder (created by the node in one line)."""

    def __init__(self, node: Any) -> None:
        from cyclesiam_ros.srv import Record

        self._node = node
        self.recorder = BagRecorder(node.settings.record_queue, lambda text: node.get_logger().info(text))
        node.create_service(Record, "~/record", self.on_record)

    def offer(self, msg: Any) -> None:
        self.recorder.offer(msg)

    def wants_result(self, header: Any) -> bool:
        return self.recorder.wants_result(header)

    def offer_result(self, msg: Any) -> None:
        self.recorder.offer_result(msg)

    def on_record(self, request: Any, response: Any) -> Any:
        from cyclesiam_ros.log_throttle import log_outcome, untrusted

        response.success = False
        try:
            if request.start:
                path = bag_path(request.path, self._node.settings.record_dir)
                limits = limits_for(request, self._node.settings)
                results = self._node.pub_detections.topic_name if self._node.settings.record_detections else ""
                done = self.recorder.start(path, self._node.image_topic, limits, results)
                boxes = f" with their tracked boxes ({results})" if results else ""
                response.message = (f"recording 1 in {limits.every_nth} frame(s) of {done.topic}{boxes} to {path} "
                                    f"(at most {limits.max_frames} frames, {limits.max_bytes / 2**20:.1f} MiB)")
                response.success = True
            elif self.recorder.active:
                done = self.recorder.stop()
                response.message, response.success = done.describe(), True
            else:
                done = self.recorder.summary()
                response.message = "not recording" + (f"; the last recording {done.describe()}" if done.path else "")
            response.path = str(done.path or "")
            response.frames_written = done.frames
        except RecordError as exc:
            response.message = untrusted(str(exc), 400)
        except Exception as exc:  # never let a request take the node down
            response.message = f"internal error: {untrusted(repr(exc), 200)}"
        log_outcome(self._node.get_logger(), response.success, f"record: {response.message}")
        return response

    def close(self) -> None:
        if self.recorder.active:
            self._node.get_logger().info(f"record: {self.recorder.stop('shutdown').describe()}")


__all__ = ["PENDING_RESULT_STAMPS", "BagRecorder", "RecordError", "RecordLimits", "RecordService", "Summary",
           "bag_path", "limits_for", "ros_type_name"]
