"""Training clips from still photos by known transforms (cyclesiam_train/still_clips.py)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from cyclesiam_train.config import Config
from cyclesiam_train.data import CycleDataset, discover_streams, make_clips
from cyclesiam_train.eval.generate import pose_matrix, warp_layer
from cyclesiam_train.still_clips import (StillClipConfig, already_written, list_stills, main, sample_foreground,
                                         sample_foreground_motion, scale_profile, still_groups, write_clips)

SMALL = dict(num_clips=3, frames=12, width=160, height=120)


@pytest.fixture(scope="module")
def stills(data_dir: Path) -> Path:
    folder = data_dir / "stills"
    if not folder.is_dir():
        pytest.fail(f"still photos missing: {folder} (scripts/fetch_data.sh, recipe 4)")
    return folder


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory, stills: Path) -> Path:
    out = tmp_path_factory.mktemp("still_clips")
    write_clips(out, stills, StillClipConfig(seed=5, **SMALL))
    return out


def test_clips_are_jpeg_folders_deterministic_from_the_seed(tmp_path: Path, stills: Path, clips: Path) -> None:
    summary = json.loads((clips / "still_clips.json").read_text())
    assert [c["name"] for c in summary["clips"]] == ["clip_000", "clip_001", "clip_002"]
    for c in summary["clips"]:
        files = sorted((clips / c["name"]).glob("*.jpg"))
        assert len(files) == 12
        assert cv2.imread(str(files[0])).shape == (120, 160, 3)
        assert c["background"] != c["foreground"]
    again, other = tmp_path / "again", tmp_path / "other"
    write_clips(again, stills, StillClipConfig(seed=5, **SMALL))
    write_clips(other, stills, StillClipConfig(seed=6, **SMALL))
    for t in (0, 11):
        a = cv2.imread(str(clips / "clip_001" / f"{t:05d}.jpg"))
        assert np.array_equal(a, cv2.imread(str(again / "clip_001" / f"{t:05d}.jpg")))
        assert not np.array_equal(a, cv2.imread(str(other / "clip_001" / f"{t:05d}.jpg")))
    assert already_written(clips, StillClipConfig(seed=5, **SMALL))
    assert not already_written(clips, StillClipConfig(seed=6, **SMALL))


def test_frames_move_the_foreground_and_differ_over_time(clips: Path) -> None:
    first = cv2.imread(str(clips / "clip_000" / "00000.jpg")).astype(int)
    last = cv2.imread(str(clips / "clip_000" / "00011.jpg")).astype(int)
    assert np.abs(first - last).mean() > 2.0


@pytest.mark.parametrize("change", [2.0, 3.5])
def test_foreground_scale_changes_by_the_asked_factor(stills: Path, change: float) -> None:
    """Measured twice from the known transform: the pose matrix's scale and the pixel area of the
    warped alpha, between the smallest and the largest pose of the clip."""
    cfg = StillClipConfig(frames=30, min_scale_change=change, max_scale_change=change)
    still = cv2.imread(str(list_stills(stills, cfg.min_still_side)[0]), cv2.IMREAD_COLOR)
    for seed in range(4):
        rng = np.random.default_rng(seed)
        cut = sample_foreground(rng, still, cfg.soft_edge_px)
        motion = sample_foreground_motion(rng, cfg, cut.alpha.shape[1] / cut.alpha.shape[0])
        lo, hi = int(np.argmin(motion.heights)), int(np.argmax(motion.heights))
        poses = [pose_matrix(cut, np.zeros(2), motion.heights[t], motion.angles[t]) for t in (lo, hi)]
        det = [float(np.sqrt(abs(np.linalg.det(m[:, :2])))) for m in poses]
        assert det[1] / det[0] == pytest.approx(change, rel=1e-3)
        # the whole cut-out warped into a canvas that holds it: sqrt of its alpha area scales the same
        side = int(2 * motion.heights[hi] * max(1.0, cut.alpha.shape[1] / cut.alpha.shape[0])) + 8
        areas = []
        for m in poses:
            m = m.copy()
            m[:, 2] += side / 2
            areas.append(float(warp_layer(cut, m, (side, side), None)[1].sum()))
        assert np.sqrt(areas[1] / areas[0]) == pytest.approx(change, rel=0.03)


def test_scale_profile_reaches_both_ends_smoothly() -> None:
    for cycles in (0.5, 1.0):
        for grow in (True, False):
            s = scale_profile(40, 2.5, cycles, grow)
            assert s.min() == pytest.approx(1.0) and s.max() == pytest.approx(2.5)
            assert np.abs(np.diff(np.log(s))).max() < 0.1  # no jump between frames


def test_some_clips_leave_the_view() -> None:
    cfg = StillClipConfig(out_of_view_fraction=0.5)
    out = 0
    for seed in range(20):
        motion = sample_foreground_motion(np.random.default_rng(seed), cfg, 1.0)
        half = motion.heights / 2
        x, y = motion.centers[:, 0], motion.centers[:, 1]
        crossed = (x - half < 0) | (x + half > cfg.width) | (y - half < 0) | (y + half > cfg.height)
        out += bool(crossed.any())
    assert 3 <= out <= 17


def test_a_photo_series_is_one_group(stills: Path) -> None:
    groups = still_groups(list_stills(stills, 200))
    names = [sorted(p.stem for p in g) for g in groups]
    series = [n for n in names if "left01" in n]
    assert series and len(series[0]) > 5 and all(s.startswith("left") for s in series[0])


def test_the_trainer_reads_a_clip_folder(clips: Path) -> None:
    cfg = Config()
    streams = discover_streams([clips / "clip_000", clips / "clip_001"])
    assert [s.kind for s in streams] == ["folder", "folder"] and [s.num_frames for s in streams] == [12, 12]
    ds = CycleDataset(streams, make_clips(streams, 0), None, cfg.train, cfg.model, 8)
    sample = ds[3]
    assert sample["frames"].shape[-2:] == (cfg.train.canvas_size, cfg.train.canvas_size)
    assert torch.equal(sample["frames"], ds[3]["frames"])


def test_cli_writes_and_skips_when_present(tmp_path: Path, stills: Path, capsys: pytest.CaptureFixture) -> None:
    args = ["--out", str(tmp_path), "--stills", str(stills), "--seed", "1", "--num", "1", "--frames", "3",
            "--size", "64", "48", "--if-missing"]
    assert main(args) == 0
    assert len(list((tmp_path / "clip_000").glob("*.jpg"))) == 3
    assert main(args) == 0
    assert "not rewritten" in capsys.readouterr().out
    assert main(["--out", str(tmp_path / "x"), "--stills", str(tmp_path / "none")]) == 1
