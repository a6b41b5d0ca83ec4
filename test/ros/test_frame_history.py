"""The frame history on real frames: out-of-order stamps kept in order, bag loops reset, byte bound."""

from __future__ import annotations

import numpy as np
import pytest

from cyclesiam_ros.frame_history import Added, Frame, FrameHistory

MS = 1_000_000


@pytest.fixture(scope="module")
def frames(tree_video, read_frames) -> list[np.ndarray]:
    return read_frames(tree_video, 40)


def frame_at(image: np.ndarray, stamp_ns: int) -> Frame:
    return Frame(stamp_ns=stamp_ns, frame_id="camera", image=image, received=0.0, header=None)


def test_jittery_stamps_keep_every_frame_findable(frames):
    """The issue's reproduction: every 5th stamp 1 ms older than the one before (33 ms apart)."""
    history = FrameHistory(size=30)
    stamps = []
    for index, image in enumerate(frames[:30]):
        stamp = 1_000 * MS + index * 33 * MS - (34 * MS if index % 5 == 4 else 0)
        stamps.append(stamp)
        outcome = history.add(frame_at(image, stamp))
        assert outcome is (Added.INSERTED if index % 5 == 4 else Added.APPENDED)
    assert len(history) == 30
    for stamp, image in zip(stamps, frames):
        found = history.lookup(stamp, 0)
        assert found is not None and found.image is image
    assert history.span() == (min(stamps), max(stamps))


def test_a_real_jump_back_resets(frames):
    history = FrameHistory(size=10, reset_jump_ns=1_000 * MS)
    for index in range(5):
        history.add(frame_at(frames[index], 5_000 * MS + index * 33 * MS))
    assert history.add(frame_at(frames[5], 5_000 * MS - 800 * MS)) is Added.INSERTED  # 932 ms back
    assert history.add(frame_at(frames[6], 1_000 * MS)) is Added.RESET  # bag loop
    assert len(history) == 1 and history.latest().image is frames[6]


def test_too_old_for_a_full_history_is_dropped(frames):
    history = FrameHistory(size=3)
    for index in range(3):
        history.add(frame_at(frames[index], (index + 10) * 33 * MS))
    assert history.add(frame_at(frames[3], 5 * 33 * MS)) is Added.DROPPED
    assert history.span() == (10 * 33 * MS, 12 * 33 * MS) and len(history) == 3


def test_bounded_in_bytes(frames):
    one = frames[0].nbytes
    history = FrameHistory(size=30, max_bytes=5 * one)
    for index, image in enumerate(frames[:20]):
        history.add(frame_at(image, index * 33 * MS))
    assert len(history) == 5 and history.nbytes() == 5 * one
    assert history.span() == (15 * 33 * MS, 19 * 33 * MS)
    history.resize(max_bytes=one // 2)  # one frame above the bound: the newest still stays
    assert len(history) == 1 and history.latest().image is frames[19]
    history.resize(size=30, max_bytes=100 * one)
    for index, image in enumerate(frames[20:40]):
        history.add(frame_at(image, (20 + index) * 33 * MS))
    assert len(history) == 21
    history.resize(size=4)
    assert len(history) == 4 and history.nbytes() == 4 * one
