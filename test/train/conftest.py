"""Training-test fixtures: real rosbag2 files (MCAP / SQLite3, Image / CompressedImage) written from real video."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import pytest

FPS_NS = 33_333_333  # 30 Hz
T0_NS = 1_700_000_000 * 1_000_000_000


def stamp_of(i: int) -> int:
    return T0_NS + i * FPS_NS


def _time(store, ns: int):
    return store.types["builtin_interfaces/msg/Time"](sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def _header(store, ns: int, frame_id: str = "camera"):
    return store.types["std_msgs/msg/Header"](stamp=_time(store, ns), frame_id=frame_id)


def write_bag(path: Path, frames: Sequence[np.ndarray], storage: str = "mcap", topics: Sequence[str] = ("/camera/image",),
              compressed: bool = False, detections: Sequence[tuple[int, list[tuple[float, float, float, float]]]] = (),
              detection_topic: str = "/detections", empty_topics: Sequence[str] = ()) -> Path:
    """A rosbag2 directory with `frames` on each of `topics` (bgr8 Image or JPEG CompressedImage),
    optional vision_msgs/Detection2DArray messages [(frame index, [xywh boxes])], and image topics with no messages."""
    from rosbags.rosbag2 import StoragePlugin, Writer

    from cyclesiam_train.seeds import vision_msgs_typestore

    store = vision_msgs_typestore()
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    msgtype = "sensor_msgs/msg/CompressedImage" if compressed else "sensor_msgs/msg/Image"
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = [writer.add_connection(t, msgtype, typestore=store) for t in topics]
        for t in empty_topics:
            writer.add_connection(t, "sensor_msgs/msg/Image", typestore=store)
        det_conn = None
        if detections:
            det_conn = writer.add_connection(detection_topic, "vision_msgs/msg/Detection2DArray", typestore=store)
        dets = dict(detections)
        for i, frame in enumerate(frames):
            ns = stamp_of(i)
            for conn in conns:
                if compressed:
                    ok, buf = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 92])
                    assert ok
                    msg = store.types[msgtype](header=_header(store, ns), format="jpeg",
                                               data=np.frombuffer(buf.tobytes(), dtype=np.uint8))
                else:
                    h, w = frame.shape[:2]
                    msg = store.types[msgtype](header=_header(store, ns), height=h, width=w, encoding="bgr8",
                                               is_bigendian=0, step=w * 3,
                                               data=np.ascontiguousarray(frame).reshape(-1))
                writer.write(conn, ns + 1_000_000, store.serialize_cdr(msg, msgtype))  # recorded 1 ms later
            if det_conn is not None and i in dets:
                writer.write(det_conn, ns + 5_000_000, store.serialize_cdr(_detections(store, ns, dets[i]),
                                                                           "vision_msgs/msg/Detection2DArray"))
    return path


def _detections(store, ns: int, boxes):
    T = store.types
    items = []
    for n, (x, y, w, h) in enumerate(boxes):
        pose = T["geometry_msgs/msg/PoseWithCovariance"](
            pose=T["geometry_msgs/msg/Pose"](position=T["geometry_msgs/msg/Point"](x=0.0, y=0.0, z=0.0),
                                             orientation=T["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=0.0, w=1.0)),
            covariance=np.zeros(36, dtype=np.float64))
        hyp = T["vision_msgs/msg/ObjectHypothesisWithPose"](
            hypothesis=T["vision_msgs/msg/ObjectHypothesis"](class_id="object", score=0.9), pose=pose)
        bbox = T["vision_msgs/msg/BoundingBox2D"](
            center=T["vision_msgs/msg/Pose2D"](position=T["vision_msgs/msg/Point2D"](x=x + w / 2, y=y + h / 2), theta=0.0),
            size_x=float(w), size_y=float(h))
        items.append(T["vision_msgs/msg/Detection2D"](header=_header(store, ns), results=[hyp], bbox=bbox, id=str(n)))
    return T["vision_msgs/msg/Detection2DArray"](header=_header(store, ns), detections=items)


@pytest.fixture(scope="session")
def tree_frames(tree_video, read_frames) -> list[np.ndarray]:
    """The first 12 frames of the real tree.avi clip (320x240 BGR)."""
    return read_frames(tree_video, 12)


@pytest.fixture(scope="session")
def tree_bag(tmp_path_factory, tree_frames) -> Path:
    """A real MCAP rosbag2 with raw bgr8 Images of tree.avi on /camera/image."""
    return write_bag(tmp_path_factory.mktemp("bags") / "tree_mcap", tree_frames, storage="mcap")


@pytest.fixture(scope="session")
def light_overrides() -> list[str]:
    """Small, fast settings for CLI runs in tests (light backbone, tiny batch, no workers)."""
    return ["model.backbone=light", "train.batch_size=2", "train.workers=0", "train.warmup_steps=0",
            "train.log_every=1", "runtime.device=cpu"]
