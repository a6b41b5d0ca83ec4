"""The checks on ids, scores and boxes the node receives, and id-less detection matching."""

from __future__ import annotations

import math

import pytest

from cyclesiam_ros.target_requests import Refused, best_overlap, check_box, check_id, check_score

SHAPE = (240, 320, 3)


def test_ids():
    assert check_id("") == "" and check_id("cup-2") == "cup-2" and check_id("x" * 64) == "x" * 64
    with pytest.raises(Refused) as err:
        check_id("x" * 65)
    assert err.value.kind == "id_length"
    with pytest.raises(Refused) as err:
        check_id("a\nb", "class_id")
    assert err.value.kind == "class_id_characters" and "\n" not in str(err.value)


@pytest.mark.parametrize("score", [math.nan, math.inf, -math.inf, 2.0, -0.01])
def test_scores_outside_the_unit_interval_are_refused(score):
    with pytest.raises(Refused):
        check_score(score)


def test_scores_inside_pass():
    assert [check_score(s) for s in (0.0, 0.5, 1.0)] == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("box, reason", [
    ((10, 10, 1e-9, 1e-9), "1 px"),
    ((319.5, 10, 50, 50), "1 px"),
    ((0, 0, 1e308, 10), "4x"),
    ((0, 0, 10, 961), "4x"),
    ((10, 10, math.nan, 5), "NaN"),
    ((400, 10, 5, 5), "outside"),
])
def test_boxes_refused(box, reason):
    with pytest.raises(Refused, match=reason):
        check_box(box, SHAPE)


def test_box_clipped():
    assert check_box((-20, -10, 60, 70), SHAPE) == (0.0, 0.0, 40.0, 60.0)
    assert check_box((0, 0, 1280, 960), SHAPE) == (0.0, 0.0, 320.0, 240.0)  # 4 image sides: allowed


def test_best_overlap():
    targets = {"a": (100, 100, 50, 50), "b": (110, 100, 50, 50), "c": (0, 0, 10, 10)}
    assert best_overlap((112, 101, 50, 50), targets, 0.3) == "b"
    assert best_overlap((200, 200, 20, 20), targets, 0.3) is None
    assert best_overlap((200, 200, 20, 20), targets, 0.0) is None  # no overlap at all never matches
    assert best_overlap((100, 100, 50, 50), {}, 0.3) is None
