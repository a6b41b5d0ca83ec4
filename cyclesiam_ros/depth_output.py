"""The node's optional 3D part: aligned depth + camera_info in, the targets in 3D out.

| kind | name | type | notes |
|---|---|---|---|
| sub | `depth` | sensor_msgs/Image 16UC1 (mm) / 32FC1 (m) | aligned to the colour image; sensor-data QoS; paired by stamp (`depth.stamp_tolerance`) |
| sub | `camera_info` | sensor_msgs/CameraInfo | of the colour image; the latest one is used |
| pub | `~/detections_3d` | vision_msgs/Detection3DArray | tracked targets with a 3D output; same id, header = the colour image's |
| pub | `~/target_point` | geometry_msgs/PointStamped | the primary target's 3D centre |
| pub | `~/markers` | visualization_msgs/MarkerArray | box + label per target; built only while subscribed |

Without a depth publisher nothing of this publishes and the node behaves exactly as without
it (`~/status` `depth_status` stays empty). While depth arrives (a message in the last
`ACTIVE_S` seconds), masks are computed for the 3D step and every target's `depth_status`
says "ok" or why it has no 3D output; each problem is also logged, throttled per kind.
The 2D outputs of a frame are published before its 3D step, so bad depth never delays them.
"""

from __future__ import annotations

import threading
import time

from geometry_msgs.msg import PointStamped
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image
from vision_msgs.msg import Detection3DArray
from visualization_msgs.msg import MarkerArray

from cyclesiam.depth3d import Intrinsics, No3D, Target3D, target_3d
from cyclesiam_ros import depth_messages
from cyclesiam_ros.depth_conversion import depth_from_msg, intrinsics_from_info
from cyclesiam_ros.depth_pairing import DepthFrame, DepthPairing
from cyclesiam_ros.image_conversion import ImageConversionError
from cyclesiam_ros.log_throttle import untrusted

ACTIVE_S = 2.0  # depth counts as present while a depth message arrived this recently
OK = "ok"


class Depth3DOutput:
    """Created by the node with `create(node)`; `publish(...)` once per processed frame."""

    def __init__(self, node) -> None:
        self.node = node
        self.pairing = DepthPairing(node.settings.depth.buffer_size)
        self._info: Intrinsics | None = None
        self._info_problem = ""
        self._depth_problem = ""  # why the last depth message was dropped ("" when it was fine)
        self._lock = threading.Lock()
        self._subscriptions: list = []  # for destroy()
        self._publishers: list = []

    @classmethod
    def create(cls, node) -> "Depth3DOutput":
        """Subscriptions and publishers on `node` (none when `depth.enabled` is false)."""
        out = cls(node)
        if not node.settings.depth.enabled:
            out.pub_detections = None
            return out
        out._subscriptions = [
            node.create_subscription(Image, "depth", out.on_depth, qos_profile_sensor_data),
            node.create_subscription(CameraInfo, "camera_info", out.on_camera_info, qos_profile_sensor_data),
        ]
        out.pub_detections = node.create_publisher(Detection3DArray, "~/detections_3d", 5)
        out.pub_point = node.create_publisher(PointStamped, "~/target_point", 5)
        out.pub_markers = node.create_publisher(MarkerArray, "~/markers", 5)
        out._publishers = [out.pub_detections, out.pub_point, out.pub_markers]
        out.depth_topic = node.resolve_topic_name("depth")
        return out

    def destroy(self) -> None:
        """Remove the subscriptions and publishers from the node (a lifecycle deactivate/cleanup)."""
        for sub in self._subscriptions:
            self.node.destroy_subscription(sub)
        for pub in self._publishers:
            self.node.destroy_publisher(pub)
        self._subscriptions, self._publishers = [], []
        self.pub_detections = None  # inactive from now on

    # ------------------------------------------------------------------ input

    def on_depth(self, msg: Image) -> None:
        self.pairing.note_arrival()
        self.pairing.resize(self.node.settings.depth.buffer_size)
        try:
            depth = depth_from_msg(msg, self.node.settings.max_image_pixels)
        except ImageConversionError as exc:
            self._depth_problem = f"depth dropped: {exc}"
            self.node.log.error(exc.kind, f"dropping depth image on {self.depth_topic}: {exc}")
            return
        self._depth_problem = ""
        stamp = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec
        self.pairing.add(DepthFrame(stamp, depth, time.monotonic()))

    def on_camera_info(self, msg: CameraInfo) -> None:
        try:
            info, problem = intrinsics_from_info(msg), ""
        except ImageConversionError as exc:
            info, problem = None, str(exc)
            self.node.log.error(exc.kind, f"camera_info ignored: {exc}")
        with self._lock:
            self._info, self._info_problem = info, problem

    def active(self) -> bool:
        """Whether depth is arriving (then masks are worth computing for the 3D step)."""
        arrival = self.pairing.last_arrival
        return self.pub_detections is not None and arrival is not None and time.monotonic() - arrival < ACTIVE_S

    # ------------------------------------------------------------------ per frame

    def publish(self, frame, results, class_ids: dict[str, str], primary: str | None) -> dict[str, str]:
        """The 3D outputs of one tracked frame; returns each target's `depth_status` (empty
        strings while no depth arrives)."""
        if not self.active():
            return {}
        if not results:  # no targets (any more): clear RViz
            if self.pub_markers.get_subscription_count() > 0:
                self.pub_markers.publish(depth_messages.markers_msg({}, frame.header))
            return {}
        tracked = [r for r in results if r.state == "tracking"]
        targets, status = self._targets(frame, tracked)
        status.update({r.id: "lost: no 3D output" for r in results if r.state != "tracking"})
        header = frame.header
        scores = {r.id: r.score for r in tracked}
        self.pub_detections.publish(depth_messages.detections3d_msg(targets, header, class_ids, scores))
        if primary in targets:
            self.pub_point.publish(depth_messages.point_msg(targets[primary], header))
        if self.pub_markers.get_subscription_count() > 0:
            self.pub_markers.publish(depth_messages.markers_msg(targets, header))
        return status

    def _targets(self, frame, tracked) -> tuple[dict[str, Target3D], dict[str, str]]:
        problem, depth, info = self._inputs_for(frame)
        if problem:
            return {}, {r.id: problem for r in tracked}
        cfg = self.node.settings.depth
        targets, status = {}, {}
        for r in tracked:
            mask = r.mask if r.mask is not None and r.mask.shape == depth.shape else None
            out = target_3d(depth, info, cfg, r.bbox, mask)
            if isinstance(out, No3D):
                status[r.id] = out.message
                self.node.log.warning(f"depth_{out.kind}", f"target '{untrusted(r.id)}' has no 3D output: "
                                      f"{out.message}")
            else:
                targets[r.id], status[r.id] = out, OK
        return targets, status

    def _inputs_for(self, frame):
        """(problem, depth, intrinsics) for `frame`: problem is "" when both can be used."""
        cfg = self.node.settings.depth
        paired = self.pairing.lookup(frame.stamp_ns, int(cfg.stamp_tolerance * 1e9), cfg.wait)
        if paired is None:
            problem = self._depth_problem or self._no_pair_message(frame.stamp_ns)
            return self._report("depth_stamp" if not self._depth_problem else "depth_bad", problem)
        height, width = frame.image.shape[:2]
        if paired.depth.shape != (height, width):
            return self._report("depth_size", f"depth is {paired.depth.shape[1]}x{paired.depth.shape[0]} but the "
                                f"colour image is {width}x{height}: depth must be aligned to the colour image")
        with self._lock:
            info, info_problem = self._info, self._info_problem
        if info is None:
            return self._report("camera_info_missing", info_problem or "no camera_info received yet")
        if (info.width, info.height) != (width, height):
            return self._report("camera_info_size", f"camera_info is for {info.width}x{info.height} but the "
                                f"colour image is {width}x{height}")
        return "", paired.depth, info

    def _no_pair_message(self, stamp_ns: int) -> str:
        newest = self.pairing.newest_stamp()
        tolerance_ms = self.node.settings.depth.stamp_tolerance * 1e3
        if newest is None:
            return "no depth frame received"
        return (f"no depth frame within {tolerance_ms:.0f} ms of the image stamp {stamp_ns} "
                f"(newest depth stamp {newest}, {(newest - stamp_ns) / 1e6:+.0f} ms; raise depth.stamp_tolerance "
                f"or check the clocks)")

    def _report(self, kind: str, problem: str):
        self.node.log.error(kind, f"no 3D output: {problem}")
        return problem, None, None
