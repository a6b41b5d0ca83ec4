"""The CUDA path (issue 22): torch on CUDA in fp32 and fp16, onnxruntime with the CUDA / TensorRT
execution providers. Every test needs what this machine may lack and skips with the reason; the
figures come from probes/gpu_check.sh on a machine with a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from cyclesiam.build import build_tracker
from cyclesiam.config import Config
from cyclesiam.default_model import default_checkpoint

BOXES = [(315.0, 205.0, 129.0, 145.0), (60.0, 60.0, 80.0, 70.0)]
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")


@pytest.fixture(scope="module")
def frames(cube_frames_dir):
    import cv2

    from cyclesiam.sources import ImageFolderSource

    return [cv2.imread(str(f)) for f in ImageFolderSource(cube_frames_dir).files[:12:2]]


def _checkpoint():
    path = default_checkpoint()
    if path is None or not path.is_file():
        pytest.skip(f"shipped model {path} missing")
    return path


def _track(cfg: Config, frames) -> np.ndarray:
    tracker = build_tracker(cfg, _checkpoint())
    for box in BOXES:
        tracker.add_target(frames[0], box)
    boxes = []
    for frame in frames[1:]:
        results = tracker.track(frame, want_masks=True)
        assert results[0].mask is not None  # the mask head ran on the device too
        boxes.append([r.bbox for r in results])
    return np.asarray(boxes)


def _cfg(device: str, backend: str, **runtime) -> Config:
    cfg = Config()
    cfg.runtime.device, cfg.runtime.backend = device, backend
    for key, value in runtime.items():
        setattr(cfg.runtime, key, value)
    return cfg


@needs_cuda
@pytest.mark.parametrize("scale_from", ["template", "pooled"])
@pytest.mark.parametrize("half", [False, True])
def test_torch_on_cuda_tracks_as_on_the_cpu(frames, half: bool, scale_from: str):
    cpu = _cfg("cpu", "torch")
    gpu = _cfg("cuda", "torch", half=half)
    cpu.tracker.scale_from = gpu.tracker.scale_from = scale_from
    on_cpu, on_gpu = _track(cpu, frames), _track(gpu, frames)
    # fp32: kernels differ in rounding only; fp16: within a few pixels over these frames
    np.testing.assert_allclose(on_gpu, on_cpu, atol=4.0 if half else 0.5)


@needs_cuda
def test_the_cuda_tracker_keeps_its_tensors_on_the_gpu(frames):
    tracker = build_tracker(_cfg("cuda", "torch", half=True), _checkpoint())
    tid = tracker.add_target(frames[0], BOXES[0])
    tracker.track(frames[1])
    target = tracker._targets[tid]
    assert target.zf.is_cuda and target.zf.dtype == torch.float16


@pytest.mark.parametrize("provider", ["CUDAExecutionProvider", "TensorrtExecutionProvider"])
def test_onnxruntime_gpu_providers_track_as_the_cpu_provider(frames, provider: str):
    ort = pytest.importorskip("onnxruntime")
    if provider not in ort.get_available_providers():
        pytest.skip(f"onnxruntime {ort.__version__} here has no {provider} (available: {ort.get_available_providers()})")
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU (none on this machine)")
    cpu = _track(_cfg("cpu", "onnxruntime", providers=["CPUExecutionProvider"]), frames)
    gpu = _track(_cfg("cuda", "onnxruntime", providers=[provider, "CPUExecutionProvider"]), frames)
    np.testing.assert_allclose(gpu, cpu, atol=0.5)
