"""Streams from real bags/videos/folders, clips, sample determinism, canvas geometry and rank sharding."""

from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest
import torch
from conftest import write_bag

from cyclesiam_train.config import Config
from cyclesiam.crop import crop_window, image_mean
from cyclesiam_train.cycle import crop_batch, cycle_path
from cyclesiam_train.data import (Clip, CycleDataset, DataError, StepSampler, cycle_frames, describe, discover_streams,
                                  make_clips, rotate_points)
from cyclesiam.sources import SourceError


def test_streams_from_bag_topics_video_and_folder(tmp_path, tree_frames, tree_video, cube_frames_dir) -> None:
    bag = write_bag(tmp_path / "two", tree_frames[:6], storage="sqlite3", topics=["/left", "/right"],
                    empty_topics=["/unused"])
    streams = discover_streams([bag, tree_video, cube_frames_dir])
    assert [(s.kind, s.topic, s.num_frames) for s in streams] == [
        ("bag", "/left", 6), ("bag", "/right", 6), ("video", "", 68), ("folder", "", 218)]
    assert streams[0].stamps is not None and streams[2].stamps is None
    only = discover_streams([bag], ["/right"])
    assert [s.topic for s in only] == ["/right"]
    frame = only[0].source.frame(5)
    assert frame.shape == (240, 320, 3) and np.abs(frame.astype(int) - tree_frames[5]).max() == 0
    text = describe(streams, make_clips(streams, 0), None, "random")
    assert "4 stream(s)" in text and "/left" in text and "218 frames" in text and "random" in text


def test_clear_errors_for_missing_topic_zero_frames_corrupt_bag(tmp_path, tree_frames) -> None:
    bag = write_bag(tmp_path / "b", tree_frames[:3], empty_topics=["/empty"])
    with pytest.raises(DataError, match=r"b: none of the requested topics \['/nope'\]"):
        discover_streams([bag], ["/nope"])
    with pytest.raises(SourceError, match="zero messages") as err:
        discover_streams([bag], ["/empty"])
    assert str(bag) in str(err.value)
    only_empty = write_bag(tmp_path / "e", [], empty_topics=["/empty"])
    with pytest.raises(DataError, match="zero frames"):
        discover_streams([only_empty])
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "metadata.yaml").write_text((bag / "metadata.yaml").read_text())
    mcap = next(bag.glob("*.mcap"))
    (corrupt / mcap.name).write_bytes(mcap.read_bytes()[: 300])
    with pytest.raises(SourceError) as err:
        discover_streams([corrupt])
    assert str(corrupt) in str(err.value)
    empty_dir = tmp_path / "nothing"
    empty_dir.mkdir()
    with pytest.raises(SourceError, match="no images"):
        discover_streams([empty_dir])
    with pytest.raises(DataError, match="not found"):
        discover_streams([tmp_path / "missing.bag"])


def test_step_sampler_disjoint_ranks_and_resume_continuation() -> None:
    r0 = list(StepSampler(0, 3, 4, rank=0, world=2))
    r1 = list(StepSampler(0, 3, 4, rank=1, world=2))
    assert r0 == [0, 1, 4, 5, 8, 9] and r1 == [2, 3, 6, 7, 10, 11]
    assert list(StepSampler(2, 3, 4, 0, 2)) == r0[4:]
    assert sorted(r0 + r1) == list(range(12))
    with pytest.raises(ValueError, match="divisible"):
        StepSampler(0, 1, 3, 0, 2)


def test_cycle_frames_stay_in_clip_and_move() -> None:
    clip = Clip(0, 10, 14)
    rng = np.random.default_rng(0)
    for _ in range(200):
        frames = cycle_frames(int(rng.integers(10, 14)), clip, 3, 1, 10, rng)
        assert all(10 <= f < 14 for f in frames)
        assert frames[0] != frames[1] and frames[1] != frames[2]
    assert cycle_path(2) == [0, 1, 0] and cycle_path(3) == [0, 1, 2, 1, 0] and cycle_path(3, "direct") == [0, 1, 2, 0]


def test_samples_are_deterministic_and_canvas_matches_crop_geometry(tree_video) -> None:
    cfg = Config()
    streams = discover_streams([tree_video])
    ds = CycleDataset(streams, make_clips(streams, 20), None, cfg.train, cfg.model, 100)
    a, b, c = ds[7], ds[7], ds[8]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["frames"], c["frames"])
    plan = ds.sample_plan(7)
    f0, f1 = plan["frames"]
    assert f0 // 20 == f1 // 20 and 1 <= abs(f1 - f0) <= 10  # same clip of 20 frames
    # canvas of t1: the box centre is the canvas centre, at search-crop scale
    img = streams[0].source.frame(f0)
    k = float(a["scale"])
    box = a["box"].numpy()
    assert box[0] == box[1] == 511 / 2
    cx_img = (a["bounds"][0, 0].item() - 255.5) / -k  # image x of the canvas centre
    cy_img = (a["bounds"][0, 1].item() - 255.5) / -k
    ref = crop_window(img, (cx_img, cy_img), 511 / k, 511, image_mean(img)).transpose(2, 0, 1)
    assert np.abs(ref.astype(int) - a["frames"][0].numpy().astype(int)).max() <= 1
    # a search crop of the initial box: 255 px wide around the centre holds the target at 127/255 scale
    p = cfg.train.context_amount * (box[2] + box[3])
    s_z = float(np.sqrt((box[2] + p) * (box[3] + p)))
    assert abs(s_z * 255 / 127 - 255) < 1e-3
    # the ellipse mask of the box is centred in the canvas
    mask = a["mask"].numpy()
    ys, xs = np.nonzero(mask)
    assert abs(xs.mean() + 0.5 - 255.5) < 1 and abs(ys.mean() + 0.5 - 255.5) < 1
    assert abs(mask.sum() - np.pi * box[2] * box[3] / 4) < 0.05 * mask.sum()


def test_crop_batch_equals_crop_window_on_a_real_frame(tree_frames) -> None:
    img = tree_frames[3]
    pad = image_mean(img)
    cases = [((50.3, 200.7), 173.4, 127), ((160.0, 120.0), 400.0, 255), ((-30.0, 10.0), 90.0, 127)]
    t = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    for center, side, out in cases:
        ref = crop_window(img, center, side, out, pad).astype(np.float32)
        got = crop_batch(t, torch.tensor([pad], dtype=torch.float32), torch.tensor([center]), torch.tensor([side]), out)
        diff = np.abs(got[0].permute(1, 2, 0).numpy() - ref)
        assert diff.max() < 1.5, (center, side, diff.max())  # OpenCV's fixed-point bilinear vs exact


def _plain_and_changed(video, **train_changes) -> tuple[CycleDataset, CycleDataset]:
    """Two cycle datasets over the same clips of `video`: the default training config, and the same
    with `train_changes` (so sample i of each can be compared)."""
    cfg = Config()
    streams = discover_streams([video])
    clips = make_clips(streams, 20)
    plain = CycleDataset(streams, clips, None, cfg.train, cfg.model, 100)
    changed = CycleDataset(streams, clips, None, dataclasses.replace(cfg.train, **train_changes), cfg.model,
                           100)
    return plain, changed


def test_illumination_jitter_relights_each_cycle_frame_and_changes_nothing_when_off(tree_video) -> None:
    plain, lit = _plain_and_changed(tree_video, illumination_jitter=0.4)
    for i in range(4):
        a, b = plain.sample_plan(i), lit.sample_plan(i)
        assert a["frames"] == b["frames"] and np.allclose(a["shift"], b["shift"])  # same sample otherwise
        assert np.allclose(a["gains"], 1.0) and np.allclose(a["offsets"], 0.0)
        assert np.all((b["gains"] >= np.exp(-0.4)) & (b["gains"] <= np.exp(0.4)))
        assert np.all(np.abs(b["offsets"]) <= 20.0) and len(set(b["gains"].round(6))) == len(b["gains"])
    before, after = plain[0]["frames"].numpy().astype(float), lit[0]["frames"].numpy().astype(float)
    plan = lit.sample_plan(0)
    for n, (gain, offset) in enumerate(zip(plan["gains"], plan["offsets"])):
        inside = (before[n] > 30) & (before[n] < 200)  # away from clipping and the canvas padding
        assert np.abs(after[n][inside] - (before[n][inside] * gain + offset)).mean() < 1.5
    assert np.array_equal(lit[0]["frames"].numpy(), lit[0]["frames"].numpy())  # deterministic per index


def test_gray_probability_turns_whole_cycles_grey_and_keeps_the_rest(tree_video) -> None:
    plain, mixed = _plain_and_changed(tree_video, gray_probability=0.5)
    grey_flags = [mixed.sample_plan(i)["gray"] for i in range(40)]
    assert 5 < sum(grey_flags) < 35  # about half, drawn per sample
    i = grey_flags.index(True)
    frames = mixed[i]["frames"].numpy().astype(int)  # [F, 3, C, C]
    assert (frames[:, 0] == frames[:, 1]).all() and (frames[:, 1] == frames[:, 2]).all()
    assert (plain[i]["frames"][:, 0] != plain[i]["frames"][:, 2]).any()  # tree.avi is in colour
    j = grey_flags.index(False)
    colour = mixed[j]["frames"]
    assert (colour[:, 0] != colour[:, 2]).any()
    assert mixed.sample_plan(j)["gray"] is False and plain.sample_plan(j)["gray"] is False


def test_rotation_jitter_turns_later_frames_about_the_box_and_keeps_the_first(tree_video) -> None:
    plain, turned = _plain_and_changed(tree_video, rotation_jitter=30.0)
    for i in range(4):
        a, b = plain.sample_plan(i), turned.sample_plan(i)
        assert a["frames"] == b["frames"] and np.allclose(a["shift"], b["shift"])  # same sample otherwise
        assert np.all(a["angles"] == 0.0) and b["angles"][0] == 0.0
        assert np.all(np.abs(b["angles"][1:]) <= 30.0) and np.all(b["angles"][1:] != 0.0)
    before, after = plain[0], turned[0]
    assert torch.equal(before["frames"][0], after["frames"][0]) and torch.equal(before["box"], after["box"])
    angle = float(turned.sample_plan(0)["angles"][1])
    c = before["frames"].shape[-1]
    # the later frame is the plain canvas turned by `angle` about its centre (up to one resampling)
    expected = cv2.warpAffine(before["frames"][1].numpy().transpose(1, 2, 0),
                              cv2.getRotationMatrix2D(((c - 1) / 2, (c - 1) / 2), angle, 1.0), (c, c))
    inner = np.zeros((c, c), bool)
    inner[c // 4: 3 * c // 4, c // 4: 3 * c // 4] = True  # inside the image on both
    got = after["frames"][1].numpy().transpose(1, 2, 0).astype(float)
    unturned = before["frames"][1].numpy().transpose(1, 2, 0).astype(float)
    assert np.abs(got - expected)[inner].mean() < 3.0  # measured 1.5
    assert np.abs(got - unturned)[inner].mean() > 8.0  # measured 14
    # the image rectangle's turned corners bound the canvas where the image is
    b0, b1 = before["bounds"][1].numpy(), after["bounds"][1].numpy()
    corners = np.array([[b0[0], b0[1]], [b0[2], b0[1]], [b0[0], b0[3]], [b0[2], b0[3]]]) - c / 2
    turned_corners = rotate_points(corners, angle) + c / 2
    assert np.allclose(b1, [*turned_corners.min(axis=0), *turned_corners.max(axis=0)], atol=1e-3)
