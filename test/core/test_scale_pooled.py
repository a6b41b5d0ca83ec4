"""Scale "pooled": template-sized windows sampled out of the search features, on the shipped model
and real frames, against the template crops the "template" strategy embeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cyclesiam.build import build_tracker
from cyclesiam.config import Config
from cyclesiam.crop import image_mean, to_bgr
from cyclesiam.default_model import default_checkpoint
from cyclesiam.tracking.scale.common import scale_rows, template_similarity
from cyclesiam.tracking.scale.pooled import pooled_windows
from cyclesiam.tracking.search import search

FACTORS = np.array([0.8, 0.9, 0.95, 1.0, 1.05, 1.1, 1.25])
BOX = (315.0, 205.0, 129.0, 145.0)


@pytest.fixture(scope="module")
def cube_frames(cube_frames_dir):
    import cv2

    from cyclesiam.sources import ImageFolderSource

    return [cv2.imread(str(f)) for f in ImageFolderSource(cube_frames_dir).files[:8:2]]


@pytest.fixture(scope="module")
def tracker():
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    cfg = Config()
    cfg.runtime.device, cfg.runtime.backend = "cpu", "torch"
    return build_tracker(cfg, path)


def _windows_at(tracker, frame, box, offset_px=(0.0, 0.0)):
    tid = tracker.add_target(frame, box, target_id="probe")
    target = tracker._targets[tid]
    found = search(tracker._net, tracker.cfg, frame, image_mean(frame), tracker.model_cfg.search_size, [target],
                   np.ones(1), np.zeros(1), {}, features=True)
    assert found.xf is not None and found.xf.shape[-1] == int(np.ceil(tracker.model_cfg.search_size / 8))
    offsets = np.asarray([offset_px], dtype=np.float64) * found.scale_z[:, None]
    windows = pooled_windows(found.xf, offsets, FACTORS, found.search_size, tracker.model_cfg,
                             target.reference.shape[-1])
    return target, windows


def test_the_window_at_the_true_size_is_the_most_like_the_template(tracker, cube_frames):
    frame = to_bgr(cube_frames[0])
    target, windows = _windows_at(tracker, frame, BOX)
    assert windows.shape[:2] == (1, len(FACTORS)) and windows.shape[2:] == target.reference.shape
    similarity = template_similarity(windows, target.reference[None])[0]
    assert np.argmax(similarity) == list(FACTORS).index(1.0), similarity
    assert similarity[FACTORS == 1.0][0] > 0.9  # the same cells the template holds, seen from the search crop
    assert similarity[0] < similarity[3] - 0.05 and similarity[-1] < similarity[3] - 0.05


def test_pooled_windows_follow_the_template_crops_off_centre(tracker, cube_frames):
    """Off the target, the pooled similarity falls as the embedded crops' does (same scale ranking)."""
    frame = to_bgr(cube_frames[0])
    target, centred = _windows_at(tracker, frame, BOX)
    _, shifted = _windows_at(tracker, frame, BOX, offset_px=(40.0, 0.0))
    sim_c = template_similarity(centred, target.reference[None])[0]
    sim_s = template_similarity(shifted, target.reference[None])[0]
    crops = tracker._net.templates(frame, *scale_rows(target.center[None] + [[40.0, 0.0]], target.size[None], FACTORS),
                                   tracker.cfg.context_amount)
    sim_crop = template_similarity(crops[None], target.reference[None])[0]
    assert sim_s.max() < sim_c.max() - 0.05
    assert sim_crop.max() < 0.95  # the crops see the shift too
    assert np.corrcoef(sim_s, sim_crop)[0, 1] > 0.8, (sim_s, sim_crop)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_pooled_tracker_runs_without_extra_template_passes(cube_frames, backend):
    pytest.importorskip("onnxruntime") if backend == "onnxruntime" else None
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    cfg = Config()
    cfg.runtime.device, cfg.runtime.backend = "cpu", backend
    cfg.tracker.scale_from, cfg.tracker.lost_similarity, cfg.tracker.recover_similarity = "pooled", 0.0, 0.0
    tracker = build_tracker(cfg, path)
    calls = []
    original = tracker.backend.template
    tracker.backend.template = lambda z: calls.append(len(z)) or original(z)  # count passes, the real network
    tracker.add_target(cube_frames[0], BOX)
    calls.clear()
    for frame in cube_frames[1:4]:
        (result,) = tracker.track(frame)
    assert calls == []  # no template-sized backbone pass at all while tracking
    assert result.bbox[2] > 0 and abs(np.log(result.bbox[2] / BOX[2])) < 0.3


def test_similarity_on_demand_gives_the_states_of_measuring_every_frame(cube_frames, monkeypatch):
    """pooled measures the LOST rule's similarity only where it can change the state: the same states
    as measuring every target every frame, fewer template passes, NaN similarity elsewhere."""
    from cyclesiam.tracking.scale.pooled import PooledScale

    path = _checkpoint_or_skip()
    # the cube, then a blank wall (the target gone: low scores, LOST), then the cube again
    blank = np.full_like(cube_frames[0], 128)
    frames = [cube_frames[1], cube_frames[2]] + [blank] * 5 + [cube_frames[3]] * 4

    def run(on_demand: bool):
        monkeypatch.setattr(PooledScale, "similarity_on_demand", on_demand)
        cfg = Config()
        cfg.runtime.device, cfg.runtime.backend, cfg.tracker.scale_from = "cpu", "torch", "pooled"
        cfg.tracker.template_bank = "none"  # counted here: the LOST similarity's passes only, not the bank's
        tracker = build_tracker(cfg, path)
        passes = []
        original = tracker.backend.template
        tracker.backend.template = lambda z: passes.append(len(z)) or original(z)
        tracker.add_target(cube_frames[0], BOX)
        passes.clear()
        results = [tracker.track(f)[0] for f in frames]
        return results, sum(passes)

    lazy, lazy_passes = run(True)
    every, every_passes = run(False)
    assert [str(r.state) for r in lazy] == [str(r.state) for r in every]
    assert "lost" in {str(r.state) for r in every}  # the rule really decided something here
    np.testing.assert_allclose([r.bbox for r in lazy], [r.bbox for r in every], atol=1e-9)
    assert every_passes == len(frames) and lazy_passes < every_passes
    measured = [not np.isnan(r.similarity) for r in lazy]
    assert any(measured) and not all(measured)


def _checkpoint_or_skip():
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    return path


def test_onnx_search_features_match_torch(cube_frames):
    pytest.importorskip("onnxruntime")
    path = _checkpoint_or_skip()
    backends = {}
    for name in ("torch", "onnxruntime"):
        cfg = Config()
        cfg.runtime.device, cfg.runtime.backend = "cpu", name
        backends[name] = build_tracker(cfg, path)
    net = backends["torch"]._net
    frame = cube_frames[1]
    x = net.crop(net.model_cfg.search_size)(frame, np.array([[380.0, 280.0], [150.0, 120.0]]), np.array([300.0, 200.0]),
                                           net.model_cfg.search_size, image_mean(frame)).clone()
    z = net.crop(net.model_cfg.template_size)(frame, np.array([[380.0, 280.0], [150.0, 120.0]]),
                                             np.array([150.0, 100.0]), net.model_cfg.template_size).clone()
    outs = {}
    for name, tracker in backends.items():
        zf = tracker.backend.template(z)
        outs[name] = [o.float() for o in tracker.backend.track_features(zf, x)]
        plain = tracker.backend.track(zf, x)
        assert len(plain) == 3 and torch.equal(plain[0].float(), outs[name][0])
    xf_t, xf_o = outs["torch"][3], outs["onnxruntime"][3]
    assert xf_o.shape == xf_t.shape == (2, xf_t.shape[1], 32, 32)
    assert torch.allclose(xf_o, xf_t, rtol=1e-3, atol=1e-3 * float(xf_t.abs().max()))
