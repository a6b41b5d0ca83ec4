"""The target in 3D from aligned depth (cyclesiam/depth3d.py): back-projection, cluster
rejection of background and occluders, the reasons for no output."""

from __future__ import annotations

import numpy as np
import pytest

from cyclesiam.config import ConfigError, DepthConfig, merge
from cyclesiam.depth3d import Intrinsics, No3D, Target3D, depth_in_metres, target_3d

K = Intrinsics(fx=525.0, fy=520.0, cx=319.5, cy=239.5, width=640, height=480)
CFG = DepthConfig()


def disc_mask(cx: float, cy: float, r: float, shape=(480, 640)) -> np.ndarray:
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (((xx - cx) ** 2 + (yy - cy) ** 2) <= r * r).astype(np.uint8)


def back_project(u: float, v: float, z: float) -> np.ndarray:
    return np.array([(u - K.cx) * z / K.fx, (v - K.cy) * z / K.fy, z])


def test_plane_centre_is_the_back_projected_mask_centroid_in_mm_and_m():
    mask = disc_mask(400.0, 150.0, 40.0)
    rows, cols = np.nonzero(mask)
    expected = back_project(cols.mean(), rows.mean(), 1.5)
    for depth in (np.full((480, 640), 1500, np.uint16), np.full((480, 640), 1.5, np.float32)):
        out = target_3d(depth, K, CFG, (360, 110, 80, 80), mask)
        assert isinstance(out, Target3D), out
        assert np.linalg.norm(np.array(out.center) - expected) < 0.002
        # a fronto-parallel disc at 1.5 m: the 5..95 percentile span of its columns, in metres
        low, high = np.percentile(cols, [5, 95])
        assert out.size[0] == pytest.approx((high - low) * 1.5 / K.fx, rel=0.02)
        assert out.size[2] == pytest.approx(0.0, abs=1e-6)


def test_background_inside_the_box_and_a_small_occluder_are_rejected():
    depth = np.full((480, 640), 3.0, np.float32)  # wall
    obj = disc_mask(320, 240, 60)
    depth[obj > 0] = 1.0
    depth[230:240, 300:310] = 0.5  # a small occluder in front (1 % of the disc)
    box = (240.0, 160.0, 160.0, 160.0)  # the box holds ~45 % wall
    out = target_3d(depth, K, CFG, box)
    assert isinstance(out, Target3D)
    assert out.center[2] == pytest.approx(1.0, abs=1e-6)
    assert abs(out.center[0]) < 0.01 and abs(out.center[1]) < 0.01
    assert out.size[2] < 0.01 and out.pixels < out.valid


def test_near_cluster_wins_over_a_larger_far_one_when_big_enough():
    depth = np.full((480, 640), 2.0, np.float32)
    depth[200:280, 280:330] = 1.0  # near object: ~38 % of the box below
    out = target_3d(depth, K, CFG, (280.0, 200.0, 80.0, 130.0))
    assert isinstance(out, Target3D) and out.center[2] == pytest.approx(1.0)
    # under the share the larger (farther) cluster is the target
    out = target_3d(depth, K, merge(CFG, {"cluster_min_share": 0.5}), (280.0, 200.0, 80.0, 130.0))
    assert isinstance(out, Target3D) and out.center[2] == pytest.approx(2.0)


@pytest.mark.parametrize("fill", [0, np.nan, np.inf, -1.0, 50.0])
def test_invalid_depth_gives_a_reason(fill):
    dtype = np.uint16 if fill == 0 else np.float32
    depth = np.full((480, 640), fill, dtype)
    out = target_3d(depth, K, CFG, (100.0, 100.0, 50.0, 50.0))
    assert isinstance(out, No3D) and out.kind == "few_pixels"
    assert "too few valid depth pixels" in out.message and "0 < depth.min_pixels=50" in out.message


def test_few_valid_pixels_in_the_mask_and_empty_regions():
    depth = np.zeros((480, 640), np.uint16)
    depth[100:105, 100:105] = 800  # 25 valid pixels
    mask = np.zeros((480, 640), np.uint8)
    mask[90:120, 90:120] = 1
    out = target_3d(depth, K, CFG, (90, 90, 30, 30), mask)
    assert isinstance(out, No3D) and "25 < depth.min_pixels=50" in out.message and "mask" in out.message
    out = target_3d(depth, K, merge(CFG, {"min_pixels": 20}), (90, 90, 30, 30), mask)
    assert isinstance(out, Target3D) and out.center[2] == pytest.approx(0.8)
    assert isinstance(target_3d(depth, K, CFG, (700, 10, 20, 20)), No3D)
    assert target_3d(depth, K, CFG, (0, 0, 10, 10), np.zeros((480, 640), np.uint8)).kind == "empty_region"
    assert target_3d(depth, K, CFG, (float("nan"), 0, 10, 10)).kind == "empty_region"


def test_large_targets_are_subsampled_with_the_same_answer():
    rng = np.random.default_rng(0)
    depth = (1.2 + 0.01 * rng.standard_normal((480, 640))).astype(np.float32)
    full = target_3d(depth, K, merge(CFG, {"max_points": 400_000}), (0, 0, 640, 480))
    sampled = target_3d(depth, K, CFG, (0, 0, 640, 480))
    assert isinstance(full, Target3D) and isinstance(sampled, Target3D)
    assert full.valid == 640 * 480 and full.pixels > 0.99 * full.valid  # only sparse noise tails dropped
    assert sampled.pixels <= CFG.max_points
    assert np.allclose(full.center, sampled.center, atol=0.005)


def test_intrinsics_and_config_checks():
    assert K.problem() is None
    assert "focal length" in Intrinsics(0.0, 500.0, 320, 240, 640, 480).problem()
    assert "non-finite" in Intrinsics(float("nan"), 500.0, 320, 240, 640, 480).problem()
    assert "size" in Intrinsics(500.0, 500.0, 320, 240, 0, 480).problem()
    with pytest.raises(ConfigError, match="max_range must be > min_range"):
        merge(CFG, {"min_range": 5.0, "max_range": 4.0})
    assert depth_in_metres(np.array([[1500]], np.uint16))[0, 0] == pytest.approx(1.5)
