"""Tracking results -> ROS messages (vision_msgs detections, status, mask, debug image)."""

from __future__ import annotations

import numpy as np
from sensor_msgs.msg import Image
from vision_msgs.msg import BoundingBox2D, Detection2D, Detection2DArray, ObjectHypothesisWithPose

from cyclesiam_ros.image_conversion import fill_image_msg
from cyclesiam_ros.msg import TrackStatus, TrackStatusArray

STATE_CODES = {"tracking": TrackStatus.TRACKING, "lost": TrackStatus.LOST}


def stamp_ns(header) -> int:
    """A std_msgs/Header stamp as integer nanoseconds."""
    return int(header.stamp.sec) * 1_000_000_000 + int(header.stamp.nanosec)


def bbox_msg(x: float, y: float, w: float, h: float) -> BoundingBox2D:
    box = BoundingBox2D()
    box.center.position.x = float(x + w / 2.0)
    box.center.position.y = float(y + h / 2.0)
    box.size_x = float(w)
    box.size_y = float(h)
    return box


def bbox_to_xywh(box: BoundingBox2D) -> tuple[float, float, float, float]:
    """vision_msgs box (center + size) -> (x, y, w, h); NaN/inf pass through for validation."""
    w, h = float(box.size_x), float(box.size_y)
    return float(box.center.position.x) - w / 2.0, float(box.center.position.y) - h / 2.0, w, h


def detection_msg(result, header, class_id: str) -> Detection2D:
    det = Detection2D()
    det.header = header
    det.id = result.id
    det.bbox = bbox_msg(*result.bbox)
    hypothesis = ObjectHypothesisWithPose()
    hypothesis.hypothesis.class_id = class_id
    hypothesis.hypothesis.score = float(result.score)
    hypothesis.pose.pose.position.x = det.bbox.center.position.x
    hypothesis.pose.pose.position.y = det.bbox.center.position.y
    det.results = [hypothesis]
    return det


def detections_msg(results, header, class_ids: dict[str, str]) -> Detection2DArray:
    """Only targets currently tracked (LOST ones are reported in the status only)."""
    out = Detection2DArray()
    out.header = header
    out.detections = [detection_msg(r, header, class_ids.get(r.id, "")) for r in results if r.state == "tracking"]
    return out


def status_msg(results, header, latency: float, dropped: int,
               depth_status: dict[str, str] | None = None, model: str = "") -> TrackStatusArray:
    out = TrackStatusArray()
    out.header = header
    out.dropped_frames = int(dropped)
    out.model = model
    for r in results:
        st = TrackStatus()
        st.header = header
        st.id = r.id
        st.state = STATE_CODES[r.state]
        st.score = float(r.score)
        st.bbox = bbox_msg(*r.bbox)
        st.latency = float(latency)
        st.depth_status = (depth_status or {}).get(r.id, "")
        out.targets.append(st)
    return out


def union_mask(results, shape: tuple[int, int]) -> np.ndarray:
    """255 where any tracked target's mask (or, without a mask, its box) covers the pixel."""
    mask = np.zeros(shape, dtype=np.uint8)
    height, width = shape
    for r in results:
        if r.state != "tracking":
            continue
        if r.mask is not None and r.mask.shape == shape:
            # 0/1 bytes times 255, OR-ed in: a boolean-index scatter costs 0.1 ms (blocky mask) to 1.4 ms (speckled)
            np.bitwise_or(mask, (r.mask > 0).view(np.uint8) * np.uint8(255), out=mask)
        else:
            x, y, w, h = r.bbox
            x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
            x1, y1 = min(width, int(round(x + w))), min(height, int(round(y + h)))
            mask[y0:y1, x0:x1] = 255
    return mask


def mono8_msg(mask: np.ndarray, header) -> Image:
    return fill_image_msg(Image(), mask, header, "mono8")


def bgr8_msg(image: np.ndarray, header) -> Image:
    return fill_image_msg(Image(), image, header, "bgr8")
