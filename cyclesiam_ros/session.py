"""A client session with a running tracker node: plays frames as sensor_msgs/Image (or
CompressedImage), calls its services and records everything it publishes. Used by the demo,
the latency benchmark and the integration tests (real DDS; keep it on localhost)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from dataclasses import dataclass, field

import cv2
import numpy as np
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy

from cyclesiam_ros.messages import stamp_ns



@dataclass
class Received:
    detections: list = field(default_factory=list)
    detection: list = field(default_factory=list)
    masks: list = field(default_factory=list)
    status: list = field(default_factory=list)
    debug: list = field(default_factory=list)
    diagnostics: list = field(default_factory=list)
    arrival: dict = field(default_factory=dict)  # stamp_ns -> monotonic time of first detections/status




class TrackerSession:
    def __init__(self, rclpy_module, namespace: str, image_topic: str, frame_id: str = "camera",
                 subscribe_debug: bool = False, compressed: bool = False):
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import CompressedImage, Image
        from vision_msgs.msg import Detection2D, Detection2DArray

        from cyclesiam_ros.msg import TrackStatusArray
        from cyclesiam_ros.srv import RemoveTarget, SetTarget

        self.Image, self.CompressedImage = Image, CompressedImage
        self.SetTarget, self.RemoveTarget = SetTarget, RemoveTarget
        self.node = rclpy_module.create_node(f"cyclesiam_session_{namespace.strip('/').replace('/', '_') or 'root'}")
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.frame_id = frame_id
        self.ns = namespace.rstrip("/")
        self.received = Received()
        self._lock = threading.Lock()
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.compressed = compressed
        if compressed:
            self.image_pub = self.node.create_publisher(CompressedImage, image_topic + "/compressed", qos)
        else:
            self.image_pub = self.node.create_publisher(Image, image_topic, qos)
        base = f"{self.ns}/cyclesiam_tracker"
        self.target_pub = self.node.create_publisher(Detection2D, f"{base}/target", 10)
        sub_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.node.create_subscription(Detection2DArray, f"{base}/detections", self._keep("detections"), sub_qos)
        self.node.create_subscription(Detection2D, f"{base}/detection", self._keep("detection"), sub_qos)
        self.node.create_subscription(Image, f"{base}/mask", self._keep("masks"), sub_qos)
        self.node.create_subscription(TrackStatusArray, f"{base}/status", self._keep("status"), sub_qos)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._keep("diagnostics"), 10)
        if subscribe_debug:
            self.node.create_subscription(Image, f"{base}/debug_image", self._keep("debug"), sub_qos)
        self.set_client = self.node.create_client(SetTarget, f"{base}/set_target")
        self.remove_client = self.node.create_client(RemoveTarget, f"{base}/remove_target")
        self.published: list[int] = []
        self.sent_at: dict[int, float] = {}  # stamp -> time.monotonic() at publish
        self._stamp = 1_000_000_000

    def _keep(self, name: str):
        def callback(msg):
            with self._lock:
                getattr(self.received, name).append(msg)
                if name in ("detections", "status") and hasattr(msg, "header"):
                    self.received.arrival.setdefault((name, stamp_ns(msg.header)), time.monotonic())
        return callback

    # -------------------------------------------------------------- waiting

    def wait_ready(self, timeout: float = 60.0) -> None:
        if not self.set_client.wait_for_service(timeout_sec=timeout):
            raise TimeoutError(f"tracker node services never appeared under {self.ns or '/'}")
        if not self.spin_until(lambda: self.image_pub.get_subscription_count() > 0, 20):
            raise TimeoutError(f"tracker node never subscribed to {self.image_pub.topic_name}")

    def spin(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=0.01)

    def spin_until(self, predicate, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            self.executor.spin_once(timeout_sec=0.01)
        return bool(predicate())

    # -------------------------------------------------------------- input

    def next_stamp(self, step_ns: int = 33_333_333) -> int:
        self._stamp += step_ns
        return self._stamp

    def image_msg(self, frame: np.ndarray, stamp: int, encoding: str = "bgr8"):
        if self.compressed:
            msg = self.CompressedImage()
            msg.format = "jpeg"
            msg.data = cv2.imencode(".jpg", frame)[1].tobytes()
        else:
            msg = self.Image()
            msg.height, msg.width = frame.shape[:2]
            msg.encoding = encoding
            msg.step = frame.shape[1] * (frame.shape[2] if frame.ndim == 3 else 1)
            msg.data = np.ascontiguousarray(frame).tobytes()
        msg.header.frame_id = self.frame_id
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        return msg

    def publish_frame(self, frame: np.ndarray, stamp: int | None = None) -> int:
        stamp = self.next_stamp() if stamp is None else stamp
        self.sent_at[stamp] = time.monotonic()
        self.image_pub.publish(self.image_msg(frame, stamp))
        self.published.append(stamp)
        return stamp

    def publish_until_seen(self, frame: np.ndarray, timeout: float = 10.0) -> int:
        """Publish `frame` (new stamp each time) until the node reports processing it; returns
        that stamp. Best-effort delivery can drop the first samples after discovery."""
        from_status = lambda s: any(stamp_ns(m.header) == s for m in self.received.status)  # noqa: E731
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            stamp = self.publish_frame(frame)
            if self.spin_until(lambda: from_status(stamp), 0.2):
                return stamp
        raise TimeoutError(f"the node never processed a frame published on {self.image_pub.topic_name}")

    def play(self, frames, rate_hz: float, step_ns: int = 33_333_333) -> list[int]:
        """Publish frames at `rate_hz` (stamps `step_ns` apart), spinning (receiving) in
        between; returns the stamps (send times in `sent_at`)."""
        period = 1.0 / rate_hz
        stamps = []
        start = time.monotonic()
        for i, frame in enumerate(frames):
            stamps.append(self.publish_frame(frame, self.next_stamp(step_ns)))
            deadline = start + (i + 1) * period
            while time.monotonic() < deadline:
                self.executor.spin_once(timeout_sec=max(0.0, min(0.005, deadline - time.monotonic())))
        return stamps

    # -------------------------------------------------------------- services

    def call(self, client, request, timeout: float = 20.0, resend_every: float | None = None):
        """The response to `request`. With `resend_every` (idempotent requests only) the request is
        sent again when no answer came within that many seconds: DDS can drop a service's first
        response when the client's response reader is not yet matched, although the service is
        already discovered (ros2/rmw_fastrtps#390 waits only 100 ms for it)."""
        deadline = time.monotonic() + timeout
        pending = []
        try:
            while time.monotonic() < deadline:
                pending.append(client.call_async(request))
                wait = deadline - time.monotonic() if resend_every is None else resend_every
                if self.spin_until(lambda: any(f.done() for f in pending), min(wait, deadline - time.monotonic())):
                    return next(f for f in pending if f.done()).result()
        finally:
            for future in pending:
                if not future.done():
                    client.remove_pending_request(future)
        raise TimeoutError(f"service {client.srv_name} did not answer within {timeout} s")

    def set_target(self, box, target_id: str = "", stamp: int = 0, frame_id: str = "", mask=None):
        req = self.SetTarget.Request()
        x, y, w, h = box
        req.bbox.center.position.x, req.bbox.center.position.y = x + w / 2, y + h / 2
        req.bbox.size_x, req.bbox.size_y = float(w), float(h)
        req.id = target_id
        req.header.frame_id = frame_id
        req.header.stamp.sec, req.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
        if mask is not None:
            req.mask.height, req.mask.width = mask.shape
            req.mask.encoding, req.mask.step = "mono8", mask.shape[1]
            req.mask.data = np.ascontiguousarray(mask).tobytes()
        return self.call(self.set_client, req)

    def remove_target(self, target_id: str = ""):
        return self.call(self.remove_client, self.RemoveTarget.Request(id=target_id))

    def clear_received(self) -> None:
        with self._lock:
            self.received = Received()

    def close(self) -> None:
        self.executor.remove_node(self.node)
        self.node.destroy_node()


def use_large_frame_profile(profile: Path) -> None:
    """Point Fast DDS (this process and children started afterwards) at a profile with large
    shared-memory segments. Fast DDS 2.x (Humble/Jazzy) reads FASTRTPS_DEFAULT_PROFILES_FILE,
    3.x reads FASTDDS_DEFAULT_PROFILES_FILE; a value the user already set wins."""
    import os

    for name in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):
        os.environ.setdefault(name, str(profile))


def start_tracker_node(namespace: str, image_topic: str, log_path: Path, params_file: Path | None = None,
                       params: list[str] = ()) -> subprocess.Popen:
    """Run `tracker_node` in its own process under `namespace`, image remapped to `image_topic`,
    output to `log_path` (a file, so a chatty node never blocks on a full pipe)."""
    cmd = tracker_node_command(namespace, image_topic, params_file, params)
    return subprocess.Popen(cmd, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT)


def tracker_node_command(namespace: str, image_topic: str, params_file: Path | None = None,
                         params: list[str] = ()) -> list[str]:
    """The command line that runs `tracker_node` under `namespace` with its image input
    (raw and compressed) remapped to `image_topic`."""
    cmd = [sys.executable, "-m", "cyclesiam_ros.tracker_node", "--ros-args",
           "-r", f"__ns:={namespace}", "-r", f"image:={image_topic}",
           "-r", f"image/compressed:={image_topic}/compressed"]
    if params_file is not None:
        cmd += ["--params-file", str(params_file)]
    for item in params:
        cmd += ["-p", item]
    return cmd


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> int:
    """SIGINT (what Ctrl-C / ros2 launch send), then kill if it does not exit."""
    if proc.poll() is None:
        proc.send_signal(2)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
