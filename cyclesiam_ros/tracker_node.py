"""`tracker_node` (node name `cyclesiam_tracker`): the CycleSiam tracker as a ROS 2 node.

| kind | name | type | notes |
|---|---|---|---|
| sub | `image` | sensor_msgs/Image | remap in launch; sensor-data QoS (reliability: `image_reliability`) |
| sub | `image/compressed` | sensor_msgs/CompressedImage | when `input_transport: compressed` |
| sub | `~/target` | vision_msgs/Detection2D | a detector's box becomes/updates a target |
| srv | `~/set_target` | cyclesiam_ros/srv/SetTarget | start/replace a target |
| srv | `~/remove_target` | cyclesiam_ros/srv/RemoveTarget | one id, or all when empty |
| pub | `~/detections` | vision_msgs/Detection2DArray | tracked targets; header = input image header |
| pub | `~/detection` | vision_msgs/Detection2D | the primary (first set) target while tracked |
| pub | `~/mask` | sensor_msgs/Image mono8 | 255 = target (union); same size/header as input |
| pub | `~/debug_image` | sensor_msgs/Image bgr8 | overlay; built only when subscribed |
| pub | `~/status` | cyclesiam_ros/msg/TrackStatusArray | every target, TRACKING/LOST, score, latency |
| pub | `/diagnostics` | diagnostic_msgs/DiagnosticArray | rates, latency, dropped frames, target states |

Threading: the image callback only converts and stores the newest frame (never blocks on
the network); one worker thread runs the tracker on the newest frame; frames that arrive
while it works replace the pending one and are counted as dropped. Parameters: see
`declare_all_parameters` and config/tracker.yaml.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import deque
from typing import Any

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy, DurabilityPolicy
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2D, Detection2DArray

from cyclesiam.config import Config, RuntimeConfig, TrackerConfig
from cyclesiam.default_model import resolve_checkpoint
from cyclesiam.visualize import draw_results
from cyclesiam_ros import messages
from cyclesiam_ros.frame_history import Frame, FrameHistory
from cyclesiam_ros.image_conversion import ImageConversionError, compressed_to_bgr, image_to_bgr, mask_from_msg
from cyclesiam_ros.msg import TrackStatusArray
from cyclesiam_ros.srv import RemoveTarget, SetTarget

NODE_NAME = "cyclesiam_tracker"

TRACKER_DESCRIPTIONS = {
    "context_amount": "context around the target in the template crop: p = context_amount * (w + h)",
    "penalty_k": "scale/aspect change penalty k in exp(-(r_c*s_c-1)*k) (pysot SiamMask: 0.10)",
    "window_influence": "cosine window weight against the score (pysot SiamMask: 0.41)",
    "lr": "size smoothing rate, multiplied by penalty*score (pysot SiamMask: 0.32)",
    "min_size": "minimum box side in pixels",
    "scale_steps": "scales compared per target, odd: 5 = sizes x scale_step^(-2..2), size from the best; 1 = off",
    "scale_step": "ratio between neighbouring scales (> 1)",
    "scale_penalty": "factor on the similarity/score of the scales other than 1 (1.0: follows zooms faster, drifts more)",
    "scale_calibration": "scale_from score only: on ~/set_target, search the first frame at every scale and damp "
                         "the scales that outscore the given box's there (per target)",
    "center_from": "regression (box offsets, as pysot) | peak (score peak refined to sub-cell precision)",
    "distractor_penalty": "distractor memory: damp candidates near last frame's strong far peaks by this factor "
                          "(score x (1 - penalty)); 0 = off",
    "distractor_score": "raw score at or above which a far peak is remembered as a distractor",
    "distractor_distance": "a peak is a distractor when farther than this many target sizes (sqrt(w*h)) from the target",
    "distractor_radius": "candidates within this many target sizes of a remembered distractor are damped",
    "mask_enabled": "compute masks (only done while ~/mask or ~/debug_image has subscribers)",
    "mask_threshold": "mask probability threshold (paper: 0.5)",
    "template_update": "none (keep first template) | last (every frame) | blend (confidence-gated average)",
    "template_update_rate": "blend weight of the new template",
    "template_update_min_score": "blend only when the score exceeds this",
    "template_update_anchor": "weight of the first template in the search kernel while updating (the template "
                              "similarity always compares with the first)",
    "lost_threshold": "score below which a frame counts towards LOST",
    "recover_threshold": "score at or above which a LOST target is TRACKING again",
    "lost_similarity": "a low-score frame counts towards LOST only when the crop at the new box is less like the "
                       "template than this (cosine of the features); 0 = the score alone decides",
    "recover_similarity": "a LOST target recovers only when the crop at its box is at least this like the template "
                          "(and its score reaches recover_threshold); 0 = the score alone decides",
    "lost_frames": "consecutive low frames before a target is LOST",
    "lost_hold": "true: hold a LOST target's box and search the wider lost_search_size crop; "
                 "false: keep tracking it as usual and only report it LOST",
    "lost_search_size": "search crop size (network pixels) while LOST and lost_hold: a wider search",
    "lost_window_influence": "cosine window weight while LOST and lost_hold (0 = no motion prior)",
}
RUNTIME_DESCRIPTIONS = {
    "device": "auto | cpu | cuda | cuda:N (restart to change)",
    "half": "fp16 inference on CUDA (restart to change)",
    "backend": "auto (onnxruntime on the CPU when installed, else torch) | torch | onnxruntime (restart to change)",
    "providers": "onnxruntime execution providers in order of preference (restart to change)",
    "threads": "intra-op threads of the network runtime; 0 = library default (restart to change)",
    "channels_last": "channels-last memory format for torch (restart to change)",
}
RESTART_ONLY = {"checkpoint", "input_transport", "image_reliability", "image_qos_depth"} | {
    f"runtime.{name}" for name in RUNTIME_DESCRIPTIONS
}


class TrackerNode(Node):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.declare_all_parameters()
        self._lock = threading.Lock()  # guards self.tracker and self._class_ids
        self._wake = threading.Condition()
        self._pending: Frame | None = None
        self._running = True
        self._dropped_since_publish = 0
        self.stats = NodeStats()
        self._class_ids: dict[str, str] = {}
        self._seen_image_errors: set[str] = set()
        self.history = FrameHistory(self.get_parameter("history_size").value)
        self.config = self.config_from_parameters()
        self.tracker = self.load_tracker()
        self.create_interfaces()
        self.add_on_set_parameters_callback(self.on_set_parameters)
        self._worker = threading.Thread(target=self._work_loop, name="cyclesiam_worker", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"ready: input '{self.image_topic}' ({self.get_parameter('input_transport').value}, "
            f"{self.get_parameter('image_reliability').value}), checkpoint {self.checkpoint_path}, "
            f"device {self.tracker.device}, backend {self.tracker.backend.name}"
        )

    # ------------------------------------------------------------------ parameters

    def declare_all_parameters(self) -> None:
        declare_parameters(self)

    def config_from_parameters(self, overrides: dict[str, Any] | None = None) -> Config:
        """The core Config built from the node's `tracker.*` and `runtime.*` parameters."""
        values = {p.name: p.value for p in self._parameters.values()}
        values.update(overrides or {})
        tracker = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("tracker.")}
        runtime = {k.split(".", 1)[1]: v for k, v in values.items() if k.startswith("runtime.")}
        from cyclesiam.config import merge

        return merge(Config(), {"tracker": tracker, "runtime": runtime})

    def on_set_parameters(self, params) -> SetParametersResult:
        changes = {p.name: p.value for p in params}
        restart = sorted(set(changes) & RESTART_ONLY)
        if restart:
            return SetParametersResult(successful=False, reason=f"{restart} only take effect at start-up; restart the node")
        try:
            new_cfg = self.config_from_parameters(changes)
            from cyclesiam.tracker import check_tracker_config

            check_tracker_config(new_cfg.tracker)
            if new_cfg.tracker.recover_threshold < new_cfg.tracker.lost_threshold:
                raise ValueError("tracker.recover_threshold must be >= tracker.lost_threshold")
        except Exception as exc:  # ConfigError/ValueError: report, keep the old values
            return SetParametersResult(successful=False, reason=str(exc))
        with self._lock:
            self.config = new_cfg
            self.tracker.cfg = dataclasses.replace(new_cfg.tracker)
        if "history_size" in changes:
            self.history.resize(int(changes["history_size"]))
        return SetParametersResult(successful=True)

    def param(self, name: str) -> Any:
        return self.get_parameter(name).value

    # ------------------------------------------------------------------ set-up

    def load_tracker(self):
        from cyclesiam.tracker import build_tracker

        self.checkpoint_path = resolve_checkpoint(self.param("checkpoint") or None)
        return build_tracker(self.config, checkpoint=self.checkpoint_path)

    def create_interfaces(self) -> None:
        reliability = self.param("image_reliability")
        if reliability not in ("best_effort", "reliable"):
            raise ValueError(f"image_reliability must be best_effort or reliable, got '{reliability}'")
        image_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=self.param("image_qos_depth"),
            reliability=ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort" else ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
        transport = self.param("input_transport")
        if transport == "raw":
            self.image_topic = "image"
            self.create_subscription(Image, "image", self.on_image, image_qos)
        elif transport == "compressed":
            self.image_topic = "image/compressed"
            self.create_subscription(CompressedImage, "image/compressed", self.on_compressed, image_qos)
        else:
            raise ValueError(f"input_transport must be raw or compressed, got '{transport}'")
        self.image_topic = self.resolve_topic_name(self.image_topic)
        self.create_subscription(Detection2D, "~/target", self.on_detector_target, 10)
        self.create_service(SetTarget, "~/set_target", self.on_set_target)
        self.create_service(RemoveTarget, "~/remove_target", self.on_remove_target)
        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_detections = self.create_publisher(Detection2DArray, "~/detections", out_qos)
        self.pub_detection = self.create_publisher(Detection2D, "~/detection", out_qos)
        self.pub_mask = self.create_publisher(Image, "~/mask", out_qos)
        self.pub_debug = self.create_publisher(Image, "~/debug_image", out_qos)
        self.pub_status = self.create_publisher(TrackStatusArray, "~/status", out_qos)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.param("diagnostics_period"), self.publish_diagnostics)

    # ------------------------------------------------------------------ input

    def on_image(self, msg: Image) -> None:
        self._accept(msg.header, lambda: image_to_bgr(msg))

    def on_compressed(self, msg: CompressedImage) -> None:
        self._accept(msg.header, lambda: compressed_to_bgr(msg))

    def _accept(self, header, convert) -> None:
        received = time.monotonic()
        try:
            image = convert()
        except ImageConversionError as exc:
            self.stats.bad_images += 1
            self._log_bad_image(str(exc))
            return
        frame = Frame(stamp_ns=messages.stamp_ns(header), frame_id=header.frame_id, image=image, received=received, header=header)
        if not self.history.add(frame):
            self.get_logger().warning(
                "image stamp went backwards (bag loop or clock reset): frame history cleared; targets kept",
                throttle_duration_sec=2.0,
            )
        self.stats.received += 1
        with self._wake:
            if self._pending is not None:
                self.stats.dropped += 1
                self._dropped_since_publish += 1
            self._pending = frame
            self._wake.notify()

    def _log_bad_image(self, reason: str) -> None:
        """Each new kind of bad image is logged at once; repeats (a misconfigured camera at
        30 Hz) are throttled."""
        if reason not in self._seen_image_errors:
            if len(self._seen_image_errors) > 100:
                self._seen_image_errors.clear()
            self._seen_image_errors.add(reason)
            self.get_logger().error(f"dropping image on {self.image_topic}: {reason}")
        else:
            self.get_logger().error(f"dropping images on {self.image_topic}: {reason}", throttle_duration_sec=5.0)

    # ------------------------------------------------------------------ targets

    def on_set_target(self, request: SetTarget.Request, response: SetTarget.Response) -> SetTarget.Response:
        try:
            ok, message, target_id = self.set_target(request.header, request.bbox, request.id, request.mask)
        except Exception as exc:  # never let a request take the node down
            ok, message, target_id = False, f"internal error: {exc!r}", request.id
        response.success, response.message, response.id = ok, message, target_id
        if ok:
            self.get_logger().info(f"set_target: {message}")
        else:
            self.get_logger().warning(f"set_target refused: {message}")
        return response

    def on_detector_target(self, msg: Detection2D) -> None:
        score = msg.results[0].hypothesis.score if msg.results else 1.0
        if score < self.param("detector_min_score"):
            return
        class_id = msg.results[0].hypothesis.class_id if msg.results else ""
        ok, message, _ = self.set_target(msg.header, msg.bbox, msg.id, None, class_id=class_id)
        if not ok:
            self.get_logger().warning(f"~/target detection ignored: {message}", throttle_duration_sec=2.0)

    def set_target(self, header, bbox, target_id: str, mask_msg, class_id: str = "") -> tuple[bool, str, str]:
        frame, error = self._frame_for(header)
        if frame is None:
            return False, error, target_id
        xywh = messages.bbox_to_xywh(bbox)
        if not messages.is_finite_box(xywh):
            return False, f"box has NaN/inf values: {xywh}", target_id
        try:
            mask = mask_from_msg(mask_msg, frame.image.shape[1], frame.image.shape[0]) if mask_msg is not None else None
        except ImageConversionError as exc:
            return False, f"bad mask: {exc}", target_id
        with self._lock:
            if target_id not in self.tracker.target_ids and len(self.tracker) >= self.param("max_targets"):
                return False, f"already tracking max_targets={self.param('max_targets')} targets", target_id
            try:
                new_id = self.tracker.add_target(frame.image, xywh, target_id or None, mask)
            except ValueError as exc:
                return False, str(exc), target_id
            self._class_ids[new_id] = class_id
        x, y, w, h = xywh
        return True, f"tracking '{new_id}' from box x={x:.1f} y={y:.1f} w={w:.1f} h={h:.1f} at stamp {frame.stamp_ns}", new_id

    def _frame_for(self, header) -> tuple[Frame | None, str]:
        latest = self.history.latest()
        if latest is None:
            return None, f"no image received yet on {self.image_topic}"
        stamp = messages.stamp_ns(header)
        if stamp == 0:
            frame = latest
        else:
            tolerance = int(self.param("stamp_tolerance") * 1e9)
            frame = self.history.lookup(stamp, tolerance)
            if frame is None:
                first, last = self.history.span()
                return None, (
                    f"no stored frame within {tolerance / 1e6:.0f} ms of stamp {stamp} ns "
                    f"(history covers {first}..{last} ns; raise history_size or send a zero stamp)"
                )
        if header.frame_id and frame.frame_id and header.frame_id != frame.frame_id:
            return None, f"box frame_id '{header.frame_id}' differs from the image frame_id '{frame.frame_id}'"
        return frame, ""

    def on_remove_target(self, request: RemoveTarget.Request, response: RemoveTarget.Response):
        with self._lock:
            if not request.id:
                count = len(self.tracker)
                self.tracker.clear()
                self._class_ids.clear()
                response.success, response.message = True, f"removed all {count} target(s)"
            elif self.tracker.remove_target(request.id):
                self._class_ids.pop(request.id, None)
                response.success, response.message = True, f"removed '{request.id}'"
            else:
                response.success = False
                response.message = f"unknown id '{request.id}'; known: {self.tracker.target_ids}"
        self.get_logger().info(f"remove_target: {response.message}")
        return response

    # ------------------------------------------------------------------ processing

    def _work_loop(self) -> None:
        while True:
            with self._wake:
                while self._pending is None and self._running:
                    self._wake.wait(timeout=0.5)
                if not self._running:
                    return
                frame, self._pending = self._pending, None
            try:
                self.process(frame)
            except Exception as exc:  # keep serving: one bad frame must not kill the node
                self.stats.errors += 1
                self.get_logger().error(f"tracking failed on frame {frame.stamp_ns}: {exc!r}", throttle_duration_sec=2.0)

    def process(self, frame: Frame) -> None:
        want_debug = self.param("publish_debug_image") and self.pub_debug.get_subscription_count() > 0
        want_mask = self.param("publish_mask") and self.pub_mask.get_subscription_count() > 0
        with self._lock:
            if len(self.tracker) == 0:
                results, class_ids = [], {}
            else:
                self.tracker.cfg.mask_enabled = self.config.tracker.mask_enabled and (want_mask or want_debug)
                results = self.tracker.track(frame.image)
                self.stats.core_ms.append(float(self.tracker.timing.get("total", 0.0)))
                class_ids = dict(self._class_ids)
            primary = self.tracker.target_ids[0] if len(self.tracker) else None
        self.publish(frame, results, class_ids, primary, want_mask, want_debug)

    def publish(self, frame: Frame, results, class_ids, primary, want_mask: bool, want_debug: bool) -> None:
        header = frame.header
        if results:
            self.pub_detections.publish(messages.detections_msg(results, header, class_ids))
            for r in results:
                if r.id == primary and r.state == "tracking":
                    self.pub_detection.publish(messages.detection_msg(r, header, class_ids.get(r.id, "")))
            if want_mask:
                self.pub_mask.publish(messages.mono8_msg(messages.union_mask(results, frame.image.shape[:2]), header))
        if want_debug:
            self.pub_debug.publish(messages.bgr8_msg(draw_results(frame.image, results), header))
        latency = time.monotonic() - frame.received
        dropped, self._dropped_since_publish = self._dropped_since_publish, 0
        self.pub_status.publish(messages.status_msg(results, header, latency, dropped))
        self.stats.record(latency, results)

    # ------------------------------------------------------------------ diagnostics

    def publish_diagnostics(self) -> None:
        status = DiagnosticStatus(name=f"{self.get_name()}: tracking", hardware_id=self.image_topic)
        summary = self.stats.summary()
        status.level = DiagnosticStatus.OK
        status.message = "ok"
        if summary["targets_lost"] > 0:
            status.level, status.message = DiagnosticStatus.WARN, f"{summary['targets_lost']} target(s) lost"
        if summary["processed_rate_hz"] == 0 and summary["input_rate_hz"] > 0:
            status.level, status.message = DiagnosticStatus.WARN, "receiving images but processing none"
        status.values = [KeyValue(key=k, value=str(v)) for k, v in summary.items()]
        array = DiagnosticArray()
        array.header.stamp = self.get_clock().now().to_msg()
        array.status = [status]
        self.pub_diagnostics.publish(array)

    def shutdown(self) -> None:
        with self._wake:
            self._running = False
            self._wake.notify_all()
        self._worker.join(timeout=5.0)


def declare_parameters(node: Node) -> None:
    """Declare every parameter of the tracker node (with descriptions and ranges) on `node`."""
    d = lambda *a, **k: _declare(node, *a, **k)  # noqa: E731
    d("checkpoint", "", "safetensors checkpoint; empty = the shipped default model")
    d("input_transport", "raw", "raw (sensor_msgs/Image on 'image') | compressed ('image/compressed')")
    d("image_reliability", "best_effort", "image subscription reliability: best_effort (sensor data) | reliable")
    d("image_qos_depth", 1, "image subscription queue depth (1: only the newest frame matters)", int_range=(1, 100))
    d("history_size", 30, "frames kept so set_target can use the frame its box was drawn on", int_range=(1, 1000))
    d("stamp_tolerance", 0.05, "max |stamp difference| (s) to match a set_target stamp to a stored frame", (0.0, 10.0))
    d("max_targets", 16, "maximum number of simultaneous targets", int_range=(1, 256))
    d("publish_mask", True, "publish ~/mask (union of target masks, mono8)")
    d("publish_debug_image", True, "publish ~/debug_image (only built while it has subscribers)")
    d("detector_min_score", 0.0, "~/target detections with a lower hypothesis score are ignored", (0.0, 1.0))
    d("diagnostics_period", 1.0, "seconds between /diagnostics messages", (0.1, 60.0))
    defaults = Config()
    for f in dataclasses.fields(TrackerConfig):
        d(f"tracker.{f.name}", getattr(defaults.tracker, f.name), TRACKER_DESCRIPTIONS.get(f.name, f.name))
    for f in dataclasses.fields(RuntimeConfig):
        d(f"runtime.{f.name}", getattr(defaults.runtime, f.name), RUNTIME_DESCRIPTIONS.get(f.name, f.name))


def _declare(node: Node, name: str, default: Any, description: str, float_range=None, int_range=None) -> None:
    descriptor = ParameterDescriptor(description=description, read_only=False)
    if float_range is not None:
        descriptor.floating_point_range = [
            FloatingPointRange(from_value=float(float_range[0]), to_value=float(float_range[1]), step=0.0)
        ]
    if int_range is not None:
        descriptor.integer_range = [IntegerRange(from_value=int_range[0], to_value=int_range[1], step=1)]
    node.declare_parameter(name, default, descriptor)


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


def main(args: list[str] | None = None) -> int:
    from cyclesiam.device import DeviceError

    rclpy.init(args=args)
    node = None
    try:
        node = TrackerNode()
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (FileNotFoundError, DeviceError) as exc:  # missing checkpoint, no CUDA: one clear line, non-zero exit
        print(f"[{NODE_NAME}] error: {exc}", flush=True)
        return 2
    finally:
        if node is not None:
            node.shutdown()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
