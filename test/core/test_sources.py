"""Frame sources round-trip on real footage: video, image folders, rosbag2 (MCAP, SQLite3), ROS 1 bags."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from cyclesiam.sources import (
    BagSource,
    ImageFolderSource,
    SourceError,
    VideoSource,
    list_image_topics,
    open_source,
)

N = 6


@pytest.fixture(scope="module")
def frames(tree_video, read_frames) -> list[np.ndarray]:
    return read_frames(tree_video, N)


def _header(ts, i: int):
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    return Header(stamp=Time(sec=1700000000 + i, nanosec=250 + i), frame_id="camera")


def _image_msg(ts, frame: np.ndarray, i: int, encoding: str):
    Image = ts.types["sensor_msgs/msg/Image"]
    if encoding == "rgb8":
        data = frame[:, :, ::-1]
    elif encoding == "mono8":
        data = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    elif encoding == "bgra8":
        data = cv2.cvtColor(frame, cv2.COLOR_BGR2BGRA)
    else:
        data = frame
    data = np.ascontiguousarray(data)
    step = data.shape[1] * (data.shape[2] if data.ndim == 3 else 1)
    return Image(header=_header(ts, i), height=data.shape[0], width=data.shape[1], encoding=encoding,
                 is_bigendian=0, step=step, data=data.reshape(-1))


def _compressed_msg(ts, frame: np.ndarray, i: int, fmt: str):
    CompressedImage = ts.types["sensor_msgs/msg/CompressedImage"]
    ok, buf = cv2.imencode("." + fmt, frame)
    assert ok
    return CompressedImage(header=_header(ts, i), format=fmt, data=buf.reshape(-1))


def write_ros2_bag(path: Path, frames: list[np.ndarray], storage: str) -> Path:
    """A real rosbag2 with raw (rgb8, mono8, bgra8), compressed (png, jpeg), a String topic,
    an empty image topic; frames 2 and 3 share one record timestamp."""
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS2_JAZZY)
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    with Writer(path, version=9, storage_plugin=plugin) as writer:
        conns = {
            enc: writer.add_connection(f"/cam/{enc}", "sensor_msgs/msg/Image", typestore=ts)
            for enc in ("rgb8", "mono8", "bgra8")
        }
        comp = {
            fmt: writer.add_connection(f"/cam/{fmt}/compressed", "sensor_msgs/msg/CompressedImage", typestore=ts)
            for fmt in ("png", "jpg")
        }
        chatter = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=ts)
        writer.add_connection("/cam/empty", "sensor_msgs/msg/Image", typestore=ts)
        for i, frame in enumerate(frames):
            t = 1_000_000_000 + 33_000_000 * (i if i != 3 else 2)  # duplicate record time
            for enc, conn in conns.items():
                writer.write(conn, t, ts.serialize_cdr(_image_msg(ts, frame, i, enc), "sensor_msgs/msg/Image"))
            for fmt, conn in comp.items():
                msg = _compressed_msg(ts, frame, i, fmt)
                writer.write(conn, t, ts.serialize_cdr(msg, "sensor_msgs/msg/CompressedImage"))
            String = ts.types["std_msgs/msg/String"]
            writer.write(chatter, t, ts.serialize_cdr(String(data=f"frame {i}"), "std_msgs/msg/String"))
    return path


@pytest.fixture(scope="module", params=["mcap", "sqlite3"])
def ros2_bag(request, tmp_path_factory, frames) -> Path:
    return write_ros2_bag(tmp_path_factory.mktemp(request.param) / "bag", frames, request.param)


def _header_ns(i: int) -> int:
    return (1700000000 + i) * 1_000_000_000 + 250 + i


def test_ros2_bag_topics(ros2_bag):
    topics = {t.topic: (t.msgtype, t.count) for t in list_image_topics(ros2_bag)}
    assert topics["/cam/rgb8"] == ("sensor_msgs/msg/Image", N)
    assert topics["/cam/png/compressed"] == ("sensor_msgs/msg/CompressedImage", N)
    assert "/chatter" not in topics and "/cam/empty" in topics


@pytest.mark.parametrize("topic", ["/cam/rgb8", "/cam/bgra8", "/cam/png/compressed"])
def test_ros2_bag_lossless_round_trip(ros2_bag, frames, topic):
    source = BagSource(ros2_bag, topic)
    assert len(source) == N
    seen = list(source)
    assert [i for i, _, _ in seen] == list(range(N))
    assert [s for _, s, _ in seen] == [_header_ns(i) for i in range(N)]
    for i, _, image in seen:
        assert image.dtype == np.uint8 and image.shape == frames[i].shape
        assert np.array_equal(image, frames[i]), f"frame {i}"
    # random access, backwards, and the two frames that share a record timestamp
    for i in (4, 0, 3, 2, -1):
        assert np.array_equal(source.frame(i), frames[i])
        assert source.stamp(i) == _header_ns(i % N)
    with pytest.raises(IndexError):
        source.frame(N)
    source.close()
    assert np.array_equal(source.frame(1), frames[1])  # re-opens on demand


def test_ros2_bag_mono_and_jpeg(ros2_bag, frames):
    mono = BagSource(ros2_bag, "/cam/mono8").frame(2)
    grey = cv2.cvtColor(frames[2], cv2.COLOR_BGR2GRAY)
    assert mono.shape == frames[2].shape and np.array_equal(mono[..., 0], grey) and np.array_equal(mono[..., 2], grey)
    jpeg = BagSource(ros2_bag, "/cam/jpg/compressed").frame(2)
    assert jpeg.shape == frames[2].shape
    assert np.abs(jpeg.astype(int) - frames[2]).mean() < 6  # lossy but the same picture


def test_bag_storage_file_path_opens_its_bag(ros2_bag, frames):
    storage = next(p for p in ros2_bag.iterdir() if p.suffix in (".mcap", ".db3"))
    source = open_source(storage, "/cam/rgb8")
    assert isinstance(source, BagSource) and np.array_equal(source.frame(5), frames[5])


def test_bag_errors_name_the_file_and_list_topics(ros2_bag, tmp_path):
    with pytest.raises(SourceError, match="several image topics.*/cam/rgb8"):
        BagSource(ros2_bag)
    with pytest.raises(SourceError, match=r"'/chatter' is std_msgs/msg/String, not an image; image topics: .*/cam/png"):
        BagSource(ros2_bag, "/chatter")
    with pytest.raises(SourceError, match=r"no topic '/nope'; image topics: .*/cam/mono8"):
        BagSource(ros2_bag, "/nope")
    with pytest.raises(SourceError, match="zero messages"):
        BagSource(ros2_bag, "/cam/empty")
    with pytest.raises(SourceError, match=str(tmp_path / "missing")):
        open_source(tmp_path / "missing")


def test_corrupt_bags(ros2_bag, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(ros2_bag, broken)
    (broken / "metadata.yaml").write_text("rosbag2_bagfile_information: {version: 9")
    with pytest.raises(SourceError, match=f"{broken}: cannot read bag"):
        BagSource(broken, "/cam/rgb8")
    truncated = tmp_path / "truncated"
    shutil.copytree(ros2_bag, truncated)
    storage = next(p for p in truncated.iterdir() if p.suffix in (".mcap", ".db3"))
    storage.write_bytes(storage.read_bytes()[:300])
    with pytest.raises(SourceError, match=str(truncated)):
        BagSource(truncated, "/cam/rgb8")
    lone = tmp_path / "lone.mcap"
    lone.write_bytes(b"\x89MCAP0\r\n")
    with pytest.raises(SourceError, match="metadata.yaml"):
        open_source(lone)


def test_ros1_bag_round_trip(tmp_path, frames):
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_typestore

    ts = get_typestore(Stores.ROS1_NOETIC)
    Image = ts.types["sensor_msgs/msg/Image"]
    Header = ts.types["std_msgs/msg/Header"]
    Time = ts.types["builtin_interfaces/msg/Time"]
    path = tmp_path / "cam.bag"
    with Writer(path) as writer:
        conn = writer.add_connection("/camera/image", "sensor_msgs/msg/Image", typestore=ts)
        for i, frame in enumerate(frames[:3]):
            rgb = np.ascontiguousarray(frame[:, :, ::-1])
            msg = Image(header=Header(seq=i, stamp=Time(sec=50 + i, nanosec=7), frame_id="cam"),
                        height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", is_bigendian=0,
                        step=rgb.shape[1] * 3, data=rgb.reshape(-1))
            writer.write(conn, 10_000 + i, ts.serialize_ros1(msg, "sensor_msgs/msg/Image"))
    source = open_source(path)  # one image topic: chosen automatically
    assert isinstance(source, BagSource) and len(source) == 3
    for i, stamp, image in source:
        assert stamp == (50 + i) * 1_000_000_000 + 7
        assert np.array_equal(image, frames[i])


def test_video_source(tree_video, frames):
    source = VideoSource(tree_video)
    assert len(source) == 68
    seen = [(i, s, f) for i, s, f in source]
    assert len(seen) == 68 and all(s is None for _, s, _ in seen)
    for i in range(N):
        assert np.array_equal(seen[i][2], frames[i])
    assert np.array_equal(source.frame(30), seen[30][2])
    assert np.array_equal(source.frame(5), frames[5])  # backwards: re-decodes
    assert np.array_equal(source.frame(-1), seen[67][2])
    with pytest.raises(IndexError):
        source.frame(68)


def test_image_folder_source(cube_frames_dir, tmp_path, frames):
    cube = open_source(cube_frames_dir)
    assert isinstance(cube, ImageFolderSource) and len(cube) == 218
    first = cube.frame(0)
    grey = cv2.imread(str(cube_frames_dir / "image0000.pgm"), cv2.IMREAD_GRAYSCALE)
    assert first.shape == (480, 640, 3) and np.array_equal(first[..., 1], grey)
    # natural order (2 before 10), mixed formats, non-images ignored
    for i, name in [(0, "f2.png"), (1, "f10.ppm"), (2, "f100.bmp")]:
        cv2.imwrite(str(tmp_path / name), frames[i])
    (tmp_path / "notes.txt").write_text("not an image")
    folder = ImageFolderSource(tmp_path)
    assert [p.name for p in folder.files] == ["f2.png", "f10.ppm", "f100.bmp"]
    for i, stamp, image in folder:
        assert stamp is None and np.array_equal(image, frames[i])


def test_source_errors(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceError, match=f"{empty}: no images"):
        open_source(empty)
    junk = tmp_path / "junk.avi"
    junk.write_bytes(np.random.default_rng(0).integers(0, 255, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(SourceError, match=str(junk)):
        open_source(junk)
    bad_image = tmp_path / "pics"
    bad_image.mkdir()
    (bad_image / "a.png").write_bytes(b"not a png")
    with pytest.raises(SourceError, match="a.png: cannot read image"):
        ImageFolderSource(bad_image).frame(0)
    with pytest.raises(SourceError, match="not a bag"):
        open_source(empty, topic="/cam")


def _cut(bag: Path, dest: Path, share: float) -> Path:
    """A copy of `bag` whose storage file stops after `share` of its bytes (a recorder killed mid-write)."""
    import shutil

    shutil.copytree(bag, dest)
    storage = next(p for p in dest.iterdir() if p.suffix in (".mcap", ".db3"))
    data = storage.read_bytes()
    storage.write_bytes(data[: int(len(data) * share)])
    return dest


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_bag_reads_its_complete_part_with_one_warning(tmp_path, tree_video, read_frames, storage):
    from cyclesiam.sources import TruncatedBagWarning

    frames = read_frames(tree_video, 16)
    bag = write_ros2_bag(tmp_path / "bag", frames, storage)
    cut = _cut(bag, tmp_path / "cut", 0.6)
    with pytest.warns(TruncatedBagWarning) as record:
        topics = list_image_topics(cut)
        sources = [BagSource(cut, "/cam/rgb8"), BagSource(cut, "/cam/png/compressed")]
        again = BagSource(cut / next(p.name for p in cut.iterdir() if p.suffix in (".mcap", ".db3")), "/cam/rgb8")
    assert len([w for w in record if issubclass(w.category, TruncatedBagWarning)]) == 1
    message = str(record[0].message)
    assert str(cut) in message and "truncated" in message
    assert "/cam/rgb8" in {t.topic for t in topics}
    full = BagSource(bag, "/cam/rgb8")
    # a real prefix: some frames lost, most kept, each kept one exactly the recorded one
    assert 0.3 * len(full) < len(sources[0]) < len(full) and len(again) == len(sources[0])
    for i in (0, len(sources[0]) - 1):
        assert np.array_equal(sources[0].frame(i), full.frame(i))
        assert sources[0].stamp(i) == full.stamp(i)
    assert sources[1].frame(len(sources[1]) - 1).shape == frames[0].shape


def test_bag_cut_before_any_message_is_an_error(ros2_bag, tmp_path):
    cut = _cut(ros2_bag, tmp_path / "cut", 0.0)
    with pytest.raises(SourceError, match=str(cut)):
        BagSource(cut, "/cam/rgb8")
