"""The node's output messages are byte for byte what the previous (slower) code built.

The real tracker (shipped model, CPU, masks on) runs on real 640x480 frames (data/mbt_cube) with
two targets; each frame's results, plus a LOST copy and a mask-less copy of them, go through
`messages` / `draw_results` and through the reference implementations below (the code as it was
before the node's per-frame overhead was cut, issue 22): every field must be equal, the pixel bytes
included. (Not the serialised CDR bytes: the serialiser leaves its alignment padding uninitialised.)
A node in this process then shows ~/detection published while only it is subscribed (the
Detection2DArray it comes from is built for it, not published).
"""

from __future__ import annotations

import dataclasses
import time

import cv2
import numpy as np
import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import Image

from cyclesiam.visualize import draw_results
from cyclesiam_ros import messages

pytestmark = pytest.mark.ros

CUBE = (314.0, 203.0, 132.0, 148.0)  # the cube in frame 0
SECOND = (120.0, 150.0, 90.0, 90.0)  # a patch of the background, overlapping nothing


def same(new, old) -> bool:
    """Every field equal (rclpy's message ==), and the serialised lengths too."""
    return new == old and len(serialize_message(new)) == len(serialize_message(old))


def reference_union_mask(results, shape):
    mask = np.zeros(shape, dtype=np.uint8)
    height, width = shape
    for r in results:
        if r.state != "tracking":
            continue
        if r.mask is not None and r.mask.shape == shape:
            mask[r.mask > 0] = 255
        else:
            x, y, w, h = r.bbox
            x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
            x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
            mask[y0:y1, x0:x1] = 255
    return mask


def reference_image_msg(array, header, encoding):
    msg = Image()
    array = np.ascontiguousarray(array)
    msg.header = header
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(array.strides[0])
    msg.data = array.tobytes()
    return msg


def reference_tint(canvas, mask, colour, alpha):
    if mask.shape != canvas.shape[:2] or not mask.any():
        return
    region = canvas[mask].astype(np.float32)
    canvas[mask] = (region * (1 - alpha) + np.array(colour, np.float32) * alpha).astype(np.uint8)


def reference_draw(image, results, monkeypatch):
    from cyclesiam import visualize

    with monkeypatch.context() as patch:
        patch.setattr(visualize, "_tint", reference_tint)
        return visualize.draw_results(image, results)


@pytest.fixture(scope="module")
def cube_frames(cube_frames_dir):
    paths = sorted(cube_frames_dir.glob("*.pgm"))[:24]
    return [cv2.imread(str(p)) for p in paths]


@pytest.fixture(scope="module")
def tracked(cube_frames, shipped_checkpoint):
    """(frame, results) of the real tracker, two targets, masks on."""
    from cyclesiam.build import build_tracker
    from cyclesiam.config import load_config, parse_dotted

    config = load_config(None, parse_dotted(["runtime.device=cpu", "tracker.mask_enabled=true"]))
    tracker = build_tracker(config, checkpoint=shipped_checkpoint)
    tracker.add_target(cube_frames[0], CUBE, "cube")
    tracker.add_target(cube_frames[0], SECOND, "patch")
    out = []
    for frame in cube_frames[1:]:
        out.append((frame, tracker.track(frame, want_masks=True)))
    return out


def header_for(index: int):
    from std_msgs.msg import Header

    header = Header(frame_id="camera")
    header.stamp.sec, header.stamp.nanosec = 1 + index // 30, (index % 30) * 33_333_333
    return header


def variants(results):
    """The results as tracked, with the second target LOST, and without masks (box fill)."""
    lost = [results[0], dataclasses.replace(results[1], state="lost")]
    maskless = [dataclasses.replace(r, mask=None) for r in results]
    return [results, lost, maskless]


def test_the_tracker_gave_real_masks(tracked):
    masks = [r.mask for _, results in tracked for r in results if r.mask is not None]
    assert len(masks) == 2 * len(tracked)
    assert all(m.shape == (480, 640) and m.max() == 255 for m in masks)


def test_mask_messages_are_identical(tracked):
    for index, (frame, results) in enumerate(tracked):
        for case in variants(results):
            header = header_for(index)
            new = messages.mono8_msg(messages.union_mask(case, frame.shape[:2]), header)
            old = reference_image_msg(reference_union_mask(case, frame.shape[:2]), header, "mono8")
            assert same(new, old)


def test_union_of_noisy_overlapping_masks_is_identical(tracked):
    """Masks the tracker would not make (speckle, values other than 255, overlaps) still union alike."""
    rng = np.random.default_rng(7)
    results = tracked[0][1]
    noisy = [dataclasses.replace(r, mask=(rng.integers(0, 4, (480, 640)) * 60).astype(np.uint8)) for r in results]
    assert np.array_equal(messages.union_mask(noisy, (480, 640)), reference_union_mask(noisy, (480, 640)))


def test_debug_images_are_identical(tracked, monkeypatch):
    for index, (frame, results) in enumerate(tracked[::4]):
        for case in variants(results):
            header = header_for(index)
            new = messages.bgr8_msg(draw_results(frame, case), header)
            old = reference_image_msg(reference_draw(frame, case, monkeypatch), header, "bgr8")
            assert same(new, old)


def test_detection_taken_from_the_array_is_the_one_built_alone(tracked):
    class_ids = {"cube": "box", "patch": ""}
    for index, (_, results) in enumerate(tracked):
        header = header_for(index)
        array = messages.detections_msg(results, header, class_ids)
        primary = next(d for d in array.detections if d.id == "cube")
        alone = messages.detection_msg(results[0], header, "box")
        assert same(primary, alone)


@pytest.fixture(scope="module")
def local_node(rclpy_context, shipped_checkpoint):
    """A TrackerNode in this process (no params file: the defaults), spun with a plain node."""
    from rclpy.executors import SingleThreadedExecutor

    from cyclesiam_ros.tracker_node import TrackerNode

    rclpy_context.shutdown()
    rclpy_context.init(args=["--ros-args", "-r", "__ns:=/outputs", "-p", f"checkpoint:={shipped_checkpoint}",
                             "-p", "runtime.device:=cpu"])
    node = TrackerNode()
    peer = rclpy_context.create_node("outputs_peer")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    executor.add_node(peer)
    assert node.start()
    yield node, peer, executor
    node.release()
    executor.shutdown()
    node.destroy_node()
    peer.destroy_node()


def test_primary_detection_is_published_with_only_it_subscribed(local_node, cube_frames):
    from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy
    from vision_msgs.msg import Detection2D

    node, peer, executor = local_node
    got = []
    peer.create_subscription(Detection2D, "/outputs/cyclesiam_tracker/detection", got.append,
                             QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=50,
                                        reliability=ReliabilityPolicy.RELIABLE))
    image_pub = peer.create_publisher(Image, "/outputs/image", QoSProfile(
        history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.BEST_EFFORT))
    assert spin_until(executor, lambda: node.pub_detection.get_subscription_count() > 0
                      and image_pub.get_subscription_count() > 0)
    assert node.pub_detections.get_subscription_count() == 0 and node.pub_status.get_subscription_count() == 0
    image_pub.publish(image_msg(cube_frames[0], 1_000_000_000))
    assert spin_until(executor, lambda: node.history.latest() is not None)
    node._set_target(node.history.latest().header, messages.bbox_msg(*CUBE), "cube", None, "")
    for i, frame in enumerate(cube_frames[1:6]):
        image_pub.publish(image_msg(frame, 1_000_000_000 + (i + 1) * 33_333_333))
        spin_until(executor, lambda: len(got) > i, timeout=10)
    assert got, "no ~/detection while only ~/detection was subscribed"
    assert all(d.id == "cube" and d.header.frame_id == "camera" for d in got)


def image_msg(frame: np.ndarray, stamp: int) -> Image:
    msg = Image(height=frame.shape[0], width=frame.shape[1], encoding="bgr8", step=frame.shape[1] * 3)
    msg.data = frame.tobytes()
    msg.header.frame_id = "camera"
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    return msg


def spin_until(executor, predicate, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not predicate():
        executor.spin_once(timeout_sec=0.02)
    return bool(predicate())


