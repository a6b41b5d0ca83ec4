"""Frame sources: video files, image folders, rosbag2 (MCAP / SQLite3) and ROS 1 bags.

Every source yields `(index, stamp_ns or None, frame)` with `frame` a BGR uint8 HxWx3
array, has `len()` and random access `frame(i)` / `stamp(i)`, and is lazy: a bag is
indexed once (timestamps only, nothing kept) and messages are read on demand.

Bags are read with `rosbags.highlevel.AnyReader`; sensor_msgs/Image (any encoding
`rosbags-image` converts: mono8/16, rgb8, bgr8, bgra8, rgba8, bayer, ...) and
sensor_msgs/CompressedImage (jpeg/png) topics are supported. Stamps are the message
header stamps (the record time when a header stamp is zero). Sources re-open their
file handles after a fork (DataLoader workers).

A rosbag2 whose storage file ends early (the recorder was killed: an MCAP without its footer, a
SQLite file cut short) is read up to its last complete message, with one `TruncatedBagWarning`
per bag: the complete part is copied once into a temporary bag (removed at exit) that is read instead.

Every failure is a `SourceError` whose message names the file.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import sqlite3
import struct
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from cyclesiam.crop import to_bgr

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".pgm", ".ppm", ".pnm", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".avi", ".mp4", ".mpg", ".mpeg", ".mkv", ".mov", ".webm", ".m4v", ".wmv", ".ogv")
BAG_FILE_EXTENSIONS = (".mcap", ".db3", ".bag")
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")

Frame = tuple[int, "int | None", np.ndarray]


class SourceError(RuntimeError):
    """A frame source cannot be opened or read; the message names the file."""


class TruncatedBagWarning(UserWarning):
    """A bag's storage file ends early (recorder killed); only its complete messages are read."""


# --------------------------------------------------------------------------- base


class FrameSource:
    """Lazy, random-access sequence of BGR uint8 frames."""

    path: Path

    def __len__(self) -> int:
        raise NotImplementedError

    def frame(self, index: int) -> np.ndarray:
        """Frame `index` (0-based, negative from the end) as BGR uint8 HxWx3."""
        raise NotImplementedError

    def stamp(self, index: int) -> int | None:
        """Timestamp (ns) of frame `index`, or None when the source has none."""
        return None

    def __iter__(self) -> Iterator[Frame]:
        for i in range(len(self)):
            yield i, self.stamp(i), self.frame(i)

    def close(self) -> None:
        """Release file handles (they are re-opened on demand)."""

    def __enter__(self) -> "FrameSource":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_index(self, index: int) -> int:
        n = len(self)
        i = index + n if index < 0 else index
        if not 0 <= i < n:
            raise IndexError(f"{self.path}: frame {index} out of range (0..{n - 1})")
        return i

    def __repr__(self) -> str:
        return f"{type(self).__name__}('{self.path}')"


# --------------------------------------------------------------------------- video


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
        return _any_reader(_SALVAGED.get(_bag_key(root), root))
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


# --------------------------------------------------------------------------- truncated bags

MCAP_MAGIC = b"\x89MCAP0\r\n"
_MCAP_DATA_END = b"\x0f" + struct.pack("<QI", 4, 0)  # DataEnd record, data section CRC 0 = not given
_MCAP_FOOTER = b"\x02" + struct.pack("<QQQI", 20, 0, 0, 0) + MCAP_MAGIC  # no summary: readers scan the data
_SALVAGED: dict[tuple, Path] = {}  # bag key -> readable copy (inherited by forked DataLoader workers)


def _storage_files(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.suffix in (".mcap", ".db3") and p.is_file())


def _bag_key(root: Path) -> tuple:
    if not root.is_dir():
        return (str(root),)
    return (str(root.resolve()), *((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in _storage_files(root)))


def mcap_complete_end(path: Path) -> tuple[int, int]:
    """(byte offset where the last complete record of an MCAP data section ends, complete message and
    chunk records before it)."""
    size = path.stat().st_size
    pos, data_records = 8, 0
    with open(path, "rb") as f:
        if f.read(8) != MCAP_MAGIC:
            return 8, 0
        while True:
            head = f.read(9)
            if len(head) < 9:
                return pos, data_records
            (length,) = struct.unpack("<Q", head[1:])
            if head[0] == 0x0F or pos + 9 + length > size:  # DataEnd (summary follows) or a cut record
                return pos, data_records
            pos += 9 + length
            data_records += head[0] in (0x05, 0x06)  # Message, Chunk
            f.seek(pos)


def _mcap_truncated(path: Path) -> bool:
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 8))
        return f.read(8) != MCAP_MAGIC


def _salvage_mcap(src: Path, dst: Path) -> int:
    """The complete records of `src` plus a DataEnd and a footer; returns the message/chunk records kept."""
    end, records = mcap_complete_end(src)
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        remaining = end
        while remaining:
            block = fin.read(min(remaining, 1 << 24))
            if not block:
                break
            fout.write(block)
            remaining -= len(block)
        fout.write(_MCAP_DATA_END + _MCAP_FOOTER)
    return records


def _sqlite_truncated(path: Path) -> bool:
    """The header's page count x page size is larger than the file (SQLite then refuses the whole file)."""
    with open(path, "rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return False
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    pages = struct.unpack(">I", header[28:32])[0]
    return pages * page_size > path.stat().st_size


def _salvage_sqlite(src: Path, dst: Path) -> int:
    """Every row SQLite can still read from the cut file, table by table in rowid order, into a new file;
    returns the messages kept."""
    con = sqlite3.connect(f"file:{src}?mode=ro&immutable=1", uri=True)
    out = sqlite3.connect(str(dst))
    kept = 0
    try:
        con.execute("PRAGMA writable_schema=ON")  # use the pages present instead of refusing the file
        schema = con.execute("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
                             "ORDER BY type = 'index'").fetchall()
        for kind, name, sql in schema:
            out.execute(sql)
            if kind == "table":
                copied = _copy_rows(con, out, name)
                kept += copied if name == "messages" else 0
        out.commit()
    finally:
        con.close()
        out.close()
    return kept


def _copy_rows(con: sqlite3.Connection, out: sqlite3.Connection, table: str) -> int:
    quoted = '"' + table.replace('"', '""') + '"'
    n = 0
    try:
        for row in con.execute(f"SELECT * FROM {quoted}"):
            out.execute(f"INSERT INTO {quoted} VALUES ({', '.join('?' * len(row))})", row)
            n += 1
    except sqlite3.DatabaseError:  # the first page past the cut: the rest of the table is gone
        pass
    return n


def salvage_truncated(root: Path) -> Path | None:
    """A readable temporary copy of a rosbag2 directory whose storage files were cut short (None when
    none was): complete MCAP records / readable SQLite rows. Made once per bag per process tree."""
    key = _bag_key(root)
    if key in _SALVAGED:
        return _SALVAGED[key]
    files = _storage_files(root)
    cut = [p for p in files if (_mcap_truncated(p) if p.suffix == ".mcap" else _sqlite_truncated(p))]
    if not cut:
        return None
    copy = Path(tempfile.mkdtemp(prefix="cyclesiam_truncated_bag_"))
    atexit.register(_remove_in_owner, copy, os.getpid())
    shutil.copy2(root / "metadata.yaml", copy / "metadata.yaml")
    kept, complete = [], 0
    for p in files:
        if p not in cut:
            os.symlink(p.resolve(), copy / p.name)
            continue
        n = _salvage_mcap(p, copy / p.name) if p.suffix == ".mcap" else _salvage_sqlite(p, copy / p.name)
        complete += n
        unit = "complete message/chunk records" if p.suffix == ".mcap" else "readable messages"
        kept.append(f"{p.name}: {n} {unit} in its first {p.stat().st_size} bytes")
    if complete == 0 and len(cut) == len(files):  # nothing to read: the caller reports the original error
        return None
    warnings.warn(f"{root}: truncated bag (recording cut short?); reading its complete part only ({'; '.join(kept)})",
                  TruncatedBagWarning, stacklevel=3)
    _SALVAGED[key] = copy
    return copy


def _remove_in_owner(path: Path, pid: int) -> None:
    if os.getpid() == pid:
        shutil.rmtree(path, ignore_errors=True)


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


# --------------------------------------------------------------------------- helpers


def _frame_to_bgr(image: np.ndarray, where: Path) -> np.ndarray:
    """Any decoded image (grey/BGR/BGRA, uint8/uint16/float) -> contiguous BGR uint8."""
    if image.dtype == np.uint16:
        image = (image >> 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.floating):
            image = np.clip(image * (255.0 if image.max() <= 1.0 else 1.0), 0, 255).astype(np.uint8)
        else:
            raise SourceError(f"{where}: unsupported image type {image.dtype}")
    try:
        return np.ascontiguousarray(to_bgr(image))
    except ValueError as exc:
        raise SourceError(f"{where}: {exc}") from exc


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
