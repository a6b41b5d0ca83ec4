"""The ~/record writer (cyclesiam_ros/recorder.py) on real video frames: bounds in frames, bytes and
every_nth, the writer queue's drops, a clean close, and the bag read back by cyclesiam's bag source
(what `cyclesiam-adapt --data BAG` reads)."""

from __future__ import annotations

import time
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from rclpy.serialization import serialize_message
from sensor_msgs.msg import CompressedImage, Image
from vision_msgs.msg import Detection2D, Detection2DArray

from cyclesiam.sources import open_source
from cyclesiam_ros.recorder import BagRecorder, RecordError, RecordLimits, bag_path, limits_for
from cyclesiam_train.seeds import read_detection_topic

TOPIC = "/robot/camera/image_raw"
DETECTIONS = "/robot/cyclesiam_tracker/detections"
T0 = 1_700_000_000_000_000_000
STEP = 33_333_333


@pytest.fixture(scope="module")
def frames(tree_video, read_frames):
    return read_frames(tree_video, 30)


def image_msg(frame: np.ndarray, i: int) -> Image:
    msg = Image(height=frame.shape[0], width=frame.shape[1], encoding="bgr8", step=frame.shape[1] * 3)
    msg.data = frame.tobytes()
    msg.header.frame_id = "camera"
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(T0 + i * STEP, 1_000_000_000)
    return msg


def record(tmp_path, msgs, limits: RecordLimits, queue_size: int = 100, pace: float = 0.0):
    recorder = BagRecorder(queue_size, log=lambda text: None)
    path = tmp_path / "bag"
    recorder.start(path, TOPIC, limits)
    for msg in msgs:
        recorder.offer(msg)
        if pace:
            time.sleep(pace)
    return recorder, path, recorder.stop()


def test_every_nth_frame_with_its_topic_stamp_and_pixels(tmp_path, frames):
    msgs = [image_msg(f, i) for i, f in enumerate(frames)]
    _, path, summary = record(tmp_path, msgs, RecordLimits(max_frames=1000, max_bytes=1 << 30, every_nth=3))
    assert (summary.frames, summary.dropped, summary.stopped) == (10, 0, "stop request")
    source = open_source(path, TOPIC)
    assert len(source) == 10
    np.testing.assert_array_equal(source.stamps, [T0 + i * STEP for i in range(0, 30, 3)])
    for n, (_, _, image) in enumerate(source):
        np.testing.assert_array_equal(image, frames[3 * n])
    assert (path / "metadata.yaml").is_file() and list(path.glob("*.mcap"))


def test_stops_itself_at_max_frames(tmp_path, frames):
    msgs = [image_msg(f, i) for i, f in enumerate(frames)]
    recorder, path, _ = record(tmp_path, msgs, RecordLimits(max_frames=7, max_bytes=1 << 30, every_nth=1), pace=0.002)
    summary = recorder.summary()
    assert (summary.frames, summary.stopped) == (7, "max_frames") and not recorder.active
    assert len(open_source(path, TOPIC)) == 7


def test_stops_itself_before_max_bytes(tmp_path, frames):
    msgs = [image_msg(f, i) for i, f in enumerate(frames)]
    size = len(serialize_message(msgs[0]))
    limit = int(4.5 * size)
    recorder, path, summary = record(tmp_path, msgs, RecordLimits(max_frames=1000, max_bytes=limit, every_nth=1),
                                     pace=0.002)
    assert (summary.frames, summary.stopped) == (4, "max_bytes")
    assert summary.bytes == 4 * size <= limit
    assert len(open_source(path, TOPIC)) == 4


def test_a_full_writer_queue_drops_and_counts(tmp_path):
    big = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    msgs = [image_msg(big, i) for i in range(60)]
    _, path, summary = record(tmp_path, msgs, RecordLimits(max_frames=1000, max_bytes=1 << 34, every_nth=1),
                              queue_size=1)
    assert summary.frames + summary.dropped == 60
    assert summary.dropped > 0
    assert len(open_source(path, TOPIC)) == summary.frames


def test_compressed_images_keep_their_type(tmp_path, frames):
    msgs = []
    for i, f in enumerate(frames[:5]):
        msg = CompressedImage(format="jpeg", data=cv2.imencode(".jpg", f)[1].tobytes())
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(T0 + i * STEP, 1_000_000_000)
        msgs.append(msg)
    _, path, summary = record(tmp_path, msgs, RecordLimits(1000, 1 << 30, 1))
    source = open_source(path, TOPIC)
    assert summary.frames == 5 and source.msgtype == "sensor_msgs/msg/CompressedImage"
    assert source.frame(0).shape == frames[0].shape


def test_refusals_and_defaults(tmp_path, frames):
    recorder = BagRecorder(4, log=lambda text: None)
    recorder.start(tmp_path / "a", TOPIC, RecordLimits(10, 1 << 30, 1))
    with pytest.raises(RecordError, match="already recording"):
        recorder.start(tmp_path / "b", TOPIC, RecordLimits(10, 1 << 30, 1))
    recorder.offer(image_msg(frames[0], 0))
    assert recorder.stop().frames == 1
    with pytest.raises(RecordError, match="exists already"):
        recorder.start(tmp_path / "a", TOPIC, RecordLimits(10, 1 << 30, 1))
    settings = SimpleNamespace(record_max_frames=3000, record_max_mb=2048, record_every_nth=3, record_dir=str(tmp_path))
    request = SimpleNamespace(max_frames=0, max_bytes=0, every_nth=0)
    assert limits_for(request, settings) == RecordLimits(3000, 2048 << 20, 3)
    assert limits_for(SimpleNamespace(max_frames=5, max_bytes=100, every_nth=2), settings) == RecordLimits(5, 100, 2)
    first = bag_path("", str(tmp_path))
    assert first.parent == tmp_path and first.name.startswith("record_")
    first.mkdir()
    assert bag_path("", str(tmp_path)) != first


def detections_of(frame_msg: Image, box: tuple[float, float, float, float]) -> Detection2DArray:
    """What the node publishes on ~/detections for a tracked frame: one TRACKING target."""
    out = Detection2DArray()
    out.header = frame_msg.header
    detection = Detection2D(id="tree")
    detection.header = frame_msg.header
    x, y, w, h = box
    detection.bbox.center.position.x, detection.bbox.center.position.y = x + w / 2, y + h / 2
    detection.bbox.size_x, detection.bbox.size_y = w, h
    out.detections = [detection]
    return out


def test_the_tracked_boxes_of_recorded_frames_are_seeds_for_adapt(tmp_path, frames):
    """Every 3rd frame recorded; the node's detections are offered for every frame it tracked (some late,
    frame 6 never tracked): only those of recorded frames land in the bag, once each, under the
    detections topic, and read back as seeds at exactly the recorded stamps."""
    msgs = [image_msg(f, i) for i, f in enumerate(frames[:12])]
    boxes = {i: (100.0 + i, 60.0, 60.0, 70.0) for i in range(12)}
    recorder = BagRecorder(100, log=lambda text: None)
    path = tmp_path / "bag"
    recorder.start(path, TOPIC, RecordLimits(max_frames=1000, max_bytes=1 << 30, every_nth=3), DETECTIONS)
    for i, msg in enumerate(msgs):
        recorder.offer(msg)
        assert recorder.wants_result(msg.header) == (i % 3 == 0)
        if i >= 1 and i - 1 != 6:  # each frame's boxes one frame late; frame 6 is never tracked
            recorder.offer_result(detections_of(msgs[i - 1], boxes[i - 1]))
    recorder.offer_result(detections_of(msgs[0], boxes[0]))  # a second message for frame 0: not written
    summary = recorder.stop()
    assert (summary.frames, summary.results, summary.results_topic) == (4, 3, DETECTIONS)
    assert "3 tracked-box message(s)" in summary.describe()
    seeds = read_detection_topic(path, DETECTIONS, TOPIC)
    assert [s.stamp_ns for s in seeds] == [T0, T0 + 3 * STEP, T0 + 9 * STEP]  # frames 0, 3, 9 (6: not tracked)
    assert [s.box for s in seeds] == [boxes[0], boxes[3], boxes[9]]
    assert len(open_source(path, TOPIC)) == 4  # the frames read as before


def test_without_a_detections_topic_nothing_but_frames(tmp_path, frames):
    msgs = [image_msg(f, i) for i, f in enumerate(frames[:4])]
    recorder = BagRecorder(10, log=lambda text: None)
    recorder.start(tmp_path / "bag", TOPIC, RecordLimits(1000, 1 << 30, 1))
    for msg in msgs:
        recorder.offer(msg)
        assert not recorder.wants_result(msg.header)
        recorder.offer_result(detections_of(msg, (1.0, 1.0, 5.0, 5.0)))
    summary = recorder.stop()
    assert (summary.frames, summary.results) == (4, 0) and "tracked-box" not in summary.describe()
    from rosbags.highlevel import AnyReader
    with AnyReader([tmp_path / "bag"]) as reader:
        assert {c.topic for c in reader.connections} == {TOPIC}
