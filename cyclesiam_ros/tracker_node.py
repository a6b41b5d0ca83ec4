"""`tracker_node` (node name `cyclesiam_tracker`): the CycleSiam tracker as a ROS 2 node.

| kind | name | type | notes |
|---|---|---|---|
| sub | `image` | sensor_msgs/Image | remap in launch; sensor-data QoS (reliability: `image_reliability`) |
| sub | `image/compressed` | sensor_msgs/CompressedImage | when `input_transport: compressed` |
| sub | `~/target` | vision_msgs/Detection2D | a detector's box becomes/updates a target (no id: the one it overlaps) |
| srv | `~/set_target` | cyclesiam_ros/srv/SetTarget | start/replace a target |
| srv | `~/remove_target` | cyclesiam_ros/srv/RemoveTarget | one id, or all when empty |
| srv | `~/record` | cyclesiam_ros/srv/Record | start/stop an MCAP bag of the accepted frames and their tracked boxes (`recorder.py`) |
| srv | `~/load_model` | cyclesiam_ros/srv/LoadModel | swap the network between two frames, targets kept (`model_swap.py`) |
| pub | `~/detections` | vision_msgs/Detection2DArray | tracked targets; header = input image header |
| pub | `~/detection` | vision_msgs/Detection2D | the primary (first set) target while tracked |
| pub | `~/mask` | sensor_msgs/Image mono8 | 255 = target (union); same size/header as input |
| pub | `~/debug_image` | sensor_msgs/Image bgr8 | overlay; built only when subscribed |
| pub | `~/status` | cyclesiam_ros/msg/TrackStatusArray | every target, TRACKING/LOST, score, latency |
| pub | `/diagnostics` | diagnostic_msgs/DiagnosticArray | rates, latency, dropped frames, target states |
| sub/pub | `depth`, `camera_info` / `~/detections_3d`, `~/target_point`, `~/markers` | see `depth_output.py` | optional: the targets in 3D from aligned depth |

Lifecycle (rclpy `LifecycleNode`; `autostart`, default true, runs configure + activate at start):
configure reads the parameters and loads the model, and creates the services (`create_services`);
activate creates the subscriptions, publishers and timer (`create_interfaces`) and starts the
worker; deactivate stops the worker and destroys them (`destroy_interfaces`), targets kept;
cleanup frees the model, the targets and the services; shutdown releases everything and ends `main`.
Parameters are declared at construction, so they can be set before configure (restart-only ones
only while unconfigured).

Threading: the image callback only converts and stores the newest frame (never blocks on
the network); one worker thread runs the tracker on the newest frame (`worker.py`); frames
that arrive while it works replace the pending one and are counted as dropped. Parameters:
`parameters.py` and config/tracker.yaml; /diagnostics: `diagnostics.py`.
"""

from __future__ import annotations

import dataclasses
import gc
import signal
import threading
import time
import traceback
from typing import Any, Callable

import rclpy
from rcl_interfaces.msg import SetParametersResult
from rclpy.client import Client
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy, DurabilityPolicy
from rclpy.service import Service
from rclpy.subscription import Subscription
from rclpy.task import Future
from rclpy.timer import Timer
from sensor_msgs.msg import CompressedImage, Image
from diagnostic_msgs.msg import DiagnosticArray
from vision_msgs.msg import Detection2D, Detection2DArray

from cyclesiam.checkpoint import CheckpointError
from cyclesiam.config import ConfigError
from cyclesiam.device import DeviceError
from cyclesiam.default_model import resolve_checkpoint
from cyclesiam.visualize import draw_results
from cyclesiam_ros import messages
from cyclesiam_ros.depth_output import Depth3DOutput
from cyclesiam_ros.diagnostics import NodeStats, Thresholds, diagnostic_array, diagnostic_status
from cyclesiam_ros.frame_history import Added, Frame, FrameHistory
from cyclesiam_ros.image_conversion import ImageConversionError, compressed_to_bgr, image_to_bgr, mask_from_msg
from cyclesiam_ros.log_throttle import ThrottledLogger, untrusted
from cyclesiam_ros.model_swap import ModelSwapService, identity_of
from cyclesiam_ros.msg import TrackStatusArray
from cyclesiam_ros.parameters import check_changes, declare_parameters, settings_from_parameters
from cyclesiam_ros.recorder import RecordService
from cyclesiam_ros.srv import RemoveTarget, SetTarget
from cyclesiam_ros.target_requests import Refused, best_overlap, check_box, check_id, check_score
from cyclesiam_ros.worker import NewestFrameWorker

__all__ = ["NODE_NAME", "TrackerNode", "declare_parameters", "main"]

NODE_NAME = "cyclesiam_tracker"
# what a bad checkpoint, device or parameter raises at configure: one log line, no traceback
CONFIGURE_ERRORS = (OSError, CheckpointError, DeviceError, ConfigError, ValueError)
SUCCESS, FAILURE, ERROR = (TransitionCallbackReturn.SUCCESS, TransitionCallbackReturn.FAILURE,
                           TransitionCallbackReturn.ERROR)


class TrackerNode(LifecycleNode):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        declare_parameters(self)
        self._lock = threading.Lock()  # guards self.tracker, self._class_ids and self.model_id
        self.stats = NodeStats()
        self._class_ids: dict[str, str] = {}
        self._target_shape: tuple[int, ...] | None = None  # image shape the targets live in
        self.log = ThrottledLogger(self.get_logger(), period_s=5.0)  # every line about untrusted input
        self.config, self.settings = None, None  # read at configure
        self.tracker = None
        self.history: FrameHistory | None = None
        self.checkpoint_path = None
        self.model_id = ""
        self.recording: RecordService | None = None  # ~/record and ~/load_model: made at configure
        self.model_swap: ModelSwapService | None = None
        self.image_topic = self.resolve_topic_name("image")
        self._worker: NewestFrameWorker | None = None
        self._diagnostics_timer = None
        self._active = False
        self._configured_entities: list = []  # made by create_services, destroyed at cleanup
        self._active_entities: list = []  # made by create_interfaces, destroyed at deactivate
        self.finalized = Future()  # done once the node is shut down (lifecycle `shutdown`)
        self.add_on_set_parameters_callback(self.on_set_parameters)

    @property
    def autostart(self) -> bool:
        return bool(self.get_parameter("autostart").value)

    def start(self) -> bool:
        """configure + activate (autostart); False when a transition failed (its reason is logged)."""
        return self.trigger_configure() == SUCCESS and self.trigger_activate() == SUCCESS

    # ------------------------------------------------------------------ lifecycle

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        try:
            self.config, self.settings = settings_from_parameters(self)
            self.tracker = self.load_tracker()
        except Exception as exc:  # the transition fails, the node stays unconfigured
            self.config, self.settings, self.tracker = None, None, None
            self.get_logger().error(f"configure failed: {exc}")
            if not isinstance(exc, CONFIGURE_ERRORS):
                self.get_logger().error(traceback.format_exc())
            return FAILURE
        self.history = FrameHistory(self.settings.history_size, self.settings.history_max_mb << 20,
                                    int(self.settings.history_reset_jump * 1e9))
        self._configured_entities = self._created_by(self.create_services)
        self.get_logger().info(f"configured: checkpoint {self.checkpoint_path}, device {self.tracker.device}, "
                               f"backend {self.tracker.backend.name}")
        return SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._guarded("activate", self._activate)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._guarded("deactivate", self._deactivate)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        return self._guarded("cleanup", self._cleanup)

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        result = self._guarded("shutdown", self.release)
        self.finalized.set_result(state.label)
        return result

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition raised: release everything, back to unconfigured."""
        return self._guarded("error recovery", self.release)

    def _guarded(self, name: str, step: Callable[[], None]) -> TransitionCallbackReturn:
        try:
            step()
        except Exception:  # rclpy would turn it into ERROR without a word
            self.get_logger().error(f"{name} failed:\n{traceback.format_exc()}")
            return ERROR
        return SUCCESS

    def _activate(self) -> None:
        self._worker = NewestFrameWorker(self.process, self._on_process_error)
        self._active_entities = self._created_by(self.create_interfaces)
        self._active = True
        self.get_logger().info(
            f"active: input '{self.image_topic}' ({self.settings.input_transport}, {self.settings.image_reliability}), "
            f"{len(self.tracker)} target(s)")

    def _deactivate(self) -> None:
        """Stop processing; the targets stay for the next activate. The frame history is
        cleared: no frames arrive while inactive, and a stream may restart its stamps."""
        self._active = False
        if self._worker is not None:
            self._worker.stop()  # no frame is in flight when the publishers go
            self._worker = None
        self.destroy_interfaces()
        self.recording.close()  # no frames arrive while inactive: a recording ends here
        self.history.clear()
        self.get_logger().info(f"inactive: {len(self.tracker)} target(s) kept")

    def _cleanup(self) -> None:
        self.recording.close()
        self._destroy(self._configured_entities)
        self._configured_entities = []
        with self._lock:
            count = len(self.tracker)
            self.tracker, self.history, self.checkpoint_path = None, None, None
            self._class_ids.clear()
            self._target_shape = None
        self.config, self.settings = None, None
        _free_memory()
        self.get_logger().info(f"unconfigured: model and {count} target(s) freed")

    def release(self) -> None:
        """Back to nothing from any state (shutdown, error recovery, exit)."""
        if self._active or self._worker is not None or self._active_entities:
            self._deactivate()
        if self.tracker is not None:
            self._cleanup()

    # ------------------------------------------------------------------ parameters

    def on_set_parameters(self, params) -> SetParametersResult:
        changes = {p.name: p.value for p in params}
        checked, reason = check_changes(self, changes, configured=self.tracker is not None)
        if checked is None:
            return SetParametersResult(successful=False, reason=reason)
        if self.tracker is None:
            return SetParametersResult(successful=True)  # configure reads them
        with self._lock:
            self.config, self.settings = checked
            self.tracker.cfg = dataclasses.replace(self.config.tracker)
        self.history.resize(self.settings.history_size, self.settings.history_max_mb << 20)
        self.history.reset_jump_ns = int(self.settings.history_reset_jump * 1e9)
        if "diagnostics_period" in changes and self._diagnostics_timer is not None:
            self._diagnostics_timer.timer_period_ns = int(self.settings.diagnostics_period * 1e9)
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ set-up

    def load_tracker(self):
        from cyclesiam.build import build_tracker

        self.checkpoint_path = resolve_checkpoint(self.settings.checkpoint or None)
        self.model_id = identity_of(self.checkpoint_path)  # per frame in ~/status; ~/load_model changes it
        return build_tracker(self.config, checkpoint=self.checkpoint_path)

    def create_services(self) -> None:
        """Services that answer while configured, active or not (made at configure)."""
        self.create_service(SetTarget, "~/set_target", self.on_set_target)
        self.create_service(RemoveTarget, "~/remove_target", self.on_remove_target)
        self.recording = RecordService(self)  # ~/record (recorder.py)
        self.model_swap = ModelSwapService(self)  # ~/load_model (model_swap.py)

    def create_interfaces(self) -> None:
        """Subscriptions, publishers and timers of the active node (made at activate)."""
        reliability = self.settings.image_reliability
        image_qos = QoSProfile(
            history=HistoryPolicy.KEEP_LAST,
            depth=self.settings.image_qos_depth,
            reliability=ReliabilityPolicy.BEST_EFFORT if reliability == "best_effort" else ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
        if self.settings.input_transport == "raw":
            self.image_topic = "image"
            self.create_subscription(Image, "image", self.on_image, image_qos)
        else:
            self.image_topic = "image/compressed"
            self.create_subscription(CompressedImage, "image/compressed", self.on_compressed, image_qos)
        self.image_topic = self.resolve_topic_name(self.image_topic)
        self.create_subscription(Detection2D, "~/target", self.on_detector_target, 10)
        out_qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
        self.pub_detections = self.create_publisher(Detection2DArray, "~/detections", out_qos)
        self.pub_detection = self.create_publisher(Detection2D, "~/detection", out_qos)
        self.pub_mask = self.create_publisher(Image, "~/mask", out_qos)
        self.pub_debug = self.create_publisher(Image, "~/debug_image", out_qos)
        self.pub_status = self.create_publisher(TrackStatusArray, "~/status", out_qos)
        self.pub_diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._diagnostics_timer = self.create_timer(self.settings.diagnostics_period, self.publish_diagnostics)
        self.depth3d = Depth3DOutput.create(self)  # optional: depth + camera_info in, 3D out (depth_output.py)

    def destroy_interfaces(self) -> None:
        self._destroy(self._active_entities)
        self._active_entities = []
        self._diagnostics_timer = None

    def _entities(self) -> set:
        return {*self.subscriptions, *self.publishers, *self.timers, *self.services, *self.clients}

    def _created_by(self, make: Callable[[], None]) -> list:
        """What `make` created on this node: destroyed together later, whoever adds to `make`."""
        before = self._entities()
        try:
            make()
        except Exception:  # none of a half-made set survives
            self._destroy([entity for entity in self._entities() if entity not in before])
            raise
        return [entity for entity in self._entities() if entity not in before]

    def _destroy(self, entities: list) -> None:
        destroy = {Subscription: self.destroy_subscription, Publisher: self.destroy_publisher,
                   Timer: self.destroy_timer, Service: self.destroy_service, Client: self.destroy_client}
        for entity in entities:
            next(fn for kind, fn in destroy.items() if isinstance(entity, kind))(entity)

    # ------------------------------------------------------------------ input

    def on_image(self, msg: Image) -> None:
        if self._accept(msg.header, lambda: image_to_bgr(msg, self.settings.max_image_pixels)):
            self.recording.offer(msg)

    def on_compressed(self, msg: CompressedImage) -> None:
        warn = lambda text: self.log.warning("decoder", f"image on {self.image_topic}: {text}")  # noqa: E731
        if self._accept(msg.header, lambda: compressed_to_bgr(msg, self.settings.max_image_pixels, warn)):
            self.recording.offer(msg)

    def _accept(self, header, convert) -> bool:
        """Convert and store a frame; only an in-order frame goes to the tracker (an older one
        would step the targets back in time); True for those. Each kind of bad image is logged
        at once, then at most every 5 s with the count held back."""
        received = time.monotonic()
        self.stats.input_arrived()
        try:
            image = convert()
        except ImageConversionError as exc:
            self.stats.bad_images += 1
            self.log.error(f"image_{exc.kind}", f"dropping image on {self.image_topic}: {exc}")
            return False
        except Exception as exc:  # a subscription callback that raises stops the node: report instead
            self.stats.bad_images += 1
            self.log.error("image_internal", f"dropping image on {self.image_topic}: {untrusted(repr(exc), 200)}")
            return False
        frame = Frame(stamp_ns=messages.stamp_ns(header), frame_id=header.frame_id, image=image, received=received, header=header)
        added = self.history.add(frame)
        self.stats.received += 1
        if added in (Added.INSERTED, Added.DROPPED):
            self.log.warning("stamp_order", f"image stamp {frame.stamp_ns} is older than the newest frame: "
                             f"{added.value} in the frame history, not tracked")
            return False
        if added is Added.RESET:
            self.log.warning("stamp_reset", "image stamp went backwards by more than history_reset_jump (bag loop "
                             "or clock reset): frame history cleared; targets kept")
        if self._worker.submit(frame):
            self.stats.dropped += 1
        return True

    # ------------------------------------------------------------------ targets

    def on_set_target(self, request: SetTarget.Request, response: SetTarget.Response) -> SetTarget.Response:
        """Start or replace a target; a refusal's reason goes back in `message` (and to the log,
        throttled per kind of refusal); the success message names the box as clipped."""
        response.success, response.id = False, untrusted(request.id)
        try:
            response.message, response.id = self._set_target(request.header, request.bbox, check_id(request.id),
                                                              request.mask, "")
            response.success = True
        except Refused as exc:
            response.message = str(exc)
            self.log.warning(f"set_target_{exc.kind}", f"set_target refused: {exc}")
        except Exception as exc:  # never let a request take the node down
            response.message = f"internal error: {untrusted(repr(exc), 200)}"
            self.log.error("set_target_internal", f"set_target failed: {response.message}")
        if response.success:
            self.get_logger().info(f"set_target: {response.message}")
        return response

    def on_detector_target(self, msg: Detection2D) -> None:
        """A detector's box: refused with a (throttled, per kind) reason, ignored below
        detector_min_score, else it starts or updates a target; without an id it updates the
        target it overlaps by detector_match_iou or more."""
        try:
            score = check_score(msg.results[0].hypothesis.score) if msg.results else 1.0
            if score < self.settings.detector_min_score:
                return
            class_id = check_id(msg.results[0].hypothesis.class_id, "class_id") if msg.results else ""
            target_id = check_id(msg.id) or self._overlapping_target(messages.bbox_to_xywh(msg.bbox))
            self._set_target(msg.header, msg.bbox, target_id, None, class_id)
        except Refused as exc:
            self.log.warning(f"detection_{exc.kind}", f"~/target detection ignored: {exc}")
        except Exception as exc:  # a subscription callback that raises stops the node: report instead
            self.log.error("detection_internal", f"~/target detection failed: {untrusted(repr(exc), 200)}")

    def _overlapping_target(self, xywh) -> str:
        with self._lock:
            boxes = {tid: self.tracker.result(tid).bbox for tid in self.tracker.target_ids}
        return best_overlap(xywh, boxes, self.settings.detector_match_iou) or ""

    def _set_target(self, header, bbox, target_id: str, mask_msg, class_id: str) -> tuple[str, str]:
        if not self._active:
            raise Refused("inactive", "the node is inactive (lifecycle): no frames arrive to set a target on; "
                          "activate it first")
        frame = self._frame_for(header)
        box = check_box(messages.bbox_to_xywh(bbox), frame.image.shape)
        try:
            mask = mask_from_msg(mask_msg, frame.image.shape[1], frame.image.shape[0]) if mask_msg is not None else None
        except ImageConversionError as exc:
            raise Refused("mask", f"bad mask: {exc}") from None
        with self._lock:
            others = [tid for tid in self.tracker.target_ids if tid != target_id]
            if target_id not in self.tracker.target_ids and len(self.tracker) >= self.settings.max_targets:
                raise Refused("max_targets", f"already tracking max_targets={self.settings.max_targets} targets")
            if others and frame.image.shape != self._target_shape:
                raise Refused("frame_size", f"the frame is {_size(frame.image.shape)} but the targets were set on "
                              f"{_size(self._target_shape)} frames; remove them first (~/remove_target)")
            try:
                new_id = self.tracker.add_target(frame.image, box, target_id or None, mask)
            except ValueError as exc:
                raise Refused("box", str(exc)) from None
            self._class_ids[new_id] = class_id
            self._target_shape = frame.image.shape
        x, y, w, h = box
        return f"tracking '{new_id}' from box x={x:.1f} y={y:.1f} w={w:.1f} h={h:.1f} at stamp {frame.stamp_ns}", new_id

    def _frame_for(self, header) -> Frame:
        latest = self.history.latest()
        if latest is None:
            raise Refused("no_image", f"no image received yet on {self.image_topic}")
        stamp = messages.stamp_ns(header)
        if stamp == 0:
            frame = latest
        else:
            tolerance = int(self.settings.stamp_tolerance * 1e9)
            frame = self.history.lookup(stamp, tolerance)
            if frame is None:
                first, last = self.history.span()
                raise Refused("stamp", (
                    f"no stored frame within {tolerance / 1e6:.0f} ms of stamp {stamp} ns "
                    f"(history covers {first}..{last} ns; raise history_size or send a zero stamp)"
                ))
        if header.frame_id and frame.frame_id and header.frame_id != frame.frame_id:
            raise Refused("frame_id", f"box frame_id '{untrusted(header.frame_id)}' differs from the image frame_id "
                          f"'{untrusted(frame.frame_id)}'")
        return frame

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
                response.message = f"unknown id '{untrusted(request.id)}'; known: {self.tracker.target_ids}"
        if response.success:
            self.get_logger().info(f"remove_target: {response.message}")
        else:
            self.log.warning("remove_target", f"remove_target: {response.message}")
        return response

    # ------------------------------------------------------------------ processing

    def _on_process_error(self, frame: Frame, exc: Exception) -> None:
        if not self.context.ok():  # Ctrl-C while a frame was in flight: publishing fails, nothing is wrong
            return
        self.stats.errors += 1
        self.log.error("tracking", f"tracking failed on frame {frame.stamp_ns}: {untrusted(repr(exc), 200)}")

    def process(self, frame: Frame) -> None:
        """Track and publish one frame. A frame of another size than the targets' is skipped
        (targets kept, throttled warning): clamping the targets into it would lose them."""
        want_debug = self.settings.publish_debug_image and self.pub_debug.get_subscription_count() > 0
        want_mask = self.settings.publish_mask and self.pub_mask.get_subscription_count() > 0
        with self._lock:
            if len(self.tracker) == 0:
                results, class_ids = [], {}
            elif frame.image.shape != self._target_shape:  # a failed frame for /diagnostics
                self.stats.errors += 1
                self.log.warning("frame_size", f"skipping a {_size(frame.image.shape)} frame on {self.image_topic}: "
                                 f"the targets were set on {_size(self._target_shape)} frames (kept)")
                return
            else:
                want_masks = self.config.tracker.mask_enabled and (want_mask or want_debug or self.depth3d.active())
                results = self.tracker.track(frame.image, want_masks=want_masks)
                self.stats.core_ms.append(float(self.tracker.timing.get("total", 0.0)))
                class_ids = dict(self._class_ids)
            primary = self.tracker.target_ids[0] if len(self.tracker) else None
            model = self.model_id
        self.publish(frame, results, class_ids, primary, want_mask, want_debug, model)

    def publish(self, frame: Frame, results, class_ids, primary, want_mask: bool, want_debug: bool,
                model: str = "") -> None:
        """The outputs of one tracked frame; an output nobody subscribes to is not built."""
        header = frame.header
        if results:
            self._publish_detections(results, header, class_ids, primary)
            if want_mask:
                self.pub_mask.publish(messages.mono8_msg(messages.union_mask(results, frame.image.shape[:2]), header))
        if want_debug:
            self.pub_debug.publish(messages.bgr8_msg(draw_results(frame.image, results), header))
        depth_status = self.depth3d.publish(frame, results, class_ids, primary)  # after the 2D outputs
        latency = time.monotonic() - frame.received
        dropped = self._worker.take_dropped()  # taken every frame: a status counts the drops since the last frame
        if self.pub_status.get_subscription_count() > 0:
            self.pub_status.publish(messages.status_msg(results, header, latency, dropped, depth_status, model))
        self.stats.record(latency, results)

    def _publish_detections(self, results, header, class_ids, primary) -> None:
        """~/detections, the primary target's ~/detection and ~/record's tracked boxes: one message serves all."""
        want_all = self.pub_detections.get_subscription_count() > 0
        want_primary = self.pub_detection.get_subscription_count() > 0
        want_record = self.recording is not None and self.recording.wants_result(header)
        if not (want_all or want_primary or want_record):
            return
        array = messages.detections_msg(results, header, class_ids)
        if want_record:
            self.recording.offer_result(array)  # ~/record: the seeds of cyclesiam-adapt --seed-topic
        if want_all:
            self.pub_detections.publish(array)
        if want_primary:
            for detection in array.detections:
                if detection.id == primary:
                    self.pub_detection.publish(detection)

    # ------------------------------------------------------------------ diagnostics

    def publish_diagnostics(self) -> None:
        thresholds = Thresholds(self.settings.diagnostics_stale_after, self.settings.diagnostics_drop_warn)
        status = diagnostic_status(f"{self.get_name()}: tracking", self.image_topic, self.stats.summary(), thresholds)
        self.pub_diagnostics.publish(diagnostic_array(status, self.get_clock().now().to_msg()))

    def shutdown(self) -> None:
        if self._worker is not None:
            self._worker.stop()
        if self.recording is not None:
            self.recording.close()


def _free_memory() -> None:
    """Give the model's memory back now, not at the next collection (CUDA keeps a cache)."""
    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _context_shut_down_within(seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while rclpy.ok():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _size(shape: tuple[int, ...] | None) -> str:
    return f"{shape[1]}x{shape[0]}" if shape else "no"


def main(args: list[str] | None = None) -> int:
    """Run the node until Ctrl-C or its lifecycle `shutdown`; 2 when autostart's configure or
    activate failed (the reason is logged: a missing checkpoint, no CUDA, a bad parameter)."""
    rclpy.init(args=args)
    node = None
    try:
        node = TrackerNode()
        if node.autostart and not node.start():
            return 2
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin_until_future_complete(node.finalized)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except RuntimeError:
        # Ctrl-C landing inside a message take: pybind11 turns the KeyboardInterrupt raised while it
        # converts the call's arguments into "Unable to convert call argument" (CI, 1 run in ~20).
        # rclpy's SIGINT handler shuts the context down meanwhile; any other RuntimeError is a fault.
        if not _context_shut_down_within(0.5):
            raise
    except (InvalidParameterValueException, InvalidParameterTypeException) as exc:  # a start-up value
        print(f"[{NODE_NAME}] error: {exc}", flush=True)
        return 2
    finally:
        # Ctrl-C in a terminal reaches the node twice (the terminal's process group, then `ros2
        # launch` forwarding it): a second one must not cut the clean-up short with a traceback
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if node is not None:
            node.shutdown()
            node.destroy_node()
        if rclpy.ok():
            rclpy.shutdown()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
