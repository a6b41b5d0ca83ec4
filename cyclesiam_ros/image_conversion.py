"""sensor_msgs Image / CompressedImage <-> numpy, validated.

Every check names what is wrong and carries a fixed `kind`, so a camera driver with a bad encoding
or a wrong `step` shows up as one clear (throttled) log line instead of a crash or a garbled frame.
Rows are read through `step` (drivers that align rows pad them), and the decoded size is bounded
before any pixel buffer is made: from width x height for raw images, from the PNG/JPEG header for
compressed ones (a 62 KB PNG can declare 64 MB of pixels).
"""

from __future__ import annotations

import array as pyarray
import os
import re
import struct
import sys
import tempfile
import threading
from typing import Callable

import cv2
import numpy as np
from rosbags.image import ImageError as RosbagsImageError
from rosbags.image.image import convert_color

from cyclesiam_ros.log_throttle import untrusted

# encoding -> (channels, bytes per channel, the 8-bit encoding it is converted as)
SUPPORTED_ENCODINGS = {
    "mono8": (1, 1, "mono8"),
    "mono16": (1, 2, "mono8"),
    "bgr8": (3, 1, "bgr8"),
    "rgb8": (3, 1, "rgb8"),
    "bgra8": (4, 1, "bgra8"),
    "rgba8": (4, 1, "rgba8"),
    "8UC1": (1, 1, "mono8"),
    "8UC3": (3, 1, "bgr8"),
    "bayer_rggb8": (1, 1, "bayer_rggb8"),
    "bayer_bggr8": (1, 1, "bayer_bggr8"),
    "bayer_gbrg8": (1, 1, "bayer_gbrg8"),
    "bayer_grbg8": (1, 1, "bayer_grbg8"),
}
DEFAULT_MAX_PIXELS = 1 << 24  # 16.8 MP: a 4096x4096 frame (48 MiB as bgr8)

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SOI = b"\xff\xd8"
# JPEG start-of-frame markers (SOF0-3, 5-7, 9-11, 13-15; C4/C8/CC are DHT/JPG/DAC)
_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, 0xD8} | set(range(0xD0, 0xD8))
# rcutils' default console format: lines another thread logged while stderr was captured.
# rcutils writes a line in one write(); libpng writes its message and its newline in two, so a
# log line can start in the middle of a decoder line ("libpng error: Read Error[INFO] ...").
_LOG_LINE_START = re.compile(r"\[(DEBUG|INFO|WARN|ERROR|FATAL)\] ")
_STDERR_LOCK = threading.Lock()


class ImageConversionError(ValueError):
    """An image message that cannot be turned into a frame; the message says why, `kind` which
    problem it is (a fixed string: the throttle key of its log line)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def image_to_bgr(msg, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """A sensor_msgs/Image as a contiguous HxWx3 uint8 BGR array (validated, rows read via `step`)."""
    channels, depth, as_encoding = _check_raw(msg, max_pixels)
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.step)
    pixels = np.ascontiguousarray(rows[:, : msg.width * channels * depth])
    if depth == 2:
        pixels = _to_8bit(pixels.view(">u2" if msg.is_bigendian else "<u2"))
    shape = (msg.height, msg.width) if channels == 1 else (msg.height, msg.width, channels)
    try:
        image = convert_color(pixels.reshape(shape), as_encoding, "bgr8")
    except (RosbagsImageError, cv2.error) as exc:
        raise ImageConversionError("convert", f"cannot convert {untrusted(msg.encoding)} image: {untrusted(exc)}") from exc
    return np.ascontiguousarray(image)


def _check_raw(msg, max_pixels: int) -> tuple[int, int, str]:
    if msg.encoding not in SUPPORTED_ENCODINGS:
        raise ImageConversionError(
            "encoding", f"unsupported encoding '{untrusted(msg.encoding)}'; supported: {sorted(SUPPORTED_ENCODINGS)}"
        )
    if msg.width == 0 or msg.height == 0:
        raise ImageConversionError("empty", f"empty image {msg.width}x{msg.height}")
    _check_pixels(msg.width, msg.height, max_pixels)
    channels, depth, as_encoding = SUPPORTED_ENCODINGS[msg.encoding]
    row = msg.width * channels * depth
    if msg.step < row:
        raise ImageConversionError(
            "step", f"step {msg.step} is smaller than width*channels*bytes = {row} for {msg.width}x{msg.height} {msg.encoding}"
        )
    if len(msg.data) != msg.step * msg.height:
        raise ImageConversionError(
            "data_size",
            f"data has {len(msg.data)} bytes, expected step*height = {msg.step}*{msg.height} = {msg.step * msg.height}",
        )
    return channels, depth, as_encoding


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width * height > max_pixels:
        raise ImageConversionError(
            "too_large", f"image {width}x{height} = {width * height} pixels is above the limit of {max_pixels} (max_image_pixels)"
        )


def _to_8bit(values: np.ndarray) -> np.ndarray:
    """16-bit intensities as 8-bit, rounded (65535 -> 255, 257*v -> v exactly)."""
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def compressed_to_bgr(
    msg, max_pixels: int = DEFAULT_MAX_PIXELS, warn: Callable[[str], object] | None = None
) -> np.ndarray:
    """A sensor_msgs/CompressedImage (PNG or JPEG, told by its bytes) as HxWx3 uint8 BGR.

    The size is read from the header and checked against `max_pixels` before decoding. What the
    decoder libraries print (libpng/libjpeg warnings) is passed to `warn` instead of stderr.
    """
    data = msg.data if isinstance(msg.data, (bytes, bytearray)) else bytes(msg.data)
    if len(data) == 0:
        raise ImageConversionError("compressed_empty", "compressed image has no data")
    kind, width, height = compressed_header(data)
    _check_pixels(width, height, max_pixels)
    image, decoder_text = _decode_quietly(np.frombuffer(data, np.uint8))
    if image is None or image.size == 0:
        detail = f": {untrusted(decoder_text, 200)}" if decoder_text else ""
        raise ImageConversionError("compressed_decode", f"cannot decode {kind} image {width}x{height}{detail}")
    if decoder_text and warn is not None:
        warn(f"{kind} decoder: {untrusted(decoder_text, 200)}")
    return np.ascontiguousarray(image)


def compressed_header(data: bytes) -> tuple[str, int, int]:
    """("png" | "jpeg", width, height) read from the header bytes, without decoding."""
    if data.startswith(PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageConversionError("compressed_header", "PNG without an IHDR header")
        width, height = struct.unpack(">II", data[16:24])
        return "png", *_nonzero(width, height, "png")
    if data.startswith(JPEG_SOI):
        return "jpeg", *_nonzero(*_jpeg_size(data), "jpeg")
    raise ImageConversionError("compressed_format", f"compressed data is neither PNG nor JPEG (starts {data[:8].hex()})")


def _nonzero(width: int, height: int, kind: str) -> tuple[int, int]:
    if width == 0 or height == 0:
        raise ImageConversionError("compressed_header", f"{kind} header declares an empty image {width}x{height}")
    return width, height


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Walk the JPEG marker segments up to the frame header (SOFn) and read its size."""
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            raise ImageConversionError("compressed_header", f"JPEG marker expected at byte {i}")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in _JPEG_STANDALONE:
            i += 2
            continue
        if marker in (0xDA, 0xD9):
            break
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        if marker in _JPEG_SOF:
            if length < 7 or i + 9 > len(data):
                break
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return width, height
        if length < 2:
            break
        i += 2 + length
    raise ImageConversionError("compressed_header", "JPEG without a readable frame header (SOF) before its scan")


def _decode_quietly(buffer: np.ndarray) -> tuple[np.ndarray | None, str]:
    """cv2.imdecode with the process's stderr captured: libpng/libjpeg write their warnings to
    stderr directly (one line per bad frame, unthrottled). Lines other threads logged meanwhile
    (rcutils format) are written back to stderr; the rest is the decoder's and is returned."""
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(2)
        try:
            os.dup2(sink.fileno(), 2)
            try:
                image = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
            except cv2.error as exc:
                image = None
                sink.write(f"{exc}\n".encode())
            finally:
                sys.stderr.flush()
                os.dup2(saved, 2)
        finally:
            os.close(saved)
        sink.seek(0)
        captured = sink.read().decode(errors="replace")
    decoder, others = split_captured_stderr(captured)
    if others:
        os.write(2, "".join(others).encode())
    return image, " | ".join(decoder)


def split_captured_stderr(captured: str) -> tuple[list[str], list[str]]:
    """What stderr caught during a decode, as (the decoder's messages, stripped; whole log lines
    other threads wrote, newline-terminated, to be written back)."""
    decoder, others = [], []
    for line in captured.splitlines():
        start = _LOG_LINE_START.search(line)
        message = line if start is None else line[: start.start()]
        if message.strip():
            decoder.append(message.strip())
        if start is not None:
            others.append(line[start.start() :] + "\n")
    return decoder, others


def mask_from_msg(msg, width: int, height: int) -> np.ndarray | None:
    """An optional mono8 mask message as bool HxW; None when empty; error on size/encoding mismatch."""
    if msg.width == 0 and msg.height == 0:
        return None
    if (msg.width, msg.height) != (width, height):
        raise ImageConversionError("mask_size", f"mask is {msg.width}x{msg.height} but the image is {width}x{height}")
    if msg.encoding not in ("mono8", "8UC1"):
        raise ImageConversionError("mask_encoding", f"mask encoding must be mono8, got '{untrusted(msg.encoding)}'")
    if msg.step < msg.width or len(msg.data) != msg.step * msg.height:
        raise ImageConversionError(
            "mask_data_size", f"mask data size {len(msg.data)} does not match step {msg.step} x height {msg.height}"
        )
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
    msg.data = image_bytes(array)
    return msg


def image_bytes(array: np.ndarray) -> pyarray.array:
    """The pixels of a contiguous uint8 array as the array.array('B') a uint8[] field holds:
    one copy, and the field's setter takes it as is (bytes would be copied again and, under
    ROS_PYTHON_CHECK_FIELDS=1, checked value by value in Python)."""
    data = pyarray.array("B")
    data.frombytes(memoryview(array).cast("B"))
    return data
