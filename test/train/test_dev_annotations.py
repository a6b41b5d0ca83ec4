"""Hand-annotated development keyframes (annotations/dev) parse with the eval loader
and are sane: boxes inside the image with positive size, one row per clip frame."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from cyclesiam_train.eval.datasets import load_dataset, parse_box_rows

ROOT = Path(__file__).resolve().parents[2]
ANNOTATIONS = ROOT / "annotations" / "dev"
DATA = Path(os.environ.get("CYCLESIAM_DATA", ROOT / "data"))
SETS = sorted(p.name for p in ANNOTATIONS.iterdir() if p.is_dir())


def source_info(name: str) -> dict[str, str]:
    info = {}
    for line in (ANNOTATIONS / name / "source.txt").read_text().splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def test_sets_present():
    assert {"mbt_cube", "mire2"} <= set(SETS)


@pytest.mark.parametrize("name", SETS)
def test_rows_match_declared_frame_count_and_boxes_are_valid(name):
    info = source_info(name)
    count = int(info["count"])
    width, height = (int(v) for v in info["size"].split("x"))
    boxes = parse_box_rows(ANNOTATIONS / name / "groundtruth_rect.txt")
    assert boxes.shape == (count, 4)
    ok = np.isfinite(boxes).all(axis=1)
    assert np.isnan(boxes[~ok]).all(), "a row is either a full box or all nan"
    b = boxes[ok]
    assert ok.sum() >= 20 and ok[0], "annotated from frame 0, at least 20 keyframes"
    assert (b[:, 2] > 0).all() and (b[:, 3] > 0).all()
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
    assert (b[:, 0] + b[:, 2] <= width).all() and (b[:, 1] + b[:, 3] <= height).all()


@pytest.mark.parametrize("name", SETS)
def test_loads_with_eval_loader_over_the_real_frames(name, tmp_path):
    info = source_info(name)
    frames = DATA / info["frames"]
    if not frames.is_dir():
        pytest.skip(f"{frames} missing (scripts/fetch_data.sh)")
    seq_dir = tmp_path / name
    seq_dir.mkdir()
    (seq_dir / "img").symlink_to(frames.resolve())
    (seq_dir / "groundtruth_rect.txt").symlink_to((ANNOTATIONS / name / "groundtruth_rect.txt").resolve())
    (seq,) = load_dataset(tmp_path, "otb")
    assert seq.name == name
    assert len(seq.frames) == int(info["count"]) == len(seq), "one annotation row per clip frame"
    first = cv2.imread(str(seq.frames.paths[0]), cv2.IMREAD_UNCHANGED)
    h, w = first.shape[:2]
    assert f"{w}x{h}" == info["size"]
    annotated = np.isfinite(seq.boxes).all(axis=1)
    b = seq.boxes[annotated]
    assert (b[:, :2] >= 0).all() and (b[:, 0] + b[:, 2] <= w).all() and (b[:, 1] + b[:, 3] <= h).all()
    assert (b[:, 2:] > 0).all()


def test_mbt_cube_keyframes():
    boxes = parse_box_rows(ANNOTATIONS / "mbt_cube" / "groundtruth_rect.txt")
    annotated = np.nonzero(np.isfinite(boxes).all(axis=1))[0]
    assert len(annotated) >= 20
    assert list(annotated) == [*range(0, 211, 10), 217]
    np.testing.assert_allclose(boxes[0], [314, 203, 132, 148], atol=4)  # the brief's frame-0 box, +- a few px
