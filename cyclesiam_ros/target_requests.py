"""Checks on what clients and detectors send the node (ids, boxes, scores) and the matching of
id-less detections to existing targets. ROS-free: the node turns a `Refused` into a reply or a
throttled log line keyed by its `kind`."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

from cyclesiam.bbox import iou
from cyclesiam.tracker import validate_box
from cyclesiam_ros.log_throttle import UNTRUSTED_LIMIT, untrusted

MAX_ID_LENGTH = UNTRUSTED_LIMIT  # ids go out in every ~/status and log line: bounded like any echoed string
MIN_BOX_SIDE = 1.0  # pixels, after clipping to the image
MAX_BOX_IMAGES = 4.0  # a box side more than this many image sides is a unit or sign error

Box = tuple[float, float, float, float]


class Refused(ValueError):
    """A request the node refuses; the message says why, `kind` is the fixed throttle key."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def check_id(value: str, what: str = "id") -> str:
    """`value` when it is a usable id (or class id): at most 64 printable characters."""
    if len(value) > MAX_ID_LENGTH:
        raise Refused(f"{what}_length", f"{what} has {len(value)} characters, at most {MAX_ID_LENGTH} allowed: '{untrusted(value)}'")
    if not value.isprintable():
        raise Refused(f"{what}_characters", f"{what} has control characters: '{untrusted(value)}'")
    return value


def check_score(score: float) -> float:
    """A detector hypothesis score in [0, 1]; NaN, inf and anything outside are refused."""
    if not (math.isfinite(score) and 0.0 <= score <= 1.0):
        raise Refused("detection_score", f"score {score!r} is not in [0, 1]")
    return score


def check_box(xywh: Sequence[float], image_shape: Sequence[int]) -> Box:
    """The box (x, y, w, h) clipped to the image; refused when not finite, outside, thinner than
    1 px once clipped, or more than 4 image sides long."""
    try:
        x, y, w, h = validate_box(xywh, image_shape)
    except ValueError as exc:
        raise Refused("box", str(exc)) from None
    height, width = int(image_shape[0]), int(image_shape[1])
    if xywh[2] > MAX_BOX_IMAGES * width or xywh[3] > MAX_BOX_IMAGES * height:
        raise Refused("box", f"box {tuple(xywh)} is more than {MAX_BOX_IMAGES:g}x the {width}x{height} image")
    if w < MIN_BOX_SIDE or h < MIN_BOX_SIDE:
        raise Refused("box", f"box {tuple(xywh)} is {w:.3g}x{h:.3g} px inside the image; at least {MIN_BOX_SIDE:g} px needed")
    return x, y, w, h


def best_overlap(box: Sequence[float], targets: Mapping[str, Sequence[float]], min_iou: float) -> str | None:
    """The id of the target whose box overlaps `box` most, if that IoU is at least `min_iou` (and > 0)."""
    best_id, best = None, min_iou
    for target_id, target_box in targets.items():
        overlap = float(iou(list(box), list(target_box), fmt="xywh"))
        if overlap >= best and overlap > 0.0:
            best_id, best = target_id, overlap
    return best_id
