"""Mask back-projection, threshold, largest component and rotated box on constructed masks."""

from __future__ import annotations

import math

import cv2
import numpy as np

from cyclesiam.mask import backproject_mask, box_polygon, largest_component, mask_to_polygon, rotated_box


def _polygon_area(poly: np.ndarray) -> float:
    x, y = poly[:, 0], poly[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def test_full_mask_lands_on_the_window_pixels():
    prob = np.ones((63, 63), np.float32)
    # crop centre (100.5, 80.5), response offset (+8, -16) crop px, 1 image px per crop px,
    # window 63 -> image window centred (108.5, 64.5): x in [77, 140], y in [33, 96]
    res = backproject_mask(prob, (100.5, 80.5), (8.0, -16.0), 1.0, 63, (200, 240), 0.5, (0, 0, 1, 1))
    ys, xs = np.nonzero(res.mask)
    assert res.mask.shape == (200, 240) and res.mask.dtype == np.uint8
    assert set(np.unique(res.mask)) == {0, 255}
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (77, 139, 33, 95)
    assert not res.empty
    np.testing.assert_allclose(sorted(res.polygon[:, 0]), [77, 77, 140, 140])
    np.testing.assert_allclose(sorted(res.polygon[:, 1]), [33, 33, 96, 96])


def test_scaled_rotated_rectangle_gives_its_rotated_box():
    prob = np.zeros((63, 63), np.float32)
    rect = ((31.5, 31.5), (40.0, 14.0), 30.0)
    cv2.fillPoly(prob, [np.round(cv2.boxPoints(rect)).astype(np.int32)], 1.0)
    scale = 2.0  # image px per crop px; window 127 crop px -> 254 image px
    res = backproject_mask(prob, (320.0, 240.0), (0.0, 0.0), scale, 127, (480, 640), 0.5, (0, 0, 1, 1))
    # mask px -> image px factor: 254 / 63
    k = 254 / 63
    (cx, cy), (w, h), angle = cv2.minAreaRect(res.polygon.astype(np.float32))
    assert abs(cx - 320) < 3 and abs(cy - 240) < 3
    long_side, short_side = max(w, h), min(w, h)
    assert abs(long_side - 40 * k) < 3 * k and abs(short_side - 14 * k) < 3 * k
    edge = res.polygon[1] - res.polygon[0]
    edge_angle = math.degrees(math.atan2(edge[1], edge[0])) % 90
    assert min(abs(edge_angle - 30), abs(edge_angle - 60)) < 4
    assert _polygon_area(res.polygon) > 0.8 * (res.mask > 0).sum()


def test_only_the_largest_component_is_kept():
    prob = np.zeros((63, 63), np.float32)
    prob[5:15, 5:15] = 0.9  # 100 px
    prob[30:60, 30:60] = 0.9  # 900 px
    res = backproject_mask(prob, (50.0, 50.0), (0.0, 0.0), 1.0, 63, (100, 100), 0.5, (0, 0, 1, 1))
    ys, xs = np.nonzero(res.mask)
    assert xs.min() >= 48 and ys.min() >= 48  # the small blob (image x 23..32) is gone
    assert abs(len(xs) - 900) < 70
    assert largest_component(np.zeros((5, 5), np.uint8)).sum() == 0


def test_threshold_is_a_parameter_and_empty_falls_back_to_the_box():
    prob = np.full((63, 63), 0.4, np.float32)
    box = (10.0, 20.0, 30.0, 40.0)
    empty = backproject_mask(prob, (50.0, 50.0), (0.0, 0.0), 1.0, 63, (100, 100), 0.5, box)
    assert empty.empty and empty.mask.sum() == 0
    np.testing.assert_allclose(empty.polygon, box_polygon(box))
    low = backproject_mask(prob, (50.0, 50.0), (0.0, 0.0), 1.0, 63, (100, 100), 0.3, box)
    assert not low.empty and (low.mask > 0).sum() > 3000


def test_window_partly_and_fully_outside_the_image():
    prob = np.ones((63, 63), np.float32)
    part = backproject_mask(prob, (0.0, 0.0), (0.0, 0.0), 1.0, 63, (50, 60), 0.5, (0, 0, 5, 5))
    ys, xs = np.nonzero(part.mask)
    assert xs.min() == 0 and ys.min() == 0 and xs.max() == 30 and ys.max() == 30
    gone = backproject_mask(prob, (-500.0, 0.0), (0.0, 0.0), 1.0, 63, (50, 60), 0.5, (0, 0, 5, 5))
    assert gone.empty and gone.mask.shape == (50, 60)


def test_single_pixel_rotated_box_has_unit_area():
    m = np.zeros((10, 10), np.uint8)
    m[4, 6] = 255
    poly = rotated_box(m)
    assert _polygon_area(poly) == 1.0
    np.testing.assert_allclose(poly.min(0), [6, 4])
    assert mask_to_polygon(np.zeros((4, 4), np.float32), 0.5, (0, 0, 2, 2)).empty
