"""ONNX export of the three network parts and an ONNX Runtime `NetworkBackend`.

Parts (one .onnx file each, all inputs BGR float32 crops in 0..255, NCHW):

  template.onnx  z [B,3,T,T]                  -> zf [B,C,t,t]
  track.onnx     zf [B,C,t,t], x [B,3,S,S]    -> cls [B,2k,R,R], loc [B,4k,R,R], feat [B,F,R,R]
  mask.onnx      feat [N,F]                   -> logits [N,M*M]        (only when the model has one)

B (number of targets), N and S (search size: 255 normally, `lost_search_size` while
lost) are dynamic. Export folds BatchNorm first and switches the depth-wise correlation
to its static-weight form (`xcorr_mode="slices"`): every Conv in the graphs takes its
weight from an initializer, which is what TensorRT's ONNX parser needs (it rejects Conv
with a run-time weight tensor) and what `check_static_conv_weights` verifies.

Every file carries metadata_props: format, format_version, part, model_config (JSON),
cyclesiam_version, checkpoint_sha256, input_format, opset, torch_version. `OnnxBackend`
refuses files whose metadata is missing or does not match what it is asked to run.

Exports are cached next to the checkpoint, keyed by its SHA-256:
`<ckpt dir>/.onnx_cache/<sha256[:16]>/{template,track,mask}.onnx` (or
`~/.cache/cyclesiam/onnx/<sha256[:16]>/` when the checkpoint's directory is read-only);
files are written to a temporary name and renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

import cyclesiam
from cyclesiam.config import ConfigError, ModelConfig, to_dict

if TYPE_CHECKING:
    from cyclesiam.config import Config, RuntimeConfig
    from cyclesiam.tracker import NetworkBackend

log = logging.getLogger(__name__)

FORMAT_NAME = "cyclesiam-onnx"
FORMAT_VERSION = 1
DEFAULT_OPSET = 17
PARTS = ("template", "track", "mask")
INPUT_FORMAT = "BGR float32 0..255 NCHW (ImageNet normalisation inside the model)"
BACKENDS = ("torch", "onnxruntime")
CACHE_DIR_NAME = ".onnx_cache"
STATIC_XCORR_MODES = ("toeplitz", "slices")  # correlation forms without a Conv on run-time weights
EXPORT_XCORR = "toeplitz"  # one batched MatMul: ~3x faster than "slices" in onnxruntime at 415
# Tolerances of the ONNX-vs-torch check (fp32, CPU EP): |onnx - torch| <= ATOL + RTOL * |torch|.
CHECK_ATOL = 1e-3
CHECK_RTOL = 1e-3


class OnnxError(RuntimeError):
    """An ONNX file cannot be exported or used; the message names the file and the problem."""


# --------------------------------------------------------------------------- export wrappers


class _TemplatePart(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net.template(z)


class _TrackPart(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, zf: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.net.track(zf, x)


class _MaskPart(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.net.mask(feat)


@dataclass
class _PartSpec:
    module: nn.Module
    args: tuple[torch.Tensor, ...]
    inputs: list[str]
    outputs: list[str]
    dynamic_axes: dict[str, dict[int, str]]


def export_model(
    model: nn.Module,
    model_cfg: ModelConfig,
    out_dir: str | Path,
    *,
    checkpoint_sha256: str = "",
    opset: int = DEFAULT_OPSET,
    xcorr: str = EXPORT_XCORR,
) -> dict[str, Path]:
    """Export `model` (a SiameseNet built from `model_cfg`) as template/track[/mask].onnx in
    `out_dir`; returns part -> path. The model is copied, BN-folded and switched to the
    static-weight correlation; the caller's model is not changed."""
    net = export_ready_copy(model, xcorr)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "model_config": model_config_json(model_cfg),
        "cyclesiam_version": cyclesiam.__version__,
        "checkpoint_sha256": checkpoint_sha256,
        "input_format": INPUT_FORMAT,
        "opset": str(opset),
        "xcorr": xcorr,
        "torch_version": torch.__version__,
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    paths = {}
    for part, spec in _part_specs(net, model_cfg).items():
        paths[part] = _export_part(spec, out / f"{part}.onnx", {**metadata, "part": part}, opset)
    return paths


def export_ready_copy(model: nn.Module, xcorr: str = EXPORT_XCORR) -> nn.Module:
    """An fp32 CPU, eval-mode, BN-folded copy of `model` with a static-weight correlation form."""
    if xcorr not in STATIC_XCORR_MODES:
        raise ValueError(f"export needs a correlation form without run-time Conv weights {STATIC_XCORR_MODES}, got '{xcorr}'")
    from cyclesiam.models.fuse import prepare_for_inference

    net = prepare_for_inference(copy.deepcopy(model).float().cpu(), "cpu", channels_last=False, inplace=True)
    net.xcorr_mode = xcorr
    return net


def model_config_json(model_cfg: ModelConfig) -> str:
    return json.dumps(to_dict(model_cfg), sort_keys=True)


def _part_specs(net: nn.Module, cfg: ModelConfig) -> dict[str, _PartSpec]:
    gen = torch.Generator().manual_seed(0)
    z = torch.rand(2, 3, cfg.template_size, cfg.template_size, generator=gen) * 255.0
    x = torch.rand(2, 3, cfg.search_size, cfg.search_size, generator=gen) * 255.0
    with torch.no_grad():
        zf = net.template(z)
        feat = net.track(zf, x)[2]
    specs = {
        "template": _PartSpec(_TemplatePart(net), (z,), ["z"], ["zf"], {"z": {0: "batch"}, "zf": {0: "batch"}}),
        "track": _PartSpec(
            _TrackPart(net), (zf, x), ["zf", "x"], ["cls", "loc", "feat"],
            {
                "zf": {0: "batch"},
                "x": {0: "batch", 2: "search", 3: "search"},
                "cls": {0: "batch", 2: "response", 3: "response"},
                "loc": {0: "batch", 2: "response", 3: "response"},
                "feat": {0: "batch", 2: "response", 3: "response"},
            },
        ),
    }
    if getattr(net, "mask_head", None) is not None:
        vectors = feat[:, :, 0, 0].contiguous()
        specs["mask"] = _PartSpec(_MaskPart(net), (vectors,), ["feat"], ["logits"], {"feat": {0: "n"}, "logits": {0: "n"}})
    return specs


def _export_part(spec: _PartSpec, path: Path, metadata: Mapping[str, str], opset: int) -> Path:
    import onnx

    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with torch.no_grad():
            torch.onnx.export(
                spec.module, spec.args, str(tmp), input_names=spec.inputs, output_names=spec.outputs,
                dynamic_axes=spec.dynamic_axes, opset_version=opset, do_constant_folding=True, dynamo=False,
            )
        proto = onnx.load(str(tmp))
        proto.producer_name = "cyclesiam"
        proto.producer_version = cyclesiam.__version__
        del proto.metadata_props[:]
        for key, value in metadata.items():
            proto.metadata_props.add(key=key, value=str(value))
        onnx.checker.check_model(proto, full_check=True)
        bad = dynamic_conv_weights(proto)
        if bad:
            raise OnnxError(f"{path}: Conv nodes with run-time weights (not TensorRT-parsable): {bad}")
        onnx.save(proto, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def dynamic_conv_weights(proto: Any) -> list[str]:
    """Names of Conv/ConvTranspose nodes whose weight (input 1) is not an initializer or a
    Constant node output, i.e. convolutions with run-time kernels. Empty = all static."""
    static = {init.name for init in proto.graph.initializer}
    static |= {out for node in proto.graph.node if node.op_type == "Constant" for out in node.output}
    return [
        node.name or f"{node.op_type}#{i}"
        for i, node in enumerate(proto.graph.node)
        if node.op_type in ("Conv", "ConvTranspose") and (len(node.input) < 2 or node.input[1] not in static)
    ]


# --------------------------------------------------------------------------- checks against torch


def compare_with_torch(
    model: nn.Module,
    paths: "Mapping[str, Path] | OnnxBackend",
    z: torch.Tensor,
    x: torch.Tensor,
    runtime: "RuntimeConfig | None" = None,
) -> dict[str, float]:
    """Max |onnx - torch| per output for template crops `z` [B,3,T,T] and search crops `x`
    [B,3,S,S]; torch = `model` BN-folded in eager mode with the grouped correlation, i.e.
    what TorchBackend runs (pass an already prepared model to skip the folding). Keys: zf,
    cls, loc, feat, mask (when present), and `<key>_ref` = max |torch|."""
    ref = model if _is_folded(model) else torch_reference(model)
    onnx_be = paths if isinstance(paths, OnnxBackend) else OnnxBackend(paths, runtime)
    with torch.inference_mode():
        zf_t = ref.template(z)
        outs_t = ref.track(zf_t, x)
        zf_o = onnx_be.template(z)
        outs_o = onnx_be.track(zf_t, x)
        pairs = {"zf": (zf_o, zf_t), **{n: (o, t) for n, o, t in zip(("cls", "loc", "feat"), outs_o, outs_t)}}
        if onnx_be.has_mask:
            vectors = outs_t[2].flatten(2).transpose(1, 2).reshape(-1, outs_t[2].shape[1])[::37].contiguous()
            pairs["mask"] = (onnx_be.mask(vectors), ref.mask(vectors))
    report = {}
    for name, (got, want) in pairs.items():
        report[name] = float((got - want).abs().max())
        report[f"{name}_ref"] = float(want.abs().max())
    return report


def torch_reference(model: nn.Module) -> nn.Module:
    """The torch side of the check: a BN-folded fp32 CPU copy with the grouped correlation."""
    from cyclesiam.models.fuse import prepare_for_inference

    ref = prepare_for_inference(copy.deepcopy(model).float().cpu(), "cpu", channels_last=False, inplace=True)
    ref.xcorr_mode = "grouped"
    ref._cyclesiam_folded = True
    return ref


def _is_folded(model: nn.Module) -> bool:
    return bool(getattr(model, "_cyclesiam_folded", False))


# boxes (x, y, w, h) on a 640x480 frame for the check crops; scaled to other frame sizes
CHECK_BOXES = ((260.0, 170.0, 120.0, 110.0), (60.0, 60.0, 70.0, 50.0), (450.0, 300.0, 90.0, 140.0), (300.0, 60.0, 60.0, 90.0))


def real_crops(
    frames: Sequence[np.ndarray], targets: int, template_size: int, search_size: int, context: float = 0.5
) -> tuple[torch.Tensor, torch.Tensor]:
    """Tracker-style crops of `targets` boxes: templates from frames[0], search crops
    (`search_size` pixels, context as the tracker computes it) from frames[-1]."""
    from cyclesiam.crop import CropBatch, template_crop_sizes, to_bgr

    first, last = to_bgr(frames[0]), to_bgr(frames[-1])
    sx, sy = first.shape[1] / 640.0, first.shape[0] / 480.0
    boxes = np.array([CHECK_BOXES[i % len(CHECK_BOXES)] for i in range(targets)]) * [sx, sy, sx, sy]
    centers = boxes[:, :2] + boxes[:, 2:] / 2
    s_z = template_crop_sizes(boxes[:, 2:], context)
    z = CropBatch()(first, centers, s_z, template_size).clone()
    x = CropBatch()(last, centers, s_z * search_size / template_size, search_size).clone()
    return z, x


@dataclass
class CheckRow:
    targets: int
    search_size: int
    report: dict[str, float]  # compare_with_torch output
    failures: list[str]  # within_tolerance output


def check_on_frames(
    model: nn.Module,
    model_cfg: ModelConfig,
    paths: Mapping[str, Path],
    frames: Sequence[np.ndarray],
    targets: Sequence[int] = (1, 2),
    search_sizes: Sequence[int] = (255, 415),
    runtime: "RuntimeConfig | None" = None,
) -> list[CheckRow]:
    """`compare_with_torch` on real crops for every (targets, search size)."""
    ref, onnx_be = torch_reference(model), OnnxBackend(paths, runtime)
    rows = []
    for count in targets:
        for size in search_sizes:
            z, x = real_crops(frames, count, model_cfg.template_size, size)
            report = compare_with_torch(ref, onnx_be, z, x)
            rows.append(CheckRow(count, size, report, within_tolerance(report)))
    return rows


def within_tolerance(report: Mapping[str, float], atol: float = CHECK_ATOL, rtol: float = CHECK_RTOL) -> list[str]:
    """Outputs of a `compare_with_torch` report whose max diff exceeds atol + rtol * max|torch|."""
    return [
        f"{k}: {v:.3g} > {atol + rtol * report[k + '_ref']:.3g}"
        for k, v in report.items()
        if not k.endswith("_ref") and v > atol + rtol * report[k + "_ref"]
    ]


# --------------------------------------------------------------------------- cache


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def user_cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "cyclesiam" / "onnx"


def cache_dirs(checkpoint: str | Path, sha256: str) -> list[Path]:
    """Candidate cache directories, preferred first: next to the checkpoint, then the user cache."""
    key = sha256[:16]
    return [Path(checkpoint).resolve().parent / CACHE_DIR_NAME / key, user_cache_root() / key]


@dataclass
class CachedExport:
    paths: dict[str, Path]
    sha256: str
    exported: bool  # False = cache hit
    directory: Path = field(default_factory=Path)


def ensure_exported(
    checkpoint: str | Path,
    model: nn.Module | None = None,
    model_cfg: ModelConfig | None = None,
    opset: int = DEFAULT_OPSET,
) -> CachedExport:
    """The ONNX files of `checkpoint`, exported on the first call and reused afterwards
    (a cache entry is reused only when its metadata names the same checkpoint hash, format
    version and opset). `model`/`model_cfg` avoid loading the checkpoint twice."""
    ckpt = Path(checkpoint)
    if not ckpt.is_file():
        raise OnnxError(f"checkpoint not found: {ckpt}")
    sha = file_sha256(ckpt)
    if model is None or model_cfg is None:
        from cyclesiam.checkpoint import load_model

        model, model_cfg, _ = load_model(ckpt)
    wanted = _parts_of(model_cfg)
    candidates = cache_dirs(ckpt, sha)
    for directory in candidates:
        if _cache_valid(directory, wanted, sha, model_cfg, opset):
            return CachedExport({p: directory / f"{p}.onnx" for p in wanted}, sha, False, directory)
    for directory in candidates:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if not os.access(directory, os.W_OK):
                raise PermissionError(f"{directory} is not writable")
            paths = export_model(model, model_cfg, directory, checkpoint_sha256=sha, opset=opset)
        except PermissionError as exc:
            log.info("ONNX cache %s not usable (%s); trying the next location", directory, exc)
            continue
        log.info("exported ONNX models of %s to %s", ckpt, directory)
        return CachedExport(paths, sha, True, directory)
    raise OnnxError(f"no writable ONNX cache directory for {ckpt}; tried {[str(d) for d in candidates]}")


def _parts_of(model_cfg: ModelConfig) -> list[str]:
    return list(PARTS) if model_cfg.mask else ["template", "track"]


def _cache_valid(directory: Path, parts: Sequence[str], sha: str, model_cfg: ModelConfig, opset: int) -> bool:
    for part in parts:
        path = directory / f"{part}.onnx"
        if not path.is_file():
            return False
        try:
            meta = read_metadata(path)
            check_metadata(meta, path, part, model_cfg, sha)
        except OnnxError as exc:
            log.warning("stale or bad ONNX cache entry, re-exporting: %s", exc)
            return False
        if meta.get("opset") != str(opset):
            return False
    return True


def read_metadata(path: str | Path) -> dict[str, str]:
    """metadata_props of an ONNX file (reads the file without its weights' validation)."""
    import onnx

    p = _check_file(Path(path))
    try:
        proto = onnx.load(str(p), load_external_data=False)
    except Exception as exc:  # onnx raises DecodeError / ValueError / OSError
        raise OnnxError(f"{p}: not a valid ONNX file (corrupt or truncated): {exc}") from exc
    return {prop.key: prop.value for prop in proto.metadata_props}


def _check_file(p: Path) -> Path:
    if not p.is_file():
        raise OnnxError(f"ONNX file not found: {p}")
    if p.stat().st_size == 0:
        raise OnnxError(f"{p}: empty file (truncated export?)")
    return p


def check_metadata(
    meta: Mapping[str, str], path: Path, part: str, model_cfg: ModelConfig | None = None, sha256: str | None = None
) -> None:
    """OnnxError when `meta` is not a CycleSiam `part` file matching `model_cfg` / `sha256`."""
    if meta.get("format") != FORMAT_NAME:
        raise OnnxError(
            f"{path}: not a CycleSiam ONNX model (metadata 'format' is {meta.get('format')!r}, expected "
            f"{FORMAT_NAME!r}); export one with cyclesiam-export"
        )
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise OnnxError(f"{path}: bad format_version {meta.get('format_version')!r}") from None
    if version != FORMAT_VERSION:
        raise OnnxError(f"{path}: ONNX export format {version}, this cyclesiam reads {FORMAT_VERSION}; re-export")
    if meta.get("part") != part:
        raise OnnxError(f"{path}: holds the '{meta.get('part')}' network, expected '{part}'")
    if model_cfg is not None and _canonical(meta.get("model_config", "")) != _canonical(model_config_json(model_cfg)):
        raise OnnxError(
            f"{path}: model config in the ONNX metadata does not match the checkpoint's: "
            f"{_config_diff(meta.get('model_config', ''), model_cfg)}"
        )
    if sha256 is not None and meta.get("checkpoint_sha256") != sha256:
        raise OnnxError(
            f"{path}: exported from checkpoint sha256 {meta.get('checkpoint_sha256')!r}, expected {sha256!r}"
        )


def _canonical(text: str) -> str:
    try:
        return json.dumps(json.loads(text), sort_keys=True)
    except (json.JSONDecodeError, TypeError):
        return text


def _config_diff(stored: str, model_cfg: ModelConfig) -> str:
    try:
        a = json.loads(stored)
    except (json.JSONDecodeError, TypeError):
        return f"stored config is not JSON: {stored[:80]!r}"
    b = to_dict(model_cfg)
    keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    return ", ".join(f"{k}: onnx {a.get(k)!r} vs checkpoint {b.get(k)!r}" for k in keys) or "(formatting only)"


# --------------------------------------------------------------------------- runtime backend


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
        providers = [(p, _provider_options(p, path.parent, self.half)) for p in self.providers]
        try:
            return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph / RuntimeException
            raise OnnxError(f"{path}: onnxruntime cannot load it: {exc}") from exc

    def _check_consistent(self) -> None:
        configs = {part: _canonical(m.get("model_config", "")) for part, m in self.metadata.items()}
        shas = {part: m.get("checkpoint_sha256", "") for part, m in self.metadata.items()}
        if len(set(configs.values())) > 1 or len(set(shas.values())) > 1:
            raise OnnxError(f"ONNX files {sorted(str(p) for p in self.paths.values())} come from different models/exports")

    @property
    def model_cfg(self) -> ModelConfig:
        from cyclesiam.config import from_dict

        return from_dict(ModelConfig, json.loads(self.metadata["track"]["model_config"]), "model")

    def _run(self, part: str, feeds: dict[str, torch.Tensor]) -> list[np.ndarray]:
        arrays = {k: np.ascontiguousarray(v.detach().cpu().numpy(), dtype=np.float32) for k, v in feeds.items()}
        return self._sessions[part].run(None, arrays)

    def template(self, z: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._run("template", {"z": z})[0])

    def track(self, zf: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        cls, loc, feat = self._run("track", {"zf": zf, "x": x})
        return torch.from_numpy(cls), torch.from_numpy(loc), torch.from_numpy(feat)

    def mask(self, feat: torch.Tensor) -> torch.Tensor:
        if not self.has_mask:
            raise RuntimeError("this ONNX export has no mask network (model.mask: false)")
        return torch.from_numpy(self._run("mask", {"feat": feat})[0])


# --------------------------------------------------------------------------- selection


def make_backend(
    cfg: "Config",
    model: nn.Module,
    model_cfg: ModelConfig,
    checkpoint: str | Path | None = None,
) -> "NetworkBackend":
    """The NetworkBackend `cfg.runtime.backend` names (`auto` resolved by `resolve_backend`), for
    `model` (unfolded, as loaded).

    onnxruntime: exported on demand and cached next to `checkpoint` (see `ensure_exported`);
    without a checkpoint (random-init model) the export goes to a temporary directory."""
    from cyclesiam.device import resolve_backend, resolve_device, use_half

    device = resolve_device(cfg.runtime.device)
    backend = resolve_backend(cfg.runtime.backend, device)
    if backend == "torch":
        from cyclesiam.models.fuse import prepare_for_inference
        from cyclesiam.tracker import TorchBackend

        half = use_half(device, cfg.runtime.half)
        prepared = prepare_for_inference(model, device, channels_last=cfg.runtime.channels_last, half=half)
        has_mask = bool(model_cfg.mask) and getattr(prepared, "mask_head", None) is not None
        return TorchBackend(prepared, device, half, cfg.runtime.channels_last, has_mask)
    if backend == "onnxruntime":
        if checkpoint:
            cached = ensure_exported(checkpoint, model, model_cfg)
            return OnnxBackend(cached.paths, cfg.runtime, model_cfg, cached.sha256)
        tmp = tempfile.TemporaryDirectory(prefix="cyclesiam_onnx_")
        paths = export_model(model, model_cfg, tmp.name)
        onnx_backend = OnnxBackend(paths, cfg.runtime, model_cfg)
        onnx_backend._tmpdir = tmp  # keep the directory as long as the backend lives
        return onnx_backend
    raise ConfigError(f"runtime.backend must be one of {BACKENDS}, got '{backend}'")


__all__ = [
    "BACKENDS",
    "CHECK_ATOL",
    "CHECK_RTOL",
    "CachedExport",
    "OnnxBackend",
    "OnnxError",
    "compare_with_torch",
    "dynamic_conv_weights",
    "ensure_exported",
    "export_model",
    "file_sha256",
    "make_backend",
    "read_metadata",
    "select_providers",
    "within_tolerance",
]
