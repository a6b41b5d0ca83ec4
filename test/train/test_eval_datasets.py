"""Each evaluation loader on tiny fixtures written by the test itself."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from cyclesiam_train.eval.datasets import DatasetError, load_dataset


def _frames(n: int, h: int = 24, w: int = 32) -> list[np.ndarray]:
    rng = np.random.default_rng(n)
    return [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for _ in range(n)]


def _write_images(folder: Path, frames: list[np.ndarray], pattern: str = "{:04d}.png") -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(frames, 1):
        cv2.imwrite(str(folder / pattern.format(i)), f)


def test_otb_separators_nan_rows_missing_rows_targets_and_masks(tmp_path: Path) -> None:
    seq = tmp_path / "Walk"
    frames = _frames(4)
    _write_images(seq / "img", frames)
    (seq / "groundtruth_rect.txt").write_text("1,2,10,8\n3\t4\t10\t8\nNaN,NaN,NaN,NaN\n")
    (seq / "groundtruth_rect.2.txt").write_text("0 0 5 5\n1 1 5 5\n2 2 5 5\n3 3 5 5\n")
    (seq / "masks").mkdir()
    mask = np.zeros((24, 32), np.uint8)
    mask[2:10, 1:11] = 255
    cv2.imwrite(str(seq / "masks" / "0002.png"), mask)
    seqs = {s.name: s for s in load_dataset(tmp_path, "otb")}
    assert sorted(seqs) == ["Walk", "Walk-2"]
    walk = seqs["Walk"]
    assert len(walk) == 4
    np.testing.assert_array_equal(walk.boxes[:2], [[1, 2, 10, 8], [3, 4, 10, 8]])
    assert np.isnan(walk.boxes[2:]).all()  # explicit NaN row and the missing 4th row
    assert sorted(walk.masks) == [1] and walk.mask(1).sum() == 80 and walk.mask(0) is None
    read = [f for _, f in walk.iter_frames()]
    np.testing.assert_array_equal(read[3], frames[3])
    assert len(load_dataset(seq, "otb")) == 2  # a single sequence folder works too
    assert len(load_dataset(tmp_path, "otb", max_frames=2)[0]) == 2


def test_got10k_absence_and_cover_labels(tmp_path: Path) -> None:
    seq = tmp_path / "GOT-10k_Val_000001"
    _write_images(seq, _frames(4), "{:08d}.jpg")
    (seq / "groundtruth.txt").write_text("1,1,5,5\n2,2,5,5\n3,3,5,5\n4,4,5,5\n")
    (seq / "absence.label").write_text("0\n1\n0\n0\n")
    (seq / "cover.label").write_text("8\n0\n8\n0\n")
    (s,) = load_dataset(tmp_path, "got10k")
    assert s.name == "GOT-10k_Val_000001"
    assert np.isfinite(s.boxes).all(axis=1).tolist() == [True, False, True, False]


def test_vot_polygons_and_rects(tmp_path: Path) -> None:
    seq = tmp_path / "ball"
    _write_images(seq / "color", _frames(3), "{:08d}.jpg")
    (seq / "groundtruth.txt").write_text(
        "10,20,30,20,30,40,10,40\n"  # axis-aligned square as a polygon
        "15.5,10,25.5,20,15.5,30,5.5,20\n"  # rotated square: min/max box
        "1,2,3,4\n")
    (s,) = load_dataset(tmp_path, "vot")
    np.testing.assert_allclose(s.boxes, [[10, 20, 20, 20], [5.5, 10, 20, 20], [1, 2, 3, 4]])
    (seq / "groundtruth.txt").write_text("1,2,3\n")
    with pytest.raises(DatasetError, match="groundtruth.txt:1"):
        load_dataset(tmp_path, "vot")


def _palette_png(path: Path, labels: np.ndarray) -> None:
    from PIL import Image

    im = Image.fromarray(labels.astype(np.uint8), mode="P")
    palette = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (256 * 3 - 9)
    im.putpalette(palette)
    im.save(path)


def test_davis_multi_object_palette(tmp_path: Path) -> None:
    frames = _frames(3)
    _write_images(tmp_path / "JPEGImages" / "480p" / "dogs", frames, "{:05d}.jpg")
    anno = tmp_path / "Annotations" / "480p" / "dogs"
    anno.mkdir(parents=True)
    l0 = np.zeros((24, 32), np.uint8)
    l0[2:6, 3:9] = 1
    l0[10:20, 20:30] = 2
    l1 = np.zeros((24, 32), np.uint8)
    l1[3:7, 4:10] = 1  # object 2 has left the frame
    _palette_png(anno / "00001.png", l0)
    _palette_png(anno / "00002.png", l1)  # frame 3 has no annotation
    seqs = {s.name: s for s in load_dataset(tmp_path, "davis")}
    assert sorted(seqs) == ["dogs_1", "dogs_2"]
    d1, d2 = seqs["dogs_1"], seqs["dogs_2"]
    np.testing.assert_array_equal(d1.boxes[:2], [[3, 2, 6, 4], [4, 3, 6, 4]])
    assert np.isnan(d1.boxes[2]).all() and sorted(d1.masks) == [0, 1]
    np.testing.assert_array_equal(d2.boxes[0], [20, 10, 10, 10])
    assert np.isnan(d2.boxes[1]).all()  # empty object mask: no box ...
    assert d2.mask(1).sum() == 0  # ... but an annotated (empty) mask for J/F
    assert d1.mask(0).sum() == 24 and d2.mask(0).sum() == 100


def _write_bag(path: Path, frames: list[np.ndarray], stamps: list[int], topic: str) -> None:
    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    store = get_typestore(Stores.ROS2_JAZZY)
    Image, Header, Time = (store.types[n] for n in ("sensor_msgs/msg/Image", "std_msgs/msg/Header",
                                                    "builtin_interfaces/msg/Time"))
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        conn = writer.add_connection(topic, Image.__msgtype__, typestore=store)
        for f, st in zip(frames, stamps):
            grey = f[..., 1].copy()
            msg = Image(header=Header(stamp=Time(sec=st // 10**9, nanosec=st % 10**9), frame_id="cam"),
                        height=grey.shape[0], width=grey.shape[1], encoding="mono8", is_bigendian=0,
                        step=grey.shape[1], data=grey.reshape(-1))
            # receive time differs from the header stamp: matching must use the header
            writer.write(conn, st + 5_000_000, store.serialize_cdr(msg, Image.__msgtype__))


def test_bag_keyframes_by_header_stamp(tmp_path: Path) -> None:
    frames = _frames(5)
    stamps = [1_000_000_000 + i * 33_333_333 for i in range(5)]
    _write_bag(tmp_path / "rec", frames, stamps, "/cam/image_raw")
    mask = np.zeros((24, 32), np.uint8)
    mask[5:9, 6:12] = 255
    cv2.imwrite(str(tmp_path / "m3.png"), mask)
    spec = {"bag": "rec", "topic": "/cam/image_raw", "keyframes": [
        {"stamp": stamps[0], "box": [1, 2, 8, 6]},
        {"stamp": stamps[3], "box": [6, 5, 6, 4], "mask": "m3.png"},
        {"stamp": stamps[4] + 400_000, "box": [7, 5, 6, 4]},  # within the 1 ms tolerance
    ]}
    (tmp_path / "rec.yaml").write_text(yaml.safe_dump(spec))
    (s,) = load_dataset(tmp_path / "rec.yaml", "bag")
    assert s.name == "rec" and len(s) == 5
    assert np.isfinite(s.boxes).all(axis=1).tolist() == [True, False, False, True, True]
    np.testing.assert_array_equal(s.boxes[3], [6, 5, 6, 4])
    assert s.mask(3).sum() == 24
    read = [f for _, f in s.iter_frames()]
    assert read[2].shape == (24, 32, 3)
    np.testing.assert_array_equal(read[2][..., 0], frames[2][..., 1])  # mono8 promoted to BGR
    assert len(load_dataset(tmp_path, "bag")) == 1  # a folder of YAML files
    spec["keyframes"].append({"stamp": stamps[4] + 10**8, "box": [1, 1, 2, 2]})
    (tmp_path / "rec.yaml").write_text(yaml.safe_dump(spec))
    with pytest.raises(DatasetError, match="matches no message"):
        load_dataset(tmp_path / "rec.yaml", "bag")


def test_unknown_format_and_missing_path(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="unknown dataset format"):
        load_dataset(tmp_path, "lasot")
    with pytest.raises(DatasetError, match="does not exist"):
        load_dataset(tmp_path / "nope", "otb")
