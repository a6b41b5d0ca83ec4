"""Shared fixtures: real development clips (fetched by scripts/fetch_data.sh) and ROS isolation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CYCLESIAM_DATA", REPO / "data"))


def _require(path: Path) -> Path:
    if not path.exists():
        pytest.fail(f"development data missing: {path} (run scripts/fetch_data.sh; the test command does)")
    return path


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _require(DATA)


@pytest.fixture(scope="session")
def tree_video() -> Path:
    """Real camera footage: 68 frames 320x240 (opencv-doc tree.avi)."""
    return _require(DATA / "tree.avi")


@pytest.fixture(scope="session")
def cube_frames_dir() -> Path:
    """Real grey image folder: 218 frames 640x480, textured cube, hand occlusion (ViSP)."""
    return _require(DATA / "mbt_cube")


@pytest.fixture(scope="session")
def read_frames():
    """`read_frames(path, n, size=None) -> list of BGR uint8 frames` from a real video via OpenCV."""
    import cv2

    def _read(path: Path, n: int, size: tuple[int, int] | None = None):
        cap = cv2.VideoCapture(str(path))
        frames = []
        while len(frames) < n:
            ok, frame = cap.read()
            if not ok:
                break
            if size is not None:
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_LINEAR)
            frames.append(frame)
        cap.release()
        assert frames, f"could not decode {path}"
        return frames

    return _read
