"""Assembly: model (checkpoint or random init) + network backend + tracker, from the whole config."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from cyclesiam.config import ConfigError, ModelConfig
from cyclesiam.runtime.backend import BACKENDS, NetworkBackend
from cyclesiam.tracker import SiamTracker

if TYPE_CHECKING:
    from cyclesiam.config import Config


def build_tracker(cfg: "Config", checkpoint: str | Path | None = None) -> SiamTracker:
    """A tracker from the whole config: checkpoint weights when given, else a random-init model."""
    model, model_cfg = load_model(cfg, checkpoint)
    # torch on its device, or onnxruntime (exported and cached on demand); unknown names raise
    backend = make_backend(cfg, model, model_cfg, checkpoint)
    tracker = SiamTracker(backend, cfg.tracker, model_cfg, getattr(backend, "device", "cpu"))
    # scoped to the tracker's calls: set process-wide, a tracker built in a process that also trains
    # (adapt, tests) changed the trainer's reduction order and so its losses in the last digits
    tracker.torch_threads = cfg.runtime.threads
    if backend.name == "onnxruntime":
        # torch only glues around onnxruntime here (the crop buffer, a few small ops): its OpenMP
        # pool would otherwise compete with onnxruntime's for the cores (measured under load: a
        # 255x255 crop copy 12 ms instead of under 1, the whole frame 4x slower). One thread
        # inside the tracker's calls only: the process's own torch work keeps its setting.
        tracker.torch_threads = 1
    return tracker


def load_model(cfg: "Config", checkpoint: str | Path | None) -> tuple[nn.Module, ModelConfig]:
    """The checkpoint's model and its stored model config (which wins), or a random-init cfg.model."""
    if checkpoint:
        from cyclesiam.checkpoint import load_model as load_checkpoint

        model, model_cfg, _metadata = load_checkpoint(checkpoint)
        return model, model_cfg
    from cyclesiam.models.builder import build_model

    return build_model(cfg.model), cfg.model


def make_backend(
    cfg: "Config",
    model: nn.Module,
    model_cfg: ModelConfig,
    checkpoint: str | Path | None = None,
) -> NetworkBackend:
    """The NetworkBackend `cfg.runtime.backend` names (`auto` resolved by `resolve_backend`), for
    `model` (unfolded, as loaded).

    onnxruntime: exported on demand and cached (see `cyclesiam.runtime.onnx_cache`); without a
    checkpoint (random-init model) the export goes to a temporary directory."""
    from cyclesiam.device import resolve_backend, resolve_device, use_half

    device = resolve_device(cfg.runtime.device)
    backend = resolve_backend(cfg.runtime.backend, device)
    if backend == "torch":
        from cyclesiam.models.fuse import prepare_for_inference
        from cyclesiam.runtime.torch_backend import TorchBackend

        half = use_half(device, cfg.runtime.half)
        prepared = prepare_for_inference(model, device, channels_last=cfg.runtime.channels_last, half=half)
        has_mask = bool(model_cfg.mask) and getattr(prepared, "mask_head", None) is not None
        return TorchBackend(prepared, device, half, cfg.runtime.channels_last, has_mask)
    if backend == "onnxruntime":
        from cyclesiam.runtime.onnx_cache import ensure_exported
        from cyclesiam.runtime.onnx_export import export_model
        from cyclesiam.runtime.onnx_session import OnnxBackend

        if checkpoint:
            cached = ensure_exported(checkpoint, model, model_cfg)
            return OnnxBackend(cached.paths, cfg.runtime, model_cfg, cached.sha256)
        tmp = tempfile.TemporaryDirectory(prefix="cyclesiam_onnx_")
        paths = export_model(model, model_cfg, tmp.name)
        onnx_backend = OnnxBackend(paths, cfg.runtime, model_cfg)
        onnx_backend._tmpdir = tmp  # keep the directory as long as the backend lives
        return onnx_backend
    raise ConfigError(f"runtime.backend must be one of {BACKENDS}, got '{backend}'")


__all__ = ["build_tracker", "load_model", "make_backend"]
