"""Frame sources: video files, image folders, rosbag2 (MCAP / SQLite3) and ROS 1 bags.

Every source yields `(index, stamp_ns or None, frame)` with `frame` a BGR uint8 HxWx3
array, has `len()` and random access `frame(i)` / `stamp(i)`, and is lazy: a bag is
indexed once (timestamps only, nothing kept) and messages are read on demand.

Bags are read with `rosbags.highlevel.AnyReader`; sensor_msgs/Image (any encoding
`rosbags-image` converts: mono8/16, rgb8, bgr8, bgra8, rgba8, bayer, ...) and
sensor_msgs/CompressedImage (jpeg/png) topics are supported. Stamps are the message
header stamps (the record time when a header stamp is zero). Sources re-open their
file handles after a fork and pickle without them (DataLoader workers).

A rosbag2 whose storage file ends early (the recorder was killed: an MCAP without its footer, a
SQLite file cut short) is read up to its last complete message, with one `TruncatedBagWarning`
per bag: the complete part is copied once into a temporary bag (removed at exit) that is read instead.

Every failure is a `SourceError` whose message names the file.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from cyclesiam.bag_salvage import TruncatedBagWarning
from cyclesiam.bag_source import IMAGE_TYPES, BagSource, ImageTopic, list_image_topics
from cyclesiam.frame_source import Frame, FrameSource, SourceError, _frame_to_bgr

# re-exported: callers import every source name from here
__all__ = ["IMAGE_TYPES", "BagSource", "Frame", "FrameSource", "ImageFolderSource", "ImageTopic", "SourceError",
           "TruncatedBagWarning", "VideoSource", "is_bag", "list_image_topics", "open_source"]

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pnm", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mpg", ".mpeg", ".mkv", ".mov", ".webm", ".m4v", ".wmv", ".ogv")
BAG_FILE_EXTENSIONS = (".mcap", ".db3", ".bag")


class VideoSource(FrameSource):
    """A video file read with OpenCV. Sequential reads are streamed; random access re-seeks by decoding."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise SourceError(f"{self.path}: video file not found")
        self._cap: cv2.VideoCapture | None = None
        self._pid = 0
        self._next = 0  # index of the frame the capture returns next
        self._last: tuple[int, np.ndarray] | None = None
        self._count: int | None = None
        first = self._read_at(0)
        # Release the capture: a forked DataLoader worker that opens its own capture while
        # the parent still holds one can hang inside FFmpeg.
        self.close()
        if first is None:
            raise SourceError(f"{self.path}: cannot decode any frame (unsupported codec, corrupt, or zero frames)")

    def _open(self) -> cv2.VideoCapture:
        if self._cap is None or self._pid != os.getpid():
            cap = cv2.VideoCapture(str(self.path))
            if not cap.isOpened():
                raise SourceError(f"{self.path}: OpenCV cannot open this video")
            self._cap, self._pid, self._next = cap, os.getpid(), 0
        return self._cap

    def _read_at(self, index: int) -> np.ndarray | None:
        if self._last is not None and self._last[0] == index:
            return self._last[1]
        cap = self._open()
        if index < self._next:
            self.close()
            cap = self._open()
        while self._next < index:
            if not cap.grab():
                return None
            self._next += 1
        ok, frame = cap.read()
        if not ok or frame is None:
            return None
        self._next += 1
        frame = _frame_to_bgr(frame, self.path)
        self._last = (index, frame)
        return frame

    def __len__(self) -> int:
        if self._count is None:
            cap = cv2.VideoCapture(str(self.path))
            n = 0
            while cap.grab():
                n += 1
            cap.release()
            self._count = n
        return self._count

    def frame(self, index: int) -> np.ndarray:
        i = self._check_index(index) if index < 0 or self._count is not None else index
        frame = self._read_at(i)
        if frame is None:
            raise IndexError(f"{self.path}: frame {index} out of range or undecodable")
        return frame

    def __iter__(self) -> Iterator[Frame]:
        cap = cv2.VideoCapture(str(self.path))
        try:
            i = 0
            while True:
                ok, frame = cap.read()
                if not ok or frame is None:
                    break
                yield i, None, _frame_to_bgr(frame, self.path)
                i += 1
            if self._count is None:
                self._count = i
        finally:
            cap.release()

    def __getstate__(self) -> dict:
        """Pickled (DataLoader workers started by a forkserver) without its capture and cached frame."""
        return dict(self.__dict__, _cap=None, _pid=0, _next=0, _last=None)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
        self._cap, self._next, self._last = None, 0, None


# --------------------------------------------------------------------------- image folder


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


class ImageFolderSource(FrameSource):
    """Images of a folder in natural sort order (png, jpg, pgm, ppm, bmp, tif, webp)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise SourceError(f"{self.path}: image folder not found")
        self.files = sorted(
            (p for p in self.path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS),
            key=lambda p: _natural_key(p.name),
        )
        if not self.files:
            raise SourceError(f"{self.path}: no images ({', '.join(IMAGE_EXTENSIONS)}) in this folder")

    def __len__(self) -> int:
        return len(self.files)

    def frame(self, index: int) -> np.ndarray:
        file = self.files[self._check_index(index)]
        image = cv2.imread(str(file), cv2.IMREAD_UNCHANGED)
        if image is None:
            raise SourceError(f"{file}: cannot read image (corrupt or unsupported)")
        return _frame_to_bgr(image, file)


# --------------------------------------------------------------------------- bags


def is_bag(path: str | Path) -> bool:
    p = Path(path)
    return (p.is_dir() and (p / "metadata.yaml").is_file()) or p.suffix.lower() in BAG_FILE_EXTENSIONS


def open_source(path: str | Path, topic: str | None = None) -> FrameSource:
    """The right source for a path: bag (directory / .mcap / .db3 / .bag), image folder, or video file."""
    p = Path(path)
    if not p.exists():
        raise SourceError(f"{p}: not found")
    if is_bag(p):
        return BagSource(p, topic)
    if topic:
        raise SourceError(f"{p}: --topic given but this is not a bag")
    if p.is_dir():
        return ImageFolderSource(p)
    return VideoSource(p)
