"""Seeds from each source: seeds file, recorded Detection2DArray topic (real bags), label-free random boxes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import stamp_of, write_bag

from cyclesiam_train.config import SeedConfig
from cyclesiam_train.data import discover_streams
from cyclesiam_train.seeds import (SeedError, box_mask, build_seeds, contrast_scores, load_seed_file, random_box,
                                   vision_msgs_typestore, write_seed_file)


def test_vision_msgs_registered_with_upstream_fields() -> None:
    store = vision_msgs_typestore()
    det = store.types["vision_msgs/msg/Detection2D"]
    assert [f for f in det.__dataclass_fields__ if not f.startswith("__")] == ["header", "results", "bbox", "id"]
    bbox = store.types["vision_msgs/msg/BoundingBox2D"]
    assert list(bbox.__dataclass_fields__)[:3] == ["center", "size_x", "size_y"]


def test_seed_file_stamps_and_frames_match_bag_frames(tmp_path, tree_bag, tree_frames) -> None:
    import cv2

    mask = np.zeros(tree_frames[0].shape[:2], np.uint8)
    mask[50:120, 100:160] = 255
    cv2.imwrite(str(tmp_path / "m.png"), mask)
    seeds_file = write_seed_file(tmp_path / "seeds.yaml", [
        {"bag": str(tree_bag), "topic": "/camera/image", "stamp": stamp_of(4) / 1e9 + 0.004, "box": [100, 50, 60, 70],
         "mask": "m.png"},
        {"bag": str(tree_bag), "topic": "/camera/image", "stamp": {"sec": stamp_of(7) // 10**9,
                                                                  "nanosec": stamp_of(7) % 10**9}, "box": [10, 10, 40, 30]},
        {"bag": str(tree_bag), "frame": 2, "box": [5, 6, 7, 8]},
    ])
    streams = discover_streams([tree_bag])
    seeds, desc = build_seeds(SeedConfig(source="file", file=str(seeds_file)), streams)
    assert [s.frame for s in seeds] == [4, 7, 2]
    assert seeds[0].box == (100.0, 50.0, 60.0, 70.0) and seeds[0].mask.endswith("m.png")
    assert "file" in desc


@pytest.mark.parametrize("entry, message", [
    ({"topic": "/camera/image", "frame": 0, "box": [1, 2, 3, 4]}, "needs 'bag' and 'box'"),
    ({"bag": "B", "frame": 0, "box": [1, 2, -3, 4]}, "positive width"),
    ({"bag": "B", "frame": 0, "stamp": 1.0, "box": [1, 2, 3, 4]}, "exactly one of"),
    ({"bag": "B", "stamp": 99.0, "box": [1, 2, 3, 4]}, "no frame of"),
    ({"bag": "B", "frame": 500, "box": [1, 2, 3, 4]}, "out of range"),
    ({"bag": "elsewhere", "frame": 0, "box": [1, 2, 3, 4]}, "no training stream"),
])
def test_bad_seed_entries_name_the_file_and_entry(tmp_path, tree_bag, entry, message) -> None:
    entry = {k: (str(tree_bag) if v == "B" else v) for k, v in entry.items()}
    path = write_seed_file(tmp_path / "bad.yaml", [entry])
    streams = discover_streams([tree_bag])
    with pytest.raises(SeedError, match=message) as err:
        build_seeds(SeedConfig(source="file", file=str(path)), streams)
    assert "bad.yaml entry 0" in str(err.value)


def test_detection_topic_seeds_from_a_sqlite3_compressed_bag(tmp_path, tree_frames) -> None:
    bag = write_bag(tmp_path / "dets_db3", tree_frames[:8], storage="sqlite3", compressed=True,
                    detections=[(3, [(100.0, 40.0, 80.0, 90.0)]), (6, [(20.0, 30.0, 40.0, 50.0), (150, 100, 60, 60)])])
    streams = discover_streams([bag])
    seeds, desc = build_seeds(SeedConfig(source="topic", topic="/detections"), streams)
    assert [(s.frame, s.box) for s in seeds] == [(3, (100.0, 40.0, 80.0, 90.0)), (6, (20.0, 30.0, 40.0, 50.0)),
                                                 (6, (150.0, 100.0, 60.0, 60.0))]
    assert "/detections" in desc
    with pytest.raises(SeedError, match="not found"):
        build_seeds(SeedConfig(source="topic", topic="/nope"), streams)
    with pytest.raises(SeedError, match="expected vision_msgs/msg/Detection2DArray"):
        build_seeds(SeedConfig(source="topic", topic="/camera/image"), streams)


def test_random_boxes_inside_image_sized_and_prefer_texture(tree_frames) -> None:
    image = tree_frames[0].copy()
    image[:, :160] = 128  # left half flat grey, right half real texture
    cfg = SeedConfig(random_min_size=0.2, random_max_size=0.3, random_candidates=16)
    plain = SeedConfig(random_min_size=0.2, random_max_size=0.3, random_candidates=1)
    right_textured = right_plain = 0
    for i in range(40):
        x, y, w, h = random_box(image, np.random.default_rng(i), cfg)
        assert 0 <= x and 0 <= y and x + w <= 320 and y + h <= 240
        assert 0.2 * 240 / 2.0 ** 0.5 - 1e-6 <= min(w, h) and max(w, h) <= 0.3 * 240 * 2.0 ** 0.5 + 1e-6
        right_textured += (x + w / 2) > 160
        x, y, w, h = random_box(image, np.random.default_rng(i), plain)
        right_plain += (x + w / 2) > 160
    assert right_textured >= 36 and right_textured > right_plain + 10
    assert random_box(image, np.random.default_rng(5), cfg) == random_box(image, np.random.default_rng(5), cfg)


def _iou(a, b) -> float:
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / (a[2] * a[3] + b[2] * b[3] - ix * iy)


def test_contrast_seeds_prefer_an_object_over_its_surroundings(tree_frames) -> None:
    image = tree_frames[0].copy()  # real tree texture everywhere ...
    obj = (190.0, 70.0, 60.0, 70.0)
    image[70:140, 190:250] = (40, 40, 200)  # ... and one uniform red object
    x = np.array([190.0, 20.0, 160.0])
    y = np.array([70.0, 100.0, 70.0])
    w, h = np.full(3, 60.0), np.full(3, 70.0)
    on_object, background, half_on = contrast_scores(image, x, y, w, h)
    assert on_object > half_on > background and on_object > 0.5
    cfg = SeedConfig(random_min_size=0.2, random_max_size=0.35, random_candidates=32, random_score="contrast")
    texture = SeedConfig(random_min_size=0.2, random_max_size=0.35, random_candidates=32)
    overlap_contrast = [_iou(random_box(image, np.random.default_rng(i), cfg), obj) for i in range(20)]
    overlap_texture = [_iou(random_box(image, np.random.default_rng(i), texture), obj) for i in range(20)]
    assert np.mean(overlap_contrast) > np.mean(overlap_texture) + 0.1
    with pytest.raises(ValueError, match="random_score"):
        random_box(image, np.random.default_rng(0), SeedConfig(random_candidates=4, random_score="edges"))


def test_box_masks_ellipse_and_rectangle_areas() -> None:
    ell = box_mask(100, 100, (50, 50, 40, 20), "ellipse")
    rect = box_mask(100, 100, (50, 50, 40, 20), "rectangle")
    assert abs(int(rect.sum()) - 800) <= 4
    assert abs(int(ell.sum()) - np.pi * 20 * 10) < 12
    assert ell[50, 50] == 1 and ell[41, 31] == 0 and rect[41, 31] == 1


def test_seed_file_must_exist_and_be_a_list(tmp_path) -> None:
    with pytest.raises(SeedError, match="not found"):
        load_seed_file(tmp_path / "none.yaml")
    (tmp_path / "x.yaml").write_text("foo: 1\n")
    with pytest.raises(SeedError, match="x.yaml"):
        load_seed_file(tmp_path / "x.yaml")


def test_seeds_on_the_held_out_tail_are_left_out_not_refused(tmp_path, tree_frames) -> None:
    """cyclesiam-adapt holds the last 20 % of a recording out for its check: the node's own detections
    recorded there are not trained on (and not an error); a seed beyond the recording still is."""
    from cyclesiam_train.trainer import hold_out_tails

    bag = write_bag(tmp_path / "dets", tree_frames[:10],
                    detections=[(2, [(100.0, 40.0, 80.0, 90.0)]), (9, [(20.0, 30.0, 40.0, 50.0)])])
    streams = discover_streams([bag])
    hold_out_tails(streams, 0.2)  # 10 frames -> 8 trained on, 2 held out
    assert streams[0].num_frames == 8 and streams[0].tail_frames == 2
    seeds, desc = build_seeds(SeedConfig(source="topic", topic="/detections"), streams)
    assert [(s.frame, s.box) for s in seeds] == [(2, (100.0, 40.0, 80.0, 90.0))]
    assert "1 of 2 in the held-out tails, not trained on" in desc

    def seed_file(name: str, frames: list[int]) -> str:
        return str(write_seed_file(tmp_path / name, [{"bag": str(bag), "topic": "/camera/image", "frame": f,
                                                      "box": [10, 10, 50, 50]} for f in frames]))

    seeds, desc = build_seeds(SeedConfig(source="file", file=seed_file("a.yaml", [1, 8])), streams)
    assert [s.frame for s in seeds] == [1] and "1 of 2" in desc
    with pytest.raises(SeedError, match="out of range"):
        build_seeds(SeedConfig(source="file", file=seed_file("b.yaml", [1, 10])), streams)
    with pytest.raises(SeedError, match="none left to train on"):
        build_seeds(SeedConfig(source="file", file=seed_file("c.yaml", [8, 9])), streams)
