"""ONNX export and the onnxruntime backend: graph checks, numerics vs torch on real crops,
tracking equality on a real clip, the export cache, and clear errors for bad files."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import cyclesiam
from cyclesiam.config import Config, ConfigError, ModelConfig, RuntimeConfig, merge, to_dict
from cyclesiam.device import resolve_backend
from cyclesiam.models.builder import build_model
from cyclesiam.build import build_tracker, make_backend
from cyclesiam.runtime.onnx_cache import cache_dirs, ensure_exported, file_sha256, in_install_tree
from cyclesiam.runtime.onnx_check import check_on_frames, compare_with_torch, real_crops, within_tolerance
from cyclesiam.runtime.onnx_export import dynamic_conv_weights, export_model
from cyclesiam.runtime.onnx_format import OnnxError, _read_metadata_with_onnx, read_metadata
from cyclesiam.runtime.onnx_session import OnnxBackend, select_providers
from cyclesiam.sources import ImageFolderSource

CPU = RuntimeConfig(providers=["CPUExecutionProvider"], threads=2)


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, node_checkpoint) -> Path:
    """A private copy of the real checkpoint, so the cache next to it belongs to this module."""
    path = tmp_path_factory.mktemp("onnx_ckpt") / node_checkpoint.name
    shutil.copy2(node_checkpoint, path)
    return path


@pytest.fixture(scope="module")
def first_export(ckpt):
    return ensure_exported(ckpt)


@pytest.fixture(scope="module")
def cube(cube_frames_dir) -> list[np.ndarray]:
    source = ImageFolderSource(cube_frames_dir)
    frames = [source.frame(i) for i in range(41)]
    source.close()
    return frames


def _model(ckpt):
    from cyclesiam.checkpoint import load_model

    model, cfg, _ = load_model(ckpt)
    return model, cfg


def _iou(a, b) -> float:
    ax2, ay2, bx2, by2 = a[0] + a[2], a[1] + a[3], b[0] + b[2], b[1] + b[3]
    iw = max(0.0, min(ax2, bx2) - max(a[0], b[0]))
    ih = max(0.0, min(ay2, by2) - max(a[1], b[1]))
    inter = iw * ih
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


# ------------------------------------------------------------------ export, graph, metadata


def test_export_is_cached_next_to_the_checkpoint(ckpt, first_export):
    sha = file_sha256(ckpt)
    assert first_export.exported
    assert first_export.directory == ckpt.parent / ".onnx_cache" / sha[:16]
    assert sorted(first_export.paths) == ["mask", "template", "track"]
    assert not list(first_export.directory.glob("*.tmp")), "temporary files left behind"


def test_second_call_is_a_cache_hit(ckpt, first_export):
    mtimes = {p: path.stat().st_mtime_ns for p, path in first_export.paths.items()}
    again = ensure_exported(ckpt)
    assert not again.exported
    assert again.paths == first_export.paths
    assert {p: path.stat().st_mtime_ns for p, path in again.paths.items()} == mtimes


def test_graphs_pass_checker_and_have_no_runtime_conv_weights(first_export):
    for part, path in first_export.paths.items():
        proto = onnx.load(str(path))
        onnx.checker.check_model(proto, full_check=True)
        assert dynamic_conv_weights(proto) == [], part
        if part != "mask":
            assert any(n.op_type == "Conv" for n in proto.graph.node), f"{part}: expected static convs"
    track = onnx.load(str(first_export.paths["track"]))
    dims = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in track.graph.input}
    assert dims["x"] == ["batch", 3, "search", "search"]
    assert dims["zf"][0] == "batch"


def test_runtime_conv_weight_is_detected(tmp_path):
    """The graph check can fail: the grouped correlation (kernels = data) is flagged."""
    from cyclesiam.models.xcorr import xcorr_grouped

    class Grouped(torch.nn.Module):
        def forward(self, x, z):
            return xcorr_grouped(x, z)

    path = tmp_path / "grouped.onnx"
    torch.onnx.export(Grouped(), (torch.randn(1, 4, 9, 9), torch.randn(1, 4, 3, 3)), str(path), dynamo=False)
    assert len(dynamic_conv_weights(onnx.load(str(path)))) == 1


def test_metadata(ckpt, first_export):
    _, cfg = _model(ckpt)
    for part, path in first_export.paths.items():
        meta = read_metadata(path)
        assert meta == _read_metadata_with_onnx(path)  # the fallback for an old protobuf: the same dict
        assert meta["format"] == "cyclesiam-onnx" and meta["part"] == part
        assert json.loads(meta["model_config"]) == to_dict(cfg)
        assert meta["checkpoint_sha256"] == file_sha256(ckpt)
        assert meta["cyclesiam_version"] == cyclesiam.__version__
        assert "BGR" in meta["input_format"] and "0..255" in meta["input_format"] and "NCHW" in meta["input_format"]


# ------------------------------------------------------------------ numerics on real crops


def test_onnx_matches_torch_on_real_crops(ckpt, first_export, cube):
    model, cfg = _model(ckpt)
    rows = check_on_frames(model, cfg, first_export.paths, [cube[0], cube[20]], (1, 2), (255, 415), CPU)
    assert [(r.targets, r.search_size) for r in rows] == [(1, 255), (1, 415), (2, 255), (2, 415)]
    for r in rows:
        assert r.failures == [], (r.targets, r.search_size, r.report)
        assert set(r.report) >= {"zf", "cls", "loc", "feat", "mask"}
        assert r.report["feat_ref"] > 1.0  # real features, not a near-zero network
    # the tolerance can fail: a perturbed model is out of it
    bad = compare_with_torch(_perturbed(model), first_export.paths, *real_crops(cube, 1, 127, 255), CPU)
    assert within_tolerance(bad)


def _perturbed(model):
    import copy

    other = copy.deepcopy(model)
    with torch.no_grad():
        other.rpn.cls.bias.add_(0.5)
    return other


def test_max_batch_chunks_give_the_one_run_outputs(first_export, cube):
    """runtime.max_batch: five targets in runs of 2, 2 and 1 give exactly the outputs of one run of five,
    for every part (template, track with features, mask)."""
    one_run = OnnxBackend(first_export.paths, RuntimeConfig(providers=["CPUExecutionProvider"], threads=2, max_batch=0))
    chunked = OnnxBackend(first_export.paths, RuntimeConfig(providers=["CPUExecutionProvider"], threads=2, max_batch=2))
    z, x = real_crops(cube, 5, 127, 255)
    zf = one_run.template(z)
    assert torch.equal(chunked.template(z), zf)
    whole, parts = one_run.track_features(zf, x), chunked.track_features(zf, x)
    assert len(whole) == len(parts) == 4
    for want, got in zip(whole, parts):
        assert got.shape[0] == 5 and torch.equal(got, want)
    feat = whole[2].flatten(2)[:, :, 100]
    assert torch.equal(chunked.mask(feat), one_run.mask(feat))
    assert chunked.max_batch == 2
    gpu_first = RuntimeConfig(providers=["CUDAExecutionProvider", "CPUExecutionProvider"], max_batch=2)
    if select_providers(gpu_first.providers)[0] != "CPUExecutionProvider":
        assert OnnxBackend(first_export.paths, gpu_first).max_batch == 0  # a GPU runs every row at once


def test_batched_targets_are_independent(first_export, cube):
    be = OnnxBackend(first_export.paths, CPU)
    z, x = real_crops(cube, 2, 127, 255)
    zf = be.template(z)
    both = be.track(zf, x)
    for b in range(2):
        one = be.track(zf[b : b + 1], x[b : b + 1])
        for got, want in zip(one, both):
            torch.testing.assert_close(got[0], want[b], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("backbone", ["mobilenet_v2", "light", "resnet50"])
def test_every_backbone_exports(backbone, tmp_path, cube):
    torch.manual_seed(0)
    cfg = ModelConfig(backbone=backbone)
    model = build_model(cfg).eval()
    paths = export_model(model, cfg, tmp_path)
    be = OnnxBackend(paths, CPU, model_cfg=cfg)
    for part in paths:
        assert dynamic_conv_weights(onnx.load(str(paths[part]))) == []
    report = compare_with_torch(model, be, *real_crops(cube, 1, cfg.template_size, 255))
    assert within_tolerance(report) == [], report


# ------------------------------------------------------------------ tracking with either backend


def test_tracking_a_real_clip_gives_the_same_boxes(ckpt, first_export, cube):
    """40 real frames, one target, both backends through build_tracker.

    The fixture's heads are untrained, so free-running tracks are chaotic (the box runs
    into the image corner, where the response is nearly flat and a 1e-5 difference picks
    another position). Each frame therefore starts both trackers from the same state
    (the torch tracker's): what is compared is everything one frame does - crops,
    network, decode, penalties, window, smoothing, hysteresis, mask - on real frames.
    One search scale: with untrained heads the three scales' best scores nearly tie, and a
    1e-5 difference picks another scale, i.e. another crop for the mask (the scale choice
    itself is backend-independent numpy, test_scale_search.py)."""
    trackers = {}
    for backend in ("torch", "onnxruntime"):
        cfg = merge(Config(), {"runtime": {"backend": backend, "device": "cpu", "providers": ["CPUExecutionProvider"]},
                               "tracker": {"scale_steps": 1}})
        trackers[backend] = build_tracker(cfg, checkpoint=ckpt)
        trackers[backend].add_target(cube[0], (255.0, 160.0, 130.0, 120.0), target_id="cube")
    assert type(trackers["torch"].backend).__name__ == "TorchBackend"
    assert type(trackers["onnxruntime"].backend).__name__ == "OnnxBackend"
    ref_state, onnx_state = trackers["torch"]._targets["cube"], trackers["onnxruntime"]._targets["cube"]
    boxes = []
    for n, frame in enumerate(cube[1:41]):
        a, b = trackers["torch"].track(frame)[0], trackers["onnxruntime"].track(frame)[0]
        assert _iou(a.bbox, b.bbox) > 0.99, (n, a.bbox, b.bbox)
        assert a.state == b.state and abs(a.score - b.score) < 1e-3, (n, a.score, b.score)
        assert (a.mask is None) == (b.mask is None)
        if a.mask is not None:
            inter = np.logical_and(a.mask > 0, b.mask > 0).sum()
            union = np.logical_or(a.mask > 0, b.mask > 0).sum()
            assert union == 0 or inter / union > 0.98, n
        boxes.append(a.bbox)
        for key in ("center", "size", "state", "low_count", "score"):
            value = getattr(ref_state, key)
            setattr(onnx_state, key, value.copy() if isinstance(value, np.ndarray) else value)
    assert len(boxes) == 40 and len({tuple(np.round(b, 1)) for b in boxes}) > 5  # the box does move


def test_unknown_backend_is_a_config_error(ckpt):
    model, cfg = _model(ckpt)
    with pytest.raises(ConfigError, match="runtime.backend"):
        make_backend(merge(Config(), {"runtime": {"backend": "tensorflow"}}), model, cfg, ckpt)


def test_provider_selection():
    assert select_providers(["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    with pytest.raises(OnnxError, match="TensorrtExecutionProvider"):
        select_providers(["TensorrtExecutionProvider"], available=["CPUExecutionProvider"])


# ------------------------------------------------------------------ clear errors


def test_missing_empty_truncated_and_corrupt_files(first_export, tmp_path):
    track = first_export.paths["track"]
    paths = dict(first_export.paths)
    with pytest.raises(OnnxError, match="not found.*nothere.onnx"):
        OnnxBackend({**paths, "track": tmp_path / "nothere.onnx"}, CPU)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    with pytest.raises(OnnxError, match="empty.onnx"):
        OnnxBackend({**paths, "track": empty}, CPU)
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(track.read_bytes()[: track.stat().st_size // 2])
    with pytest.raises(OnnxError, match="truncated.onnx"):
        OnnxBackend({**paths, "track": truncated}, CPU)
    with pytest.raises(OnnxError, match="truncated.onnx.*corrupt or truncated"):
        read_metadata(truncated)
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(OnnxError, match="garbage.onnx"):
        OnnxBackend({**paths, "track": garbage}, CPU)


def test_foreign_and_mismatched_files(ckpt, first_export, tmp_path):
    foreign = tmp_path / "foreign.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 4, 3), (torch.randn(1, 3, 8, 8),), str(foreign), dynamo=False)
    with pytest.raises(OnnxError, match="foreign.onnx.*not a CycleSiam ONNX model"):
        OnnxBackend({**first_export.paths, "track": foreign}, CPU)
    with pytest.raises(OnnxError, match="template.onnx.*'template' network, expected 'track'"):
        OnnxBackend({**first_export.paths, "track": first_export.paths["template"]}, CPU)
    _, cfg = _model(ckpt)
    other = dataclasses.replace(cfg, channels=32)
    with pytest.raises(OnnxError, match="does not match the checkpoint.*channels: onnx 64 vs checkpoint 32"):
        OnnxBackend(first_export.paths, CPU, model_cfg=other)
    with pytest.raises(OnnxError, match="exported from checkpoint sha256"):
        OnnxBackend(first_export.paths, CPU, model_cfg=cfg, sha256="0" * 64)


def test_bad_cache_entry_is_re_exported(ckpt, first_export, tmp_path):
    """A corrupted cached file is replaced, not used (own copy: the module cache stays intact)."""
    copy_ckpt = tmp_path / ckpt.name
    shutil.copy2(ckpt, copy_ckpt)
    model, cfg = _model(ckpt)
    cache = copy_ckpt.parent / ".onnx_cache" / file_sha256(copy_ckpt)[:16]
    shutil.copytree(first_export.directory, cache)
    assert not ensure_exported(copy_ckpt, model, cfg).exported  # copied entry is valid (same hash)
    (cache / "track.onnx").write_bytes(b"\x08\x07garbage")
    redone = ensure_exported(copy_ckpt, model, cfg)
    assert redone.exported and read_metadata(redone.paths["track"])["part"] == "track"


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write a read-only directory")
def test_read_only_checkpoint_dir_falls_back_to_user_cache(ckpt, tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    copy_ckpt = ro / ckpt.name
    shutil.copy2(ckpt, copy_ckpt)
    ro.chmod(0o555)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    try:
        out = ensure_exported(copy_ckpt)
    finally:
        ro.chmod(0o755)
    assert out.directory == tmp_path / "xdg" / "cyclesiam" / "onnx" / file_sha256(copy_ckpt)[:16]


def test_checkpoint_in_an_install_tree_caches_in_the_user_cache(tmp_path, monkeypatch):
    """A colcon install space (or any Python prefix / site-packages) is never written into."""
    install = tmp_path / "install"
    share = install / "cyclesiam_ros" / "share" / "cyclesiam_ros" / "models"
    share.mkdir(parents=True)
    (install / "local_setup.sh").write_text("# colcon\n")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    sha = "ab" * 32
    assert in_install_tree(share / "m.safetensors")
    assert cache_dirs(share / "m.safetensors", sha) == [tmp_path / "xdg" / "cyclesiam" / "onnx" / sha[:16]]
    assert in_install_tree(Path(sys.prefix) / "share" / "m.safetensors")
    source = tmp_path / "src" / "models"
    source.mkdir(parents=True)
    assert not in_install_tree(source / "m.safetensors")
    assert cache_dirs(source / "m.safetensors", sha)[0] == source / ".onnx_cache" / sha[:16]


def test_auto_backend_is_onnxruntime_on_the_cpu_and_torch_on_cuda_or_without_it(ckpt, monkeypatch):
    assert resolve_backend("auto", torch.device("cpu")) == "onnxruntime"  # both installed here
    assert resolve_backend("auto", torch.device("cuda")) == "torch"
    assert resolve_backend(" Torch ", torch.device("cpu")) == "torch"
    tracker = build_tracker(merge(Config(), {"runtime": {"device": "cpu"}}), checkpoint=ckpt)
    assert Config().runtime.backend == "auto" and tracker.backend.name == "onnxruntime"
    assert build_tracker(merge(Config(), {"runtime": {"device": "cpu", "backend": "torch"}}),
                         checkpoint=ckpt).backend.name == "torch"
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a))
    assert resolve_backend("auto", torch.device("cpu")) == "torch"  # a robot without onnxruntime


MEMORY_PROBE = """
import os, sys
import cv2
from cyclesiam.build import build_tracker
from cyclesiam.config import load_config
def rss_mb():
    return int(open('/proc/self/statm').read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
cfg = load_config(None, {"runtime": {"backend": "onnxruntime", "memory_arena": sys.argv[1] == "on",
                                     "max_batch": 0},  # all rows in one run: the arena's largest batch
                         "tracker": {"scale_from": "template"}})  # its 3 template crops a target: the largest batch
tracker = build_tracker(cfg, checkpoint=sys.argv[2])
frames = [cv2.imread(os.path.join(sys.argv[3], f"image{i:04d}.pgm")) for i in range(3)]
tracker.add_target(frames[0], (300, 200, 80, 80)); tracker.track(frames[1])
before = rss_mb()
for k in range(16):
    tracker.add_target(frames[0], (20 + (k % 8) * 70, 20 + (k // 8) * 50, 60, 40))
tracker.track(frames[1])
tracker.clear(); tracker.add_target(frames[0], (300, 200, 80, 80)); tracker.track(frames[2])
print(rss_mb() - before)
"""


@pytest.mark.slow
def test_without_the_arena_memory_follows_the_targets(ckpt, first_export, cube_frames_dir, tmp_path):
    """Issue 25: the onnxruntime CPU arena kept the largest batch's memory for good (9 GB after 200
    targets). Off by default: 16 targets then 1 leave far less behind than with it on."""
    def grown(arena: str) -> float:
        out = subprocess.run([sys.executable, "-c", MEMORY_PROBE, arena, str(ckpt), str(cube_frames_dir)],
                             capture_output=True, text=True, timeout=300, env={**os.environ, "XDG_CACHE_HOME": str(tmp_path)})
        assert out.returncode == 0, out.stderr[-2000:]
        return float(out.stdout.strip().splitlines()[-1])

    assert RuntimeConfig().memory_arena is False
    off, on = grown("off"), grown("on")
    assert off < 200.0 and on > off + 300.0, (off, on)
