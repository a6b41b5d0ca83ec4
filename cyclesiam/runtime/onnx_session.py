"""The ONNX Runtime `NetworkBackend` over exported template/track[/mask] files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch

from cyclesiam.config import ModelConfig
from cyclesiam.runtime.malloc_tuning import ShrinkTrim, keep_heap_buffers
from cyclesiam.runtime.onnx_format import OnnxError, canonical, check_metadata, read_metadata

if TYPE_CHECKING:
    from cyclesiam.config import RuntimeConfig


def select_providers(wanted: Sequence[str], available: Sequence[str] | None = None) -> list[str]:
    """`wanted` execution providers that this onnxruntime has, in the given order."""
    import onnxruntime as ort

    available = list(ort.get_available_providers() if available is None else available)
    chosen = [p for p in wanted if p in available]
    if not chosen:
        raise OnnxError(f"none of the requested onnxruntime providers {list(wanted)} is available; available: {available}")
    return chosen


def _provider_options(provider: str, cache_dir: Path, half: bool) -> dict[str, Any]:
    """Options per provider. TensorRT: engine cache next to the ONNX files, fp16 on request
    (not verified here: TensorRT is not installable on this machine)."""
    if provider == "TensorrtExecutionProvider":
        return {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir / "trt"), "trt_fp16_enable": bool(half)}
    return {}


# each part's input whose rows are the batch (one per target): the arena shrink follows its shape
BATCH_INPUT = {"template": "z", "track": "x", "mask": "feat"}


class OnnxBackend:
    """`NetworkBackend` over ONNX Runtime sessions of exported template/track[/mask] files.

    `paths`: part -> .onnx path (as returned by `export_model` / `ensure_exported`).
    `model_cfg`/`sha256`: when given, every file's metadata must match them.
    Tensors in and out are CPU torch tensors (zero-copy views of NumPy arrays)."""

    name = "onnxruntime"

    def __init__(
        self,
        paths: Mapping[str, str | Path],
        runtime: "RuntimeConfig | None" = None,
        model_cfg: ModelConfig | None = None,
        sha256: str | None = None,
    ) -> None:
        from cyclesiam.config import RuntimeConfig

        runtime = runtime or RuntimeConfig(providers=["CPUExecutionProvider"])
        self.providers = select_providers(runtime.providers)
        self.threads = runtime.threads
        self.half = runtime.half
        self.memory_arena = runtime.memory_arena
        # chunking pays where one run of many crops outgrows a CPU's caches; a GPU wants them all at once
        self.max_batch = runtime.max_batch if self.providers[0] == "CPUExecutionProvider" else 0
        if not self.memory_arena:
            keep_heap_buffers()  # without the arena, malloc must not give each frame's buffers back
        self._shrink = ShrinkTrim()
        missing = [p for p in ("template", "track") if p not in paths]
        if missing:
            raise OnnxError(f"ONNX backend needs the {missing} file(s); got {sorted(paths)}")
        self.paths = {part: Path(p) for part, p in paths.items()}
        self.metadata: dict[str, dict[str, str]] = {}
        self._sessions = {part: self._session(part, path, model_cfg, sha256) for part, path in self.paths.items()}
        self._check_consistent()
        self.has_mask = "mask" in self._sessions

    def _session(self, part: str, path: Path, model_cfg: ModelConfig | None, sha256: str | None) -> Any:
        import onnxruntime as ort

        meta = read_metadata(path)
        check_metadata(meta, path, part, model_cfg, sha256)
        self.metadata[part] = meta
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads > 0:
            opts.intra_op_num_threads = self.threads
        opts.inter_op_num_threads = 1
        # no busy-waiting between ops: the tracker's own work (crops, post-processing, torch
        # ops) and other processes share the cores; measured faster under load, equal when quiet
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # the CPU arena keeps the largest batch's buffers for the session's life (issue 25: 9 GB
        # after 200 targets, never returned); without it memory follows the current targets
        opts.enable_cpu_mem_arena = self.memory_arena
        providers = [(p, _provider_options(p, path.parent, self.half)) for p in self.providers]
        try:
            return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / RuntimeException
            raise OnnxError(f"{path}: onnxruntime cannot load it: {exc}") from exc

    def _check_consistent(self) -> None:
        configs = {part: canonical(m.get("model_config", "")) for part, m in self.metadata.items()}
        shas = {part: m.get("checkpoint_sha256", "") for part, m in self.metadata.items()}
        if len(set(configs.values())) > 1 or len(set(shas.values())) > 1:
            raise OnnxError(f"ONNX files {sorted(str(p) for p in self.paths.values())} come from different models/exports")

    @property
    def model_cfg(self) -> ModelConfig:
        from cyclesiam.config import from_dict

        return from_dict(ModelConfig, json.loads(self.metadata["track"]["model_config"]), "model")

    def _run(self, part: str, feeds: dict[str, torch.Tensor], outputs: list[str] | None = None) -> list[np.ndarray]:
        """`part` over every row of `feeds` (row i of each input = target i), in runs of at most max_batch rows."""
        arrays = {k: np.ascontiguousarray(v.detach().cpu().numpy(), dtype=np.float32) for k, v in feeds.items()}
        batch = arrays[BATCH_INPUT[part]]
        rows = batch.shape[0]
        step = self.max_batch if 0 < self.max_batch < rows else rows
        # the largest run's rows, once: a smaller last chunk is not a batch that shrank (releasing the
        # heap for it every frame cost more than the chunking saved)
        self._shrink.note((part, batch.shape[1:]), step)
        session = self._sessions[part]
        results = [session.run(outputs, {k: a[i:i + step] for k, a in arrays.items()}) for i in range(0, rows, step)]
        return results[0] if len(results) == 1 else [np.concatenate(parts) for parts in zip(*results)]

    def template(self, z: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._run("template", {"z": z})[0])

    def track(self, zf: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls, loc, feat = self._run("track", {"zf": zf, "x": x}, ["cls", "loc", "feat"])
        return torch.from_numpy(cls), torch.from_numpy(loc), torch.from_numpy(feat)

    def track_features(self, zf: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(torch.from_numpy(a) for a in self._run("track", {"zf": zf, "x": x}, ["cls", "loc", "feat", "xf"]))

    def mask(self, feat: torch.Tensor) -> torch.Tensor:
        if not self.has_mask:
            raise RuntimeError("this ONNX export has no mask network (model.mask: false)")
        return torch.from_numpy(self._run("mask", {"feat": feat})[0])

