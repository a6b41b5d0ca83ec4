"""Checkpoints: safetensors weights + JSON metadata (model config, versions, provenance).

Loading never unpickles: pickle / `torch.save` zip files are refused by their magic
bytes, and safetensors holds only raw tensors. Every problem (missing, truncated,
corrupt or foreign file, missing metadata, keys or shapes that do not match the
stored config) raises CheckpointError naming the file and the mismatch.
"""

from __future__ import annotations

import datetime
import json
import os
import struct
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
from torch import nn

import cyclesiam
from cyclesiam.config import ConfigError, ModelConfig, from_dict, to_dict

FORMAT_NAME = "cyclesiam-checkpoint"
FORMAT_VERSION = 1
_MAX_HEADER = 100 * 1024 * 1024  # safetensors' own limit on the JSON header


class CheckpointError(RuntimeError):
    """A checkpoint cannot be written or used; the message names the file and the problem."""


def save_checkpoint(path: str | Path, model: nn.Module, model_cfg: ModelConfig, provenance: Mapping[str, Any] | None = None) -> Path:
    """Write `model`'s weights with `model_cfg` and `provenance` (JSON-serialisable dict:
    data, steps, git commit, ...) to `path` atomically (temp file in the same directory,
    then os.replace). The model must be the unfolded one built from `model_cfg`."""
    from safetensors.torch import save_file

    p = Path(path)
    if isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    _check_against_config(state, model_cfg, p, what="model to save")
    metadata = {
        "format": FORMAT_NAME,
        "format_version": str(FORMAT_VERSION),
        "model_config": json.dumps(to_dict(model_cfg), sort_keys=True),
        "cyclesiam_version": cyclesiam.__version__,
        "torch_version": torch.__version__,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "provenance": json.dumps(dict(provenance or {}), sort_keys=True, default=str),
    }
    return write_atomically(p, lambda tmp: save_file(state, tmp, metadata=metadata))


def write_atomically(path: str | Path, write: Callable[[str], None]) -> Path:
    """`write(temporary path)` beside `path`, fsync, rename over `path`, fsync the directory: a kill at any
    moment leaves either the old file or the new one, never a partial one (only `.NAME.*.tmp` leftovers)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, p)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:  # make the rename durable
        dir_fd = os.open(str(p.parent), os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass
    return p


def stale_temporaries(directory: str | Path) -> list[Path]:
    """Leftovers of `write_atomically` calls that were killed before their rename."""
    return sorted(p for p in Path(directory).glob(".*.tmp") if p.is_file())


def read_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], ModelConfig, dict[str, Any]]:
    """(state_dict on CPU, ModelConfig, metadata) of a checkpoint, validated against its config.

    metadata: format_version (int), cyclesiam_version, torch_version, created (str),
    provenance (dict), model_config (dict)."""
    p = Path(path)
    _check_container(p)
    raw_meta, state = _read_safetensors(p)
    metadata, cfg = _parse_metadata(raw_meta, p)
    _check_against_config(state, cfg, p, what="checkpoint")
    return state, cfg, metadata


def load_model(path: str | Path, device: torch.device | str = "cpu") -> tuple[nn.Module, ModelConfig, dict[str, Any]]:
    """(SiameseNet in eval mode on `device`, ModelConfig, metadata) from a checkpoint.
    `device`: a torch.device or a config string (auto | cpu | cuda | cuda:N)."""
    from cyclesiam.device import resolve_device
    from cyclesiam.models.builder import build_model

    state, cfg, metadata = read_checkpoint(path)
    model = build_model(cfg)
    model.load_state_dict(state, strict=True)
    target = device if isinstance(device, torch.device) else resolve_device(device)
    return model.to(target).eval(), cfg, metadata


def _check_container(p: Path) -> None:
    if not p.is_file():
        raise CheckpointError(f"checkpoint not found: {p}")
    size = p.stat().st_size
    with open(p, "rb") as fh:
        head = fh.read(16)
    if head.startswith(b"PK\x03\x04"):
        raise CheckpointError(
            f"{p}: is a zip archive (torch.save format); CycleSiam checkpoints are safetensors and "
            "pickled files are never loaded (unpickling can run arbitrary code)"
        )
    # a pickle starts with 0x80; so does a safetensors file whose header length's low byte is 0x80 (its
    # ninth byte is then the header's "{"): one model file in 256 was refused as a pickle before
    pickle_magic = head[:1] == b"\x80" and head[8:9] != b"{"
    if pickle_magic or p.suffix in (".pth", ".pt", ".pkl", ".pickle", ".ckpt"):
        raise CheckpointError(
            f"{p}: looks like a pickle / torch.save file; CycleSiam checkpoints are .safetensors and "
            "pickled files are never loaded (unpickling can run arbitrary code)"
        )
    if size < 8:
        raise CheckpointError(f"{p}: truncated or not a safetensors file ({size} bytes)")
    (header_len,) = struct.unpack("<Q", head[:8])
    if header_len > _MAX_HEADER or 8 + header_len > size or head[8:9] != b"{":
        raise CheckpointError(
            f"{p}: not a safetensors file or truncated (header length {header_len}, file size {size} bytes)"
        )


def _read_safetensors(p: Path) -> tuple[dict[str, str], dict[str, torch.Tensor]]:
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt", device="cpu") as fh:
            meta = fh.metadata() or {}
            state = {key: fh.get_tensor(key) for key in fh.keys()}
    except Exception as exc:  # safetensors raises SafetensorError / OSError / ValueError
        raise CheckpointError(f"{p}: corrupt or truncated safetensors file: {exc}") from exc
    return meta, state


def _parse_metadata(raw: Mapping[str, str], p: Path) -> tuple[dict[str, Any], ModelConfig]:
    if raw.get("format") != FORMAT_NAME:
        raise CheckpointError(
            f"{p}: a safetensors file but not a CycleSiam checkpoint (metadata 'format' is "
            f"{raw.get('format')!r}, expected {FORMAT_NAME!r}); missing keys: "
            f"{sorted({'format', 'format_version', 'model_config'} - set(raw))}"
        )
    for key in ("format_version", "model_config"):
        if key not in raw:
            raise CheckpointError(f"{p}: checkpoint metadata lacks '{key}'")
    try:
        version = int(raw["format_version"])
    except ValueError as exc:
        raise CheckpointError(f"{p}: bad format_version {raw['format_version']!r}") from exc
    if version > FORMAT_VERSION:
        raise CheckpointError(f"{p}: checkpoint format {version} is newer than this cyclesiam supports ({FORMAT_VERSION})")
    try:
        cfg_dict = json.loads(raw["model_config"])
        cfg = from_dict(ModelConfig, cfg_dict, "model")
        provenance = json.loads(raw.get("provenance", "{}"))
    except (json.JSONDecodeError, ConfigError, TypeError) as exc:
        raise CheckpointError(f"{p}: invalid model config in metadata: {exc}") from exc
    metadata = {
        "format_version": version,
        "cyclesiam_version": raw.get("cyclesiam_version", ""),
        "torch_version": raw.get("torch_version", ""),
        "created": raw.get("created", ""),
        "provenance": provenance,
        "model_config": cfg_dict,
    }
    return metadata, cfg


# Largest widths of a model built on the CPU for its shapes (the shipped ones are 64 / 64 / 256 / 63 / 5);
# a checkpoint that claims more is checked on the meta device: no memory, whatever it claims.
_CPU_CHECK_LIMITS = {"channels": 1024, "head_channels": 1024, "mask_hidden": 2048, "mask_size": 127}
_CPU_CHECK_MAX_ANCHORS = 64


def expected_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Parameter/buffer shapes of the model `cfg` describes. A model of plausible size is built on
    the CPU and dropped (0.03 s for mobilenet_v2): on the meta device the first decomposed op
    imports torch._dynamo, 1.5-2.5 s at every model load. Larger claims go to the meta device."""
    from cyclesiam.models.builder import build_model

    plausible = all(getattr(cfg, k) <= v for k, v in _CPU_CHECK_LIMITS.items()) and \
        cfg.anchor.num_anchors <= _CPU_CHECK_MAX_ANCHORS
    with torch.device("cpu" if plausible else "meta"):
        model = build_model(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def _check_against_config(state: Mapping[str, torch.Tensor], cfg: ModelConfig, p: Path, what: str) -> None:
    try:
        shapes = expected_shapes(cfg)
    except (ConfigError, ValueError) as exc:
        raise CheckpointError(f"{p}: model config cannot be built: {exc}") from exc
    missing = sorted(set(shapes) - set(state))
    unexpected = sorted(set(state) - set(shapes))
    wrong = [f"{k}: {tuple(state[k].shape)} vs {shapes[k]}" for k in shapes if k in state and tuple(state[k].shape) != shapes[k]]
    if missing or unexpected or wrong:
        raise CheckpointError(
            f"{p}: {what} does not match its model config (backbone {cfg.backbone}, channels {cfg.channels}): "
            f"{len(missing)} missing key(s) {_head(missing)}; {len(unexpected)} unexpected key(s) {_head(unexpected)}; "
            f"{len(wrong)} shape mismatch(es) (file vs config) {_head(wrong)}"
            + (" (a BN-folded inference model cannot be saved; save the training model)" if what == "model to save" and unexpected else "")
        )


def _head(items: list[str], n: int = 5) -> str:
    return "[" + ", ".join(items[:n]) + (", ..." if len(items) > n else "") + "]"
