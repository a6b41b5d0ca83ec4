"""Image frames of one topic of a rosbag2 (MCAP / SQLite3) or ROS 1 bag, read lazily with
`rosbags.highlevel.AnyReader` (a truncated rosbag2 through its salvaged copy: `bag_salvage`)."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from cyclesiam.bag_salvage import adopt_salvaged, readable_root, salvage_truncated
from cyclesiam.frame_source import Frame, FrameSource, SourceError, _frame_to_bgr

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")


@dataclass(frozen=True)
class ImageTopic:
    topic: str
    msgtype: str
    count: int


def _bag_root(path: Path) -> Path:
    """The path AnyReader opens: a rosbag2 directory, or a ROS 1 .bag file."""
    if not path.exists():
        raise SourceError(f"{path}: bag not found")
    if path.is_dir():
        if not (path / "metadata.yaml").is_file():
            raise SourceError(f"{path}: not a rosbag2 directory (no metadata.yaml)")
        return path
    suffix = path.suffix.lower()
    if suffix == ".bag":
        return path
    if suffix in (".mcap", ".db3"):
        if (path.parent / "metadata.yaml").is_file():
            return path.parent
        raise SourceError(
            f"{path}: a rosbag2 {suffix} file needs its bag directory (with metadata.yaml); "
            "run `ros2 bag reindex` on the directory if metadata.yaml is missing"
        )
    raise SourceError(f"{path}: not a bag (expected a rosbag2 directory, .mcap, .db3 or .bag)")


def _any_reader(root: Path):
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    reader = AnyReader([root], default_typestore=get_typestore(Stores.ROS2_JAZZY))
    reader.open()
    return reader


def _open_reader(path: Path):
    root = _bag_root(path)
    try:
        return _any_reader(readable_root(root))
    except Exception as exc:  # rosbags raises several types for corrupt/unreadable bags
        error = exc
    salvaged = salvage_truncated(root) if root.is_dir() else None
    if salvaged is None:
        raise SourceError(f"{path}: cannot read bag: {type(error).__name__}: {error}") from error
    try:
        return _any_reader(salvaged)
    except Exception as exc:
        raise SourceError(f"{path}: truncated bag, and its complete part cannot be read either: "
                          f"{type(exc).__name__}: {exc}") from exc


def _image_topics(reader) -> list[ImageTopic]:
    topics = []
    for name, info in reader.topics.items():
        if info.msgtype in IMAGE_TYPES:
            topics.append(ImageTopic(name, info.msgtype, int(info.msgcount)))
    return sorted(topics, key=lambda t: t.topic)


def list_image_topics(path: str | Path) -> list[ImageTopic]:
    """Image / CompressedImage topics of a bag (topic, msgtype, message count)."""
    reader = _open_reader(Path(path))
    try:
        return _image_topics(reader)
    finally:
        reader.close()


def _header_stamp(raw: bytes | memoryview, ros1: bool) -> int:
    """Header stamp (ns) straight from the serialised message (0 when unavailable)."""
    try:
        if ros1:  # uint32 seq, uint32 secs, uint32 nsecs (little endian)
            _, sec, nsec = struct.unpack_from("<III", raw, 0)
        else:  # CDR: 4-byte encapsulation header (byte 1: 1 = little endian), int32 sec, uint32 nanosec
            endian = "<" if raw[1] & 1 else ">"
            sec, nsec = struct.unpack_from(endian + "iI", raw, 4)
        return int(sec) * 1_000_000_000 + int(nsec)
    except (struct.error, IndexError):
        return 0


class BagSource(FrameSource):
    """Image frames of one topic of a rosbag2 (MCAP / SQLite3) or ROS 1 bag, read lazily."""

    def __init__(self, path: str | Path, topic: str | None = None) -> None:
        self.path = Path(path)
        self._reader = None
        self._pid = 0
        reader = self._open()
        topics = _image_topics(reader)
        self.topic = self._choose_topic(reader, topics, topic)
        self.msgtype = next(t.msgtype for t in topics if t.topic == self.topic)
        self._connections = [c for c in reader.connections if c.topic == self.topic]
        self._ros1 = not reader.is2
        self._record: np.ndarray | None = None  # [N] record time (ns), bag order
        self._stamps: np.ndarray | None = None  # [N] header stamp (ns, record time when 0)
        self._build_index()
        if len(self._record) == 0:
            raise SourceError(f"{self.path}: topic '{self.topic}' has zero messages")

    def _choose_topic(self, reader, topics: list[ImageTopic], topic: str | None) -> str:
        names = [t.topic for t in topics]
        listing = ", ".join(f"{t.topic} ({t.msgtype}, {t.count})" for t in topics) or "none"
        if topic is None or topic == "":
            if len(topics) == 1:
                return topics[0].topic
            if not topics:
                raise SourceError(f"{self.path}: no image topics in this bag (topics: {sorted(reader.topics)})")
            raise SourceError(f"{self.path}: several image topics, choose one: {listing}")
        if topic in names:
            return topic
        if topic in reader.topics:
            msgtype = reader.topics[topic].msgtype
            raise SourceError(f"{self.path}: topic '{topic}' is {msgtype}, not an image; image topics: {listing}")
        raise SourceError(f"{self.path}: no topic '{topic}'; image topics: {listing}")

    def _open(self):
        if self._reader is None or self._pid != os.getpid():
            self._reader = _open_reader(self.path)
            self._pid = os.getpid()
            if hasattr(self, "topic"):
                self._connections = [c for c in self._reader.connections if c.topic == self.topic]
        return self._reader

    def _build_index(self) -> None:
        record, stamps = [], []
        try:
            for _, t, raw in self._open().messages(connections=self._connections):
                record.append(t)
                stamps.append(_header_stamp(raw, self._ros1) or t)
        except Exception as exc:
            raise SourceError(f"{self.path}: cannot index topic '{self.topic}': {type(exc).__name__}: {exc}") from exc
        self._record = np.asarray(record, dtype=np.int64)
        self._stamps = np.asarray(stamps, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._record)

    @property
    def stamps(self) -> np.ndarray:
        """Header stamps (ns) of all frames, in bag order."""
        return self._stamps

    def stamp(self, index: int) -> int:
        return int(self._stamps[self._check_index(index)])

    def frame(self, index: int) -> np.ndarray:
        i = self._check_index(index)
        t = int(self._record[i])
        position = i - int(np.searchsorted(self._record, t, side="left"))  # among equal record times
        reader = self._open()
        try:
            for n, (conn, _, raw) in enumerate(reader.messages(connections=self._connections, start=t, stop=t + 1)):
                if n == position:
                    return self._decode(reader, conn, raw)
        except SourceError:
            raise
        except Exception as exc:
            raise SourceError(f"{self.path}: cannot read frame {index} of '{self.topic}': {exc}") from exc
        raise SourceError(f"{self.path}: frame {index} of '{self.topic}' vanished (bag changed on disk?)")

    def __iter__(self) -> Iterator[Frame]:
        reader = self._open()
        try:
            messages = reader.messages(connections=self._connections)
            for i, (conn, _, raw) in enumerate(messages):
                yield i, int(self._stamps[i]), self._decode(reader, conn, raw)
        except SourceError:
            raise
        except Exception as exc:
            raise SourceError(f"{self.path}: cannot read '{self.topic}': {exc}") from exc

    def _decode(self, reader, conn, raw) -> np.ndarray:
        from rosbags.image import compressed_image_to_cvimage, message_to_cvimage

        msg = reader.deserialize(raw, conn.msgtype)
        try:
            if conn.msgtype.endswith("CompressedImage"):
                image = compressed_image_to_cvimage(msg)
            else:
                try:
                    image = message_to_cvimage(msg, "bgr8")
                except Exception:
                    image = message_to_cvimage(msg)
        except Exception as exc:
            raise SourceError(f"{self.path}: cannot decode an image on '{self.topic}': {type(exc).__name__}: {exc}") from exc
        if image is None:
            raise SourceError(f"{self.path}: cannot decode an image on '{self.topic}'")
        return _frame_to_bgr(np.asarray(image), self.path)

    def __getstate__(self) -> dict:
        """Pickled (DataLoader workers started by a forkserver) without its reader: the copy re-opens the
        bag on first use, through the salvaged copy this process made of a truncated bag, if any."""
        root = _bag_root(self.path)
        return dict(self.__dict__, _reader=None, _pid=0, _connections=[], _readable=readable_root(root))

    def __setstate__(self, state: dict) -> None:
        readable = state.pop("_readable")
        self.__dict__.update(state)
        adopt_salvaged(_bag_root(self.path), readable)

    def close(self) -> None:
        if self._reader is not None and self._pid == os.getpid():
            try:
                self._reader.close()
            except Exception:
                pass
        self._reader = None

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:
            pass
