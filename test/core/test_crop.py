"""Crops against hand-computed windows on real frames, incl. out-of-image mean padding."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from cyclesiam.crop import (
    CropBatch,
    crop_window,
    image_mean,
    search_crop_size,
    template_crop_size,
    template_crop_sizes,
    to_bgr,
)


@pytest.fixture(scope="module")
def frame(tree_video, read_frames) -> np.ndarray:
    return read_frames(tree_video, 1)[0]  # 240x320x3 real frame


def test_context_sizes_match_the_formula():
    # w=100, h=50: p = 75, s_z = sqrt(175 * 125)
    assert template_crop_size(100, 50, 0.5) == pytest.approx(math.sqrt(175 * 125))
    assert search_crop_size(100, 50, 0.5, 255, 127) == pytest.approx(math.sqrt(175 * 125) * 255 / 127)
    np.testing.assert_allclose(template_crop_sizes(np.array([[100, 50], [10, 10]])), [math.sqrt(175 * 125), 20.0])


def test_unit_scale_crop_is_the_image_slice_with_mean_padding(frame):
    mean = image_mean(frame)
    # window of side 60 centred at (20, 25): x in [-10, 50], y in [-5, 55]
    crop = crop_window(frame, (20.0, 25.0), 60, 60)
    expected = np.empty((60, 60, 3), dtype=np.float64)
    expected[:] = mean
    expected[5:, 10:] = frame[0:55, 0:50]
    assert crop.shape == (60, 60, 3) and crop.dtype == np.uint8
    assert np.abs(crop.astype(np.float64) - np.round(expected)).max() <= 0.5
    # the padding really is the per-channel mean, not zero or edge replication
    assert np.allclose(crop[0, 0], np.round(mean), atol=0.5)
    assert not np.allclose(crop[0, 0], crop[6, 11])


def test_half_scale_crop_averages_2x2_blocks(frame):
    # window of side 200 at centre (150, 120): pixels x 50..249, y 20..219 -> 100x100 output,
    # each output pixel samples the centre of a 2x2 block (bilinear = block mean)
    crop = crop_window(frame, (150.0, 120.0), 200, 100).astype(np.float64)
    block = frame[20:220, 50:250].astype(np.float64)
    expected = (block[0::2, 0::2] + block[1::2, 0::2] + block[0::2, 1::2] + block[1::2, 1::2]) / 4
    assert np.abs(crop - expected).max() <= 1.0


def test_subpixel_centre_shifts_the_crop(frame):
    a = crop_window(frame, (100.0, 100.0), 50, 50).astype(np.float64)
    b = crop_window(frame, (100.5, 100.0), 50, 50).astype(np.float64)
    expected = (frame[75:125, 75:125].astype(np.float64) + frame[75:125, 76:126]) / 2
    assert np.abs(b - expected).max() <= 1.0
    assert np.abs(a - b).mean() > 1.0


def test_window_entirely_outside_is_all_mean(frame):
    crop = crop_window(frame, (-500.0, -500.0), 40, 20)
    assert np.all(np.abs(crop.reshape(-1, 3) - np.round(image_mean(frame))) <= 0.5)


def test_explicit_pad_value(frame):
    crop = crop_window(frame, (0.0, 0.0), 20, 20, pad_value=(1, 2, 3))
    assert tuple(crop[0, 0]) == (1, 2, 3)


def test_grey_images_become_bgr(cube_frames_dir):
    grey = cv2.imread(str(sorted(cube_frames_dir.iterdir())[0]), cv2.IMREAD_GRAYSCALE)
    bgr = to_bgr(grey)
    assert bgr.shape == grey.shape + (3,)
    assert np.array_equal(bgr[..., 0], grey) and np.array_equal(bgr[..., 2], grey)
    assert to_bgr(grey[..., None]).shape == bgr.shape
    with pytest.raises(ValueError):
        to_bgr(grey.astype(np.float32))


def test_batched_crops_fill_one_reused_nchw_tensor(frame):
    batch = CropBatch()
    centers = np.array([[50.0, 60.0], [300.0, 10.0], [160.0, 120.0]])
    sizes = np.array([80.0, 150.0, 300.0])
    out = batch(frame, centers, sizes, 64)
    assert out.shape == (3, 3, 64, 64) and out.dtype == torch.float32
    for i in range(3):
        single = crop_window(frame, centers[i], sizes[i], 64)
        assert np.array_equal(out[i].permute(1, 2, 0).numpy(), single.astype(np.float32))
    ptr = out.data_ptr()
    again = batch(frame, centers[:2], sizes[:2], 64)
    assert again.data_ptr() == ptr  # no re-allocation for the same or a smaller batch
    assert again.shape[0] == 2
