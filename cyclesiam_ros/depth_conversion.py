"""Aligned depth (sensor_msgs/Image 16UC1 mm / 32FC1 m) and sensor_msgs/CameraInfo -> numpy
and `Intrinsics`, validated: each problem raises `ImageConversionError` with a fixed `kind`
(the throttle key of its log line) and a sentence naming what is wrong."""

from __future__ import annotations

import numpy as np

from cyclesiam.depth3d import Intrinsics
from cyclesiam_ros.image_conversion import ImageConversionError
from cyclesiam_ros.log_throttle import untrusted

# encoding -> numpy little-endian dtype (REP 118: 16-bit unsigned millimetres, 32-bit float metres)
DEPTH_ENCODINGS = {"16UC1": "<u2", "mono16": "<u2", "32FC1": "<f4"}


def depth_from_msg(msg, max_pixels: int) -> np.ndarray:
    """A depth image as HxW uint16 (mm) or float32 (m), rows read through `step`."""
    if msg.encoding not in DEPTH_ENCODINGS:
        raise ImageConversionError("depth_encoding", f"unsupported depth encoding '{untrusted(msg.encoding)}'; "
                                   f"supported: {sorted(DEPTH_ENCODINGS)} (16-bit mm or 32-bit float m)")
    if msg.width == 0 or msg.height == 0:
        raise ImageConversionError("depth_empty", f"empty depth image {msg.width}x{msg.height}")
    if msg.width * msg.height > max_pixels:
        raise ImageConversionError("depth_too_large", f"depth image {msg.width}x{msg.height} is above the limit of "
                                   f"{max_pixels} pixels (max_image_pixels)")
    dtype = np.dtype(DEPTH_ENCODINGS[msg.encoding])
    if msg.is_bigendian:
        dtype = dtype.newbyteorder(">")
    row = msg.width * dtype.itemsize
    if msg.step < row:
        raise ImageConversionError("depth_step", f"depth step {msg.step} is smaller than width*{dtype.itemsize} = "
                                   f"{row} for {msg.width}x{msg.height} {msg.encoding}")
    if len(msg.data) != msg.step * msg.height:
        raise ImageConversionError("depth_data_size", f"depth data has {len(msg.data)} bytes, expected step*height "
                                   f"= {msg.step}*{msg.height} = {msg.step * msg.height}")
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)[:, :row]
    return np.ascontiguousarray(rows).view(dtype).astype(dtype.newbyteorder("="), copy=False)


def intrinsics_from_info(msg) -> Intrinsics:
    """fx, fy, cx, cy from CameraInfo `k` (the intrinsics of the image the depth is aligned to)."""
    k = [float(v) for v in msg.k]
    intrinsics = Intrinsics(fx=k[0], fy=k[4], cx=k[2], cy=k[5], width=int(msg.width), height=int(msg.height))
    problem = intrinsics.problem()
    if problem is not None:
        raise ImageConversionError("camera_info", f"unusable camera_info: {problem}")
    return intrinsics
