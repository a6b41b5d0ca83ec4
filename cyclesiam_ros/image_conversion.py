"""sensor_msgs Image / CompressedImage <-> numpy, validated, via rosbags-image.

Every check names what is wrong, so a camera driver with a bad encoding or a
wrong `step` shows up as one clear log line instead of a crash or a garbled frame.
"""

from __future__ import annotations

import numpy as np
from rosbags.image import ImageError as RosbagsImageError
from rosbags.image import compressed_image_to_cvimage, message_to_cvimage

# encoding -> (channels, bytes per channel)
SUPPORTED_ENCODINGS = {
    "mono8": (1, 1),
    "mono16": (1, 2),
    "bgr8": (3, 1),
    "rgb8": (3, 1),
    "bgra8": (4, 1),
    "rgba8": (4, 1),
    "8UC1": (1, 1),
    "8UC3": (3, 1),
    "bayer_rggb8": (1, 1),
    "bayer_bggr8": (1, 1),
    "bayer_gbrg8": (1, 1),
    "bayer_grbg8": (1, 1),
}


class ImageConversionError(ValueError):
    """An image message that cannot be turned into a frame; the message says why."""


def image_to_bgr(msg) -> np.ndarray:
    """A sensor_msgs/Image as a contiguous HxWx3 uint8 BGR array (validated)."""
    if msg.encoding not in SUPPORTED_ENCODINGS:
        raise ImageConversionError(
            f"unsupported encoding '{msg.encoding}'; supported: {sorted(SUPPORTED_ENCODINGS)}"
        )
    if msg.width == 0 or msg.height == 0:
        raise ImageConversionError(f"empty image {msg.width}x{msg.height}")
    channels, depth = SUPPORTED_ENCODINGS[msg.encoding]
    row = msg.width * channels * depth
    if msg.step < row:
        raise ImageConversionError(
            f"step {msg.step} is smaller than width*channels*bytes = {row} for {msg.width}x{msg.height} {msg.encoding}"
        )
    if len(msg.data) != msg.step * msg.height:
        raise ImageConversionError(
            f"data has {len(msg.data)} bytes, expected step*height = {msg.step}*{msg.height} = {msg.step * msg.height}"
        )
    try:
        image = message_to_cvimage(msg, "bgr8")
    except (RosbagsImageError, ValueError) as exc:
        raise ImageConversionError(f"cannot convert {msg.encoding} image: {exc}") from exc
    return np.ascontiguousarray(image)


def compressed_to_bgr(msg) -> np.ndarray:
    """A sensor_msgs/CompressedImage (jpeg/png) as HxWx3 uint8 BGR."""
    if len(msg.data) == 0:
        raise ImageConversionError("compressed image has no data")
    try:
        image = compressed_image_to_cvimage(msg, "bgr8")
    except Exception as exc:  # OpenCV/rosbags raise several types for undecodable data
        raise ImageConversionError(f"cannot decode compressed image (format '{msg.format}'): {exc}") from exc
    if image is None or image.size == 0:
        raise ImageConversionError(f"cannot decode compressed image (format '{msg.format}')")
    return np.ascontiguousarray(image)


def mask_from_msg(msg, width: int, height: int) -> np.ndarray | None:
    """An optional mono8 mask message as bool HxW; None when empty; error on size/encoding mismatch."""
    if msg.width == 0 and msg.height == 0:
        return None
    if (msg.width, msg.height) != (width, height):
        raise ImageConversionError(f"mask is {msg.width}x{msg.height} but the image is {width}x{height}")
    if msg.encoding not in ("mono8", "8UC1"):
        raise ImageConversionError(f"mask encoding must be mono8, got '{msg.encoding}'")
    if msg.step < msg.width or len(msg.data) != msg.step * msg.height:
        raise ImageConversionError(f"mask data size {len(msg.data)} does not match step {msg.step} x height {msg.height}")
    data = np.frombuffer(bytes(msg.data), dtype=np.uint8).reshape(msg.height, msg.step)[:, : msg.width]
    return data > 0


def fill_image_msg(msg, array: np.ndarray, header, encoding: str):
    """Fill a sensor_msgs/Image from a uint8 HxW (mono8) or HxWx3 (bgr8) array."""
    array = np.ascontiguousarray(array)
    msg.header = header
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(array.strides[0])
    msg.data = array.tobytes()
    return msg
