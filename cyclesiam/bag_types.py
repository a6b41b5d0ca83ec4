"""Message types that rosbags' ROS 2 typestore lacks, for the bags we write and read: vision_msgs
(the node's ~/detections recorded by ~/record, the seed topics of cyclesiam-train / cyclesiam-adapt)."""

from __future__ import annotations

from typing import Any

# vision_msgs 4.x (Jazzy), field lists exactly as upstream (DESIGN.md section 4)
VISION_MSGS_DEFS: dict[str, str] = {
    "vision_msgs/msg/Point2D": "float64 x\nfloat64 y\n",
    "vision_msgs/msg/Pose2D": "vision_msgs/Point2D position\nfloat64 theta\n",
    "vision_msgs/msg/BoundingBox2D": "vision_msgs/Pose2D center\nfloat64 size_x\nfloat64 size_y\n",
    "vision_msgs/msg/ObjectHypothesis": "string class_id\nfloat64 score\n",
    "vision_msgs/msg/ObjectHypothesisWithPose": (
        "vision_msgs/ObjectHypothesis hypothesis\ngeometry_msgs/PoseWithCovariance pose\n"),
    "vision_msgs/msg/Detection2D": (
        "std_msgs/Header header\nvision_msgs/ObjectHypothesisWithPose[] results\n"
        "vision_msgs/BoundingBox2D bbox\nstring id\n"),
    "vision_msgs/msg/Detection2DArray": "std_msgs/Header header\nvision_msgs/Detection2D[] detections\n",
}
DETECTION_ARRAY = "vision_msgs/msg/Detection2DArray"


def vision_msgs_typestore(store: Any = None) -> Any:
    """A rosbags typestore (default: ROS 2 Jazzy) with the vision_msgs types registered."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = store if store is not None else get_typestore(Stores.ROS2_JAZZY)
    missing = {k: v for k, v in VISION_MSGS_DEFS.items() if k not in store.types}
    types: dict[str, Any] = {}
    for name, text in missing.items():
        types.update(get_types_from_msg(text, name))
    if types:
        store.register(types)
    return store


__all__ = ["DETECTION_ARRAY", "VISION_MSGS_DEFS", "vision_msgs_typestore"]
