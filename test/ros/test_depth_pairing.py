"""Depth frames paired with colour images by stamp (cyclesiam_ros/depth_pairing.py): nearest
stamp within the tolerance, a bounded buffer, and a wait for a late frame only when it can
still come and pairing works."""

from __future__ import annotations

import threading

import numpy as np

from cyclesiam_ros.depth_pairing import DepthFrame, DepthPairing

MS = 1_000_000
LONG_WAIT_S = 60.0  # a lookup that should not wait returns long before; one that hangs fails the suite visibly


def frame(stamp_ns: int) -> DepthFrame:
    return DepthFrame(stamp_ns, np.zeros((2, 2), np.uint16), 0.0)


def test_nearest_stamp_within_tolerance_and_bounded_buffer():
    pairing = DepthPairing(3)
    for stamp in (100 * MS, 133 * MS, 166 * MS, 200 * MS):
        pairing.add(frame(stamp))
    assert pairing.lookup(160 * MS, 10 * MS, 0.0).stamp_ns == 166 * MS
    assert pairing.lookup(200 * MS, 0, 0.0).stamp_ns == 200 * MS
    assert pairing.lookup(100 * MS, 50 * MS, 0.0).stamp_ns == 133 * MS  # 100 ms fell out of the 3-frame buffer
    assert pairing.lookup(150 * MS, 5 * MS, 0.0) is None and not pairing.may_wait
    pairing.resize(1)
    assert pairing.newest_stamp() == 200 * MS and pairing.lookup(166 * MS, 0, 0.0) is None


def test_a_late_depth_frame_is_waited_for():
    pairing = DepthPairing(5)
    pairing.add(frame(100 * MS))
    threading.Timer(0.05, pairing.add, args=(frame(133 * MS),)).start()
    found = pairing.lookup(133 * MS, 5 * MS, LONG_WAIT_S)
    assert found is not None and found.stamp_ns == 133 * MS and pairing.may_wait


def test_no_wait_when_no_later_frame_can_match_or_pairing_failed():
    pairing = DepthPairing(5)
    pairing.add(frame(2_000 * MS))  # depth already past the image stamp: nothing later can match
    assert pairing.lookup(1_000 * MS, 20 * MS, LONG_WAIT_S) is None
    assert not pairing.may_wait
    pairing.add(frame(2_033 * MS))  # depth for another stamp: still no waiting after the miss
    assert not pairing.may_wait and pairing.lookup(2_100 * MS, 20 * MS, LONG_WAIT_S) is None


def test_waiting_comes_back_when_the_missed_depth_arrives_within_the_wait():
    pairing = DepthPairing(5)
    assert pairing.lookup(100 * MS, 5 * MS, 0.5) is None and not pairing.may_wait  # depth later than the wait
    pairing.add(frame(100 * MS))  # ... arrives now, within 0.5 s of the miss: waiting would have found it
    assert pairing.may_wait
    threading.Timer(0.05, pairing.add, args=(frame(133 * MS),)).start()
    assert pairing.lookup(133 * MS, 5 * MS, LONG_WAIT_S).stamp_ns == 133 * MS
