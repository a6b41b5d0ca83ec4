"""Issue 25's node defects, each reproduced over real DDS against the node in its own process."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from cyclesiam_ros.msg import TrackStatus
from test_tracker_node import BOX, client, frames, running_node  # noqa: F401 (fixtures)

pytestmark = pytest.mark.ros

MS = 1_000_000


@pytest.fixture(scope="module")
def node_and_client(rclpy_context, tmp_path_factory, shipped_checkpoint):  # noqa: F811
    with running_node(rclpy_context, tmp_path_factory.mktemp("node"), shipped_checkpoint, "/r1") as pair:
        yield pair


def log_lines(proc, since: int = 0) -> list[str]:
    return proc.output()[since:].splitlines()


def last_status(client, target_id: str):
    states = [t for s in client.received.status for t in s.targets if t.id == target_id]
    return states[-1] if states else None


def test_frames_of_another_size_keep_the_targets(node_and_client, client, frames):
    """The issue's reproduction: a 1x1 (then a 7x13) frame in the middle of a clip used to clamp
    the target into it for good; now the frame is skipped and the target tracked on."""
    proc, _ = node_and_client
    client.play(frames[:3], 30)
    client.spin(0.3)
    assert client.set_target(BOX, target_id="tree").success
    client.play(frames[3:20], 30)
    for index, (width, height) in enumerate([(1, 1), (7, 13)]):
        client.spin(0.5)
        before = last_status(client, "tree")
        for _ in range(3):  # best-effort delivery: send it more than once
            client.publish_frame(np.full((height, width, 3), 128, np.uint8))
            client.spin(0.3)
        client.clear_received()
        client.play(frames[20 + 15 * index : 35 + 15 * index], 30)
        client.spin(0.5)
        after = last_status(client, "tree")
        assert after is not None and after.state == TrackStatus.TRACKING
        box = (after.bbox.center.position.x, after.bbox.center.position.y, after.bbox.size_x, after.bbox.size_y)
        assert after.bbox.size_x > 20 and after.bbox.size_y > 20, f"target clamped into the {width}x{height} frame: {box}"
        assert abs(after.bbox.center.position.x - before.bbox.center.position.x) < 30, (box, before.bbox)
    assert proc.wait_for_output("skipping a 1x1 frame", 5)


def detection(box, det_id: str = "", score: float = 0.9, class_id: str = "tree"):
    from vision_msgs.msg import Detection2D, ObjectHypothesisWithPose

    x, y, w, h = box
    det = Detection2D(id=det_id)
    det.header.frame_id = "camera"
    det.bbox.center.position.x, det.bbox.center.position.y = x + w / 2, y + h / 2
    det.bbox.size_x, det.bbox.size_y = float(w), float(h)
    hyp = ObjectHypothesisWithPose()
    hyp.hypothesis.class_id, hyp.hypothesis.score = class_id, score
    det.results = [hyp]
    return det


def test_id_less_detections_update_the_overlapping_target(node_and_client, client, frames):
    proc, _ = node_and_client
    client.play(frames[:3], 30)
    client.spin(0.3)
    rng = np.random.default_rng(0)
    for index in range(20):  # the same tree from a detector, a few pixels apart each time
        jitter = rng.uniform(-4, 4, 4)
        client.target_pub.publish(detection(np.add(BOX, jitter)))
        client.publish_frame(frames[3 + index])
        client.spin(0.15)
    client.play(frames[23:28], 30)
    client.spin(0.5)
    ids = {t.id for t in client.received.status[-1].targets}
    assert len(ids) == 1, f"20 detections of one tree made targets {sorted(ids)}"
    mark = len(proc.output())
    for score in (float("nan"), float("inf"), 2.0, -0.5):  # elsewhere in the image: would add targets
        client.target_pub.publish(detection((230.0, 150.0, 40.0, 40.0), score=score))
        client.spin(0.1)
    client.play(frames[28:32], 30)
    client.spin(0.5)
    assert {t.id for t in client.received.status[-1].targets} == ids
    assert proc.wait_for_output("score nan is not in [0, 1]", 5), proc.output()[mark:]
    client.target_pub.publish(detection((230.0, 150.0, 40.0, 40.0), score=0.8))  # no overlap: a new target
    client.spin(0.3)
    client.play(frames[32:36], 30)
    client.spin(0.5)
    assert len(client.received.status[-1].targets) == 2


def test_ids_are_bounded_and_sanitised(node_and_client, client, frames):
    proc, _ = node_and_client
    client.play(frames[:3], 30)
    client.spin(0.3)
    mark = len(proc.output())
    huge = client.set_target(BOX, target_id="x" * 1_000_000)
    assert not huge.success and "at most 64" in huge.message and len(huge.id) < 100 and len(huge.message) < 500
    forged = client.set_target(BOX, target_id="a\n[ERROR] [0.0] [cyclesiam_tracker]: forged")
    assert not forged.success and "control characters" in forged.message
    assert client.set_target(BOX, target_id="tree-1").success
    client.spin(0.5)
    lines = log_lines(proc, mark)
    assert not any(line.startswith("[ERROR] [0.0]") for line in lines), lines
    assert max(len(line) for line in lines) < 1000


def test_set_target_reports_the_clipped_box_and_refuses_tiny_and_huge(client, frames):
    client.play(frames[:3], 30)
    client.spin(0.3)
    clipped = client.set_target((-20.0, -10.0, 60.0, 70.0), target_id="corner")
    assert clipped.success and "x=0.0 y=0.0 w=40.0 h=60.0" in clipped.message, clipped.message
    tiny = client.set_target((100.0, 100.0, 1e-9, 1e-9))
    assert not tiny.success and "1 px" in tiny.message, tiny.message
    huge = client.set_target((0.0, 0.0, 1e308, 1e308))
    assert not huge.success and "4x the 320x240 image" in huge.message, huge.message
    sliver = client.set_target((319.5, 100.0, 50.0, 50.0))  # 0.5 px of it inside the image
    assert not sliver.success and "1 px" in sliver.message


def test_out_of_order_stamps_keep_the_history(node_and_client, client, frames):
    """The issue's reproduction: every 5th stamp 1 ms older than the one before."""
    proc, _ = node_and_client
    client.play(frames[:3], 30)
    client.spin(0.3)
    base = client.next_stamp()
    stamps = []
    for index in range(15):
        stamp = base + index * 66 * MS if index % 5 != 4 else stamps[-1] - 1 * MS
        stamps.append(stamp)
        client.publish_frame(frames[3 + index], stamp)
        client.spin(1 / 15)
    client._stamp = max(stamps)
    client.spin(0.3)
    found = [client.set_target(BOX, target_id="late", stamp=stamp).success for stamp in stamps]
    assert sum(found) >= 13, f"stamped set_target found {sum(found)} of 15 frames"
    assert proc.wait_for_output("older than the newest frame: inserted in the frame history, not tracked", 5)


def test_bad_images_log_one_line_per_kind(node_and_client, client, frames):
    proc, _ = node_and_client
    mark = len(proc.output())
    for index in range(30):  # 3 kinds, a different byte count in every message
        short = client.image_msg(frames[0], client.next_stamp())
        short.step = 100 + index
        truncated = client.image_msg(frames[0], client.next_stamp())
        truncated.height = 250 + index
        flood = client.image_msg(frames[0], client.next_stamp())
        flood.encoding = "y" * 20_000 + "\n[ERROR] forged"
        for msg in (short, truncated, flood):
            client.image_pub.publish(msg)
            client.spin(0.02)
    client.spin(0.5)
    lines = [line for line in log_lines(proc, mark) if "dropping image" in line]
    kinds = {"step": "is smaller than", "data_size": "expected step*height", "encoding": "unsupported encoding"}
    for kind, text in kinds.items():
        count = sum(text in line for line in lines)
        assert count == 1, f"{count} lines for one kind of bad image ({kind}) within 5 s"
    assert max(len(line) for line in lines) < 1000
    assert not any(line.startswith("[ERROR] forged") for line in log_lines(proc, mark))


def set_parameter(client, name: str, value: int):
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    srv = client.node.create_client(SetParameters, "/r1/cyclesiam_tracker/set_parameters")
    assert srv.wait_for_service(timeout_sec=10)
    value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    return client.call(srv, SetParameters.Request(parameters=[Parameter(name=name, value=value)])).results[0]


def test_pixel_limit_changes_at_run_time(node_and_client, client, frames):
    proc, _ = node_and_client
    assert not set_parameter(client, "max_image_pixels", 0).successful  # below its range
    assert set_parameter(client, "max_image_pixels", 320 * 240 - 1).successful
    try:
        for _ in range(3):
            client.publish_frame(frames[0])
            client.spin(0.2)
        assert proc.wait_for_output("320x240 = 76800 pixels is above the limit of 76799 (max_image_pixels)", 5)
    finally:
        assert set_parameter(client, "max_image_pixels", 1 << 24).successful
    client.clear_received()
    client.play(frames[:5], 30)
    assert client.spin_until(lambda: client.received.status, 5)


def test_ctrl_c_while_frames_arrive_logs_no_error(node_and_client, frames):
    """Runs last: it stops the module's node with SIGINT while a publisher keeps sending."""
    proc, client = node_and_client
    client.remove_target("")
    client.play(frames[:3], 30)
    client.spin(0.3)
    assert client.set_target(BOX).success
    stop = threading.Event()

    def stream() -> None:
        index = 0
        while not stop.is_set():
            client.publish_frame(frames[index % len(frames)])
            index += 1
            time.sleep(1 / 60)

    publisher = threading.Thread(target=stream, daemon=True)
    publisher.start()
    time.sleep(1.0)
    code = proc.stop()
    stop.set()
    publisher.join(timeout=5)
    errors = [line for line in proc.output().splitlines() if line.startswith("[ERROR]") and "dropping image" not in line]
    assert code == 0 and not errors, errors
