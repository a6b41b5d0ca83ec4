"""SiamTracker on real frames with a real (random-init, seeded) network."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from cyclesiam.config import Config, TrackerConfig
from cyclesiam.models.builder import build_model
from cyclesiam.models.fuse import prepare_for_inference
from cyclesiam.crop import CropBatch, to_bgr
from cyclesiam.sources import ImageFolderSource
from cyclesiam.build import build_tracker
from cyclesiam.tracker import LOST, TRACKING, SiamTracker, TorchBackend
from cyclesiam.tracking.state import TrackState

BOXES = [(260.0, 170.0, 120.0, 110.0), (60.0, 60.0, 70.0, 50.0), (450.0, 300.0, 90.0, 140.0)]


@pytest.fixture(scope="module")
def model_cfg():
    cfg = Config()
    cfg.model.backbone = "light"
    return cfg.model


def calibrated_model(model_cfg, frame: np.ndarray):
    """A seeded random-init network whose BatchNorm statistics are measured on real crops.

    With default BN statistics a random network's features are ~1e-4 and its responses
    almost template-independent; recalibrated, responses depend strongly on the template,
    so the tests below can tell one target's template from another's.
    """
    torch.manual_seed(0)
    net = build_model(model_cfg)
    with torch.no_grad():
        for conv in (net.rpn.cls, net.rpn.loc):
            conv.weight.normal_(0.0, 0.3)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    centers = np.array([[320.0, 225.0], [95.0, 85.0], [500.0, 380.0], [200.0, 300.0]])
    sizes = np.array([200.0, 100.0, 150.0, 120.0])
    z = CropBatch()(frame, centers, sizes, model_cfg.template_size).clone()
    x = CropBatch()(frame, centers, sizes * 2, model_cfg.search_size).clone()
    net.train()
    with torch.no_grad():
        net(z, x)
    return prepare_for_inference(net, "cpu", channels_last=False)


@pytest.fixture(scope="module")
def model(model_cfg, cube_frames):
    return calibrated_model(model_cfg, to_bgr(cube_frames[0]))


@pytest.fixture(scope="module")
def cube_frames(cube_frames_dir):
    source = ImageFolderSource(cube_frames_dir)
    # real grey 640x480 frames, as read (the tracker converts grey itself)
    import cv2

    return [cv2.imread(str(source.files[i]), cv2.IMREAD_GRAYSCALE) for i in range(0, 12, 2)]


def _tracker(model, model_cfg, **tracker_kw) -> SiamTracker:
    return SiamTracker(model, TrackerConfig(**tracker_kw), model_cfg, "cpu")


def test_invalid_targets_are_rejected(model, model_cfg, cube_frames):
    tracker = _tracker(model, model_cfg)
    frame = cube_frames[0]
    for box, message in [
        ((np.nan, 10, 20, 20), "NaN"),
        ((10, 10, 0, 20), "positive"),
        ((10, 10, 20, -3), "positive"),
        ((1000, 10, 20, 20), "outside"),
        ((10, 10, 20), "4 numbers"),
    ]:
        with pytest.raises(ValueError, match=message):
            tracker.add_target(frame, box)
    with pytest.raises(ValueError, match="mask shape"):
        tracker.add_target(frame, (10, 10, 20, 20), mask=np.zeros((5, 5), np.uint8))
    assert len(tracker) == 0
    tid = tracker.add_target(frame, (-20, -10, 60, 50))  # partly outside: clipped
    assert tracker.result(tid).bbox == (0.0, 0.0, 40.0, 40.0)


@pytest.mark.parametrize("scale_from, template_bank", [("template", "none"), ("pooled", "none"),
                                                       ("template", "rotations"), ("score", "rotations")])
def test_batched_multi_target_equals_each_target_alone(model, model_cfg, cube_frames, scale_from, template_bank):
    together = _tracker(model, model_cfg, scale_from=scale_from, template_bank=template_bank)
    ids = [together.add_target(cube_frames[0], box) for box in BOXES]
    frames = cube_frames[1:4]
    joint = [together.track(f) for f in frames]
    assert together.last_batches == {model_cfg.search_size: ids}
    for n, box in enumerate(BOXES):
        alone = _tracker(model, model_cfg, scale_from=scale_from, template_bank=template_bank)
        alone.add_target(cube_frames[0], box)
        for frame_results, frame in zip(joint, frames):
            single = alone.track(frame)[0]
            batched = frame_results[n]
            np.testing.assert_allclose(batched.bbox, single.bbox, atol=1e-4)
            assert batched.score == pytest.approx(single.score, abs=1e-5)
            np.testing.assert_allclose(batched.polygon, single.polygon, atol=1e-3)
    # the targets really moved differently (their own templates, not a shared one)
    last = joint[-1]
    shifts = [np.subtract(r.bbox, b) for r, b in zip(last, BOXES)]
    assert not np.allclose(shifts[0], shifts[1], atol=1e-3)


def test_results_masks_and_timing(model, model_cfg, cube_frames):
    tracker = _tracker(model, model_cfg, mask_enabled=True)
    tid = tracker.add_target(cube_frames[0], BOXES[0], target_id="cube")
    assert tid == "cube"
    (res,) = tracker.track(cube_frames[1])
    assert res.id == "cube" and res.state == TRACKING and 0.0 <= res.score <= 1.0
    assert res.mask is not None and res.mask.shape == cube_frames[1].shape and res.mask.dtype == np.uint8
    assert len(res.polygon) == 4 and all(len(p) == 2 for p in res.polygon)
    assert set(tracker.timing) >= {"crop", "network", "post", "mask", "total"}
    assert tracker.timing["total"] > 0
    boxes_only = _tracker(model, model_cfg, mask_enabled=False)
    boxes_only.add_target(cube_frames[0], BOXES[0])
    (res2,) = boxes_only.track(cube_frames[1])
    x, y, w, h = res2.bbox
    assert res2.mask is None
    np.testing.assert_allclose(res2.polygon, [[x, y], [x + w, y], [x + w, y + h], [x, y + h]])
    np.testing.assert_allclose(res2.bbox, res.bbox)  # the mask never changes the box


def test_want_masks_per_call_overrides_the_config(model, model_cfg, cube_frames):
    tracker = _tracker(model, model_cfg, mask_enabled=True)
    tracker.add_target(cube_frames[0], BOXES[0])
    (without,) = tracker.track(cube_frames[1], want_masks=False)
    assert without.mask is None and tracker.cfg.mask_enabled  # the config is not written
    tracker.cfg.mask_enabled = False
    (forced,) = tracker.track(cube_frames[2], want_masks=True)
    assert forced.mask is not None and forced.mask.shape == cube_frames[2].shape
    (default,) = tracker.track(cube_frames[3])
    assert default.mask is None


def test_state_is_a_str_enum(model, model_cfg, cube_frames):
    tracker = _tracker(model, model_cfg)
    tracker.add_target(cube_frames[0], BOXES[0])
    (res,) = tracker.track(cube_frames[1])
    assert isinstance(res.state, TrackState) and res.state == "tracking" and f"{res.state}" == "tracking"
    assert TrackState.LOST == LOST == "lost"


class ShapeRecordingBackend(TorchBackend):
    """The real torch backend, remembering the (batch, side) of every search input."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.search_shapes: list[tuple[int, int]] = []
        self.template_batches: list[int] = []

    def track(self, zf, x):
        self.search_shapes.append((int(x.shape[0]), int(x.shape[-1])))
        return super().track(zf, x)

    def template(self, z):
        self.template_batches.append(int(z.shape[0]))
        return super().template(z)


@pytest.mark.parametrize("scale_from", ["template", "score"])
def test_lost_holds_the_box_searches_wider_and_recovers(model, model_cfg, cube_frames, scale_from):
    cfg = TrackerConfig(lost_threshold=1.0, recover_threshold=1.0, lost_frames=2,  # every score is low
                        lost_similarity=0.0, recover_similarity=0.0, lost_hold=True,
                        scale_from=scale_from, scale_steps=5 if scale_from == "template" else 3)
    backend = ShapeRecordingBackend(model, "cpu")
    tracker = SiamTracker(backend, cfg, model_cfg, "cpu")
    tid = tracker.add_target(cube_frames[0], BOXES[0])
    states, boxes = [], []
    for frame in cube_frames[1:5]:
        (r,) = tracker.track(frame)
        states.append(r.state)
        boxes.append(r.bbox)
    assert states == [TRACKING, LOST, LOST, LOST]
    assert boxes[1] == boxes[2] == boxes[3]  # held while lost
    assert tracker.last_batches == {cfg.lost_search_size: [tid]}  # the bigger crop
    lost_size = cfg.lost_search_size
    assert cfg.scale_calibration
    if scale_from == "score":
        # add_target searches its first frame at every scale (scale_calibration), tracking searches
        # every scale; a lost target only the wide crop at its held size
        assert backend.search_shapes == [(cfg.scale_steps, model_cfg.search_size)] * 3 + [(1, lost_size)] * 2
        assert backend.template_batches == [1]
    else:
        # one search per frame, no calibration; the scale crops are embedded only while tracking
        assert backend.search_shapes == [(1, model_cfg.search_size)] * 2 + [(1, lost_size)] * 2
        assert backend.template_batches == [1, cfg.scale_steps]
    assert tracker.track(cube_frames[5])[0].mask is None
    cfg.recover_threshold = 0.0  # run-time parameter change: any score recovers
    (r,) = tracker.track(cube_frames[1])
    assert r.state == TRACKING and r.bbox != boxes[3]
    assert tracker.last_batches == {cfg.lost_search_size: [tid]}  # found in the wide search
    tracker.track(cube_frames[2])
    assert tracker.last_batches == {model_cfg.search_size: [tid]}


@pytest.mark.parametrize("mode", ["none", "last", "blend"])
def test_template_update_modes(model, model_cfg, cube_frames, mode):
    tracker = _tracker(model, model_cfg, template_update=mode, template_update_min_score=0.0, template_update_rate=0.5)
    tid = tracker.add_target(cube_frames[0], BOXES[1])
    first = tracker._targets[tid].zf.clone()
    tracker.track(cube_frames[1])
    changed = not torch.equal(first, tracker._targets[tid].zf)
    assert changed == (mode != "none")
    # the size is always judged against the first template, whatever the search kernel became
    assert torch.equal(tracker._targets[tid].reference, first)


@pytest.mark.parametrize("anchor", [0.0, 0.5, 1.0])
def test_template_update_anchor_mixes_the_first_template_into_the_kernel(model, model_cfg, cube_frames, anchor):
    tracker = _tracker(model, model_cfg, template_update="last", template_update_min_score=0.0,
                       template_update_anchor=anchor)
    tid = tracker.add_target(cube_frames[0], BOXES[1])
    first = tracker._targets[tid].zf.clone()
    tracker.track(cube_frames[1])
    target = tracker._targets[tid]
    latest = tracker._templates(to_bgr(cube_frames[1]), target.center[None], target.size[None])[0]
    torch.testing.assert_close(target.zf, anchor * first + (1.0 - anchor) * latest)
    assert not torch.equal(latest, first)


def test_remove_clear_ids_and_empty_track(model, model_cfg, cube_frames):
    tracker = _tracker(model, model_cfg)
    a = tracker.add_target(cube_frames[0], BOXES[0])
    b = tracker.add_target(cube_frames[0], BOXES[1])
    assert a != b and tracker.target_ids == [a, b]
    tracker.add_target(cube_frames[0], BOXES[2], target_id=a)  # replace
    assert tracker.target_ids == [a, b] and tracker.result(a).bbox == BOXES[2]
    assert tracker.remove_target(b) and not tracker.remove_target(b)
    tracker.clear()
    assert tracker.track(cube_frames[1]) == []


def test_set_box_moves_the_state_and_keeps_the_template(model, model_cfg, cube_frames):
    tracker = _tracker(model, model_cfg)
    a = tracker.add_target(cube_frames[0], BOXES[0])
    template = tracker._targets[a].zf.clone()
    tracker.set_box(a, BOXES[1])
    assert tracker.result(a).bbox == pytest.approx(BOXES[1])
    assert torch.equal(tracker._targets[a].zf, template)
    with pytest.raises(ValueError, match="positive size"):
        tracker.set_box(a, (10.0, 10.0, 0.0, 5.0))
    with pytest.raises(ValueError, match="finite"):
        tracker.set_box(a, (float("nan"), 10.0, 5.0, 5.0))
    with pytest.raises(KeyError, match="no target"):
        tracker.set_box("nope", BOXES[1])
    assert tracker.result(a).bbox == pytest.approx(BOXES[1])  # a refused box changes nothing


def test_build_tracker_from_config():
    cfg = Config()
    cfg.model.backbone = "light"
    cfg.runtime.device = "cpu"
    cfg = dataclasses.replace(cfg, tracker=dataclasses.replace(cfg.tracker, mask_enabled=False))
    tracker = build_tracker(cfg)
    frame = np.full((120, 160, 3), 90, np.uint8)
    frame[40:80, 60:100] = 200
    tracker.add_target(frame, (60, 40, 40, 40))
    (r,) = tracker.track(frame)
    assert r.state == TRACKING and r.mask is None


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_runtime_threads_stay_inside_the_trackers_calls(backend, tmp_path, monkeypatch):
    """`runtime.threads` once set torch's thread count for the whole process: a test that built a
    one-thread tracker changed a later in-process training run's losses in the 6th digit."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    cfg = Config()
    cfg.model.backbone = "light"
    cfg.runtime.device, cfg.runtime.backend = "cpu", backend
    cfg.runtime.threads = 1 if torch.get_num_threads() > 1 else 2
    before = torch.get_num_threads()
    tracker = build_tracker(cfg)
    frame = np.full((120, 160, 3), 90, np.uint8)
    frame[40:80, 60:100] = 200
    tracker.add_target(frame, (60, 40, 40, 40))
    tracker.track(frame)
    assert torch.get_num_threads() == before


def test_build_from_checkpoint_uses_the_checkpoint_model(tmp_path, model_cfg, cube_frames):
    from cyclesiam.checkpoint import save_checkpoint

    torch.manual_seed(1)
    path = save_checkpoint(tmp_path / "light.safetensors", build_model(model_cfg), model_cfg)
    cfg = Config()  # says mobilenet_v2: the checkpoint's stored model config wins
    cfg.runtime.device = "cpu"
    tracker = build_tracker(cfg, checkpoint=path)
    assert tracker.model_cfg.backbone == "light"
    tracker.add_target(cube_frames[0], BOXES[0])
    assert tracker.track(cube_frames[1])[0].state == TRACKING
    with pytest.raises(Exception, match="nothing.safetensors"):
        build_tracker(cfg, checkpoint=tmp_path / "nothing.safetensors")
