"""cyclesiam-track / cyclesiam-bench in-process on real footage (random-init light model)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cyclesiam.cli import bench, track
from cyclesiam.sources import VideoSource

FAST = ["--set", "model.backbone=light", "--device", "cpu", "--no-progress"]


def _check_schema(doc: dict, n_frames: int, box: list[float]) -> None:
    assert set(doc) == {"frames"}
    frames = doc["frames"]
    assert [f["index"] for f in frames] == list(range(n_frames))
    for f in frames:
        assert set(f) == {"index", "bbox", "score", "state", "polygon"}
        assert len(f["bbox"]) == 4 and all(isinstance(v, float) for v in f["bbox"])
        assert f["bbox"][2] > 0 and f["bbox"][3] > 0
        assert isinstance(f["score"], float) and 0.0 <= f["score"] <= 1.0
        assert f["state"] in ("tracking", "lost")
        assert len(f["polygon"]) == 4 and all(len(p) == 2 for p in f["polygon"])
    assert frames[0]["bbox"] == box and frames[0]["state"] == "tracking"


def test_track_video_writes_json_and_annotated_video(tree_video, tmp_path):
    out_json, out_video = tmp_path / "r" / "result.json", tmp_path / "annotated.avi"
    code = track.main([str(tree_video), "--box", "120,60,80,80", "--json", str(out_json), "--out", str(out_video), *FAST])
    assert code == 0
    doc = json.loads(out_json.read_text())
    _check_schema(doc, 68, [120.0, 60.0, 80.0, 80.0])
    assert doc["frames"][0]["polygon"] == [[120.0, 60.0], [200.0, 60.0], [200.0, 140.0], [120.0, 140.0]]
    video = VideoSource(out_video)
    assert len(video) == 68 and video.frame(0).shape == (240, 320, 3)


def test_track_bag_topic_and_stdout(tmp_path, tree_video, read_frames, capsys):
    from test_sources import write_ros2_bag

    bag = write_ros2_bag(tmp_path / "bag", read_frames(tree_video, 6), "mcap")
    code = track.main([str(bag), "--topic", "/cam/png/compressed", "--box", "10,20,50,40", *FAST])
    assert code == 0
    doc = json.loads(capsys.readouterr().out)
    _check_schema(doc, 6, [10.0, 20.0, 50.0, 40.0])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--box", "1,2,0,5"], "positive width"),
        (["--box", "900,2,10,5"], "outside"),
        (["--box", "1,2,3,4", "--topic", "/cam"], "not a bag"),
        (["--box", "1,2,3,4", "--set", "tracker.nope=1"], "unknown key"),
    ],
)
def test_track_errors_are_reported(tree_video, capsys, argv, message):
    assert track.main([str(tree_video), *argv, *FAST]) == 2
    assert message in capsys.readouterr().err


def test_track_missing_input_and_bad_box_syntax(tmp_path, capsys):
    assert track.main([str(tmp_path / "nothing.mp4"), "--box", "1,2,3,4", *FAST]) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        track.main([str(tmp_path), "--box", "1,2,3"])


def test_bench_prints_a_table(cube_frames_dir, capsys):
    code = bench.main(["--backbones", "light", "--modes", "box", "mask", "--targets", "2", "--iterations", "2",
                       "--warmup", "0", "--device", "cpu", "--frames", str(cube_frames_dir)])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:4] == ["backbone", "mode", "targets", "mean"]
    rows = [line.split() for line in lines[1:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [("light", "box", "2"), ("light", "box+mask", "2")]
    assert all(float(r[3]) > 0 and float(r[6]) > 0 for r in rows)
    assert np.isfinite([float(v) for r in rows for v in r[3:7]]).all()
