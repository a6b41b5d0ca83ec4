"""3D results -> ROS messages: vision_msgs/Detection3D(Array), geometry_msgs/PointStamped and
an RViz visualization_msgs/MarkerArray (a box and a label per target), all in the colour
image's optical frame and with its header."""

from __future__ import annotations

import colorsys
import zlib

from geometry_msgs.msg import PointStamped
from vision_msgs.msg import Detection3D, Detection3DArray, ObjectHypothesisWithPose
from visualization_msgs.msg import Marker, MarkerArray

from cyclesiam.depth3d import Target3D

MARKER_NS = "cyclesiam_3d"
MIN_MARKER_SIDE = 0.005  # m: RViz draws nothing for a zero scale (a flat surface has no depth extent)


def detection3d_msg(target_id: str, target: Target3D, header, class_id: str, score: float) -> Detection3D:
    det = Detection3D()
    det.header = header
    det.id = target_id
    det.bbox.center.position.x, det.bbox.center.position.y, det.bbox.center.position.z = target.center
    det.bbox.center.orientation.w = 1.0  # axis-aligned in the optical frame
    det.bbox.size.x, det.bbox.size.y, det.bbox.size.z = target.size
    hypothesis = ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id = class_id
    hypothesis.hypothesis.score = float(score)
    hypothesis.pose.pose = det.bbox.center
    det.results = [hypothesis]
    return det


def detections3d_msg(targets: dict[str, Target3D], header, class_ids: dict[str, str],
                     scores: dict[str, float]) -> Detection3DArray:
    out = Detection3DArray()
    out.header = header
    out.detections = [detection3d_msg(tid, t, header, class_ids.get(tid, ""), scores.get(tid, 0.0))
                      for tid, t in targets.items()]
    return out


def point_msg(target: Target3D, header) -> PointStamped:
    out = PointStamped()
    out.header = header
    out.point.x, out.point.y, out.point.z = target.center
    return out


def markers_msg(targets: dict[str, Target3D], header) -> MarkerArray:
    """DELETEALL, then per target a translucent CUBE and a TEXT_VIEW_FACING label above it
    (optical frame: y points down, so 'above' is -y)."""
    clear = Marker(action=Marker.DELETEALL, ns=MARKER_NS)
    clear.header = header
    markers = [clear]
    for index, (tid, target) in enumerate(targets.items()):
        r, g, b = _colour(tid)
        cube = Marker(ns=MARKER_NS, id=2 * index, type=Marker.CUBE, action=Marker.ADD)
        cube.header = header
        cube.pose.position.x, cube.pose.position.y, cube.pose.position.z = target.center
        cube.pose.orientation.w = 1.0
        cube.scale.x, cube.scale.y, cube.scale.z = (max(MIN_MARKER_SIDE, s) for s in target.size)
        cube.color.r, cube.color.g, cube.color.b, cube.color.a = r, g, b, 0.4
        label = Marker(ns=MARKER_NS, id=2 * index + 1, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
        label.header = header
        label.pose.position.x, label.pose.position.y, label.pose.position.z = target.center
        label.pose.position.y -= target.size[1] / 2 + 0.03
        label.pose.orientation.w = 1.0
        label.scale.z = 0.05  # text height, m
        label.color.r, label.color.g, label.color.b, label.color.a = r, g, b, 1.0
        label.text = f"{tid} {target.center[2]:.2f} m"
        markers += [cube, label]
    return MarkerArray(markers=markers)


def _colour(target_id: str) -> tuple[float, float, float]:
    """A stable colour per id (the same id keeps its colour across frames and runs)."""
    return colorsys.hsv_to_rgb((zlib.crc32(target_id.encode()) % 360) / 360.0, 0.8, 1.0)
