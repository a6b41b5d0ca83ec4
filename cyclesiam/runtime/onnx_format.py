"""The CycleSiam ONNX file format: one .onnx file per network part, with metadata_props.

Parts (all inputs BGR float32 crops in 0..255, NCHW):

  template.onnx  z [B,3,T,T]                  -> zf [B,C,t,t]
  track.onnx     zf [B,C,t,t], x [B,3,S,S]    -> cls [B,2k,R,R], loc [B,4k,R,R], feat [B,F,R,R],
                                                 xf [B,C,S/8,S/8] (the search features, format 2)
  mask.onnx      feat [N,F]                   -> logits [N,M*M]        (only when the model has one)

B (number of targets), N and S (search size: 255 normally, `lost_search_size` while
lost) are dynamic. Every file carries metadata_props: format, format_version, part,
model_config (JSON), cyclesiam_version, checkpoint_sha256, input_format, opset, torch_version.
`OnnxBackend` refuses files whose metadata is missing or does not match what it is asked to run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping

from cyclesiam.config import ModelConfig, to_dict

FORMAT_NAME = "cyclesiam-onnx"
FORMAT_VERSION = 2  # 2: the track part also outputs xf, the search features (pooled scale)
DEFAULT_OPSET = 17
PARTS = ("template", "track", "mask")
INPUT_FORMAT = "BGR float32 0..255 NCHW (ImageNet normalisation inside the model)"


class OnnxError(RuntimeError):
    """An ONNX file cannot be exported or used; the message names the file and the problem."""


def model_config_json(model_cfg: ModelConfig) -> str:
    return json.dumps(to_dict(model_cfg), sort_keys=True)


def parts_of(model_cfg: ModelConfig) -> list[str]:
    """The parts an export of this model has."""
    return list(PARTS) if model_cfg.mask else ["template", "track"]


# ModelProto.metadata_props and StringStringEntryProto's key / value (onnx.proto field numbers)
_METADATA_PROPS, _KEY, _VALUE = 14, 1, 2


def read_metadata(path: str | Path) -> dict[str, str]:
    """metadata_props of an ONNX file, read with protobuf's wire-format parser and onnx.proto's field
    numbers: `import onnx` alone costs ~0.8 s (ml_dtypes), at every start of a tracker on
    onnxruntime, and only these strings are needed here. The weights are not validated."""
    from google.protobuf import empty_pb2
    from google.protobuf.message import DecodeError

    p = _check_file(Path(path))
    try:
        from google.protobuf.unknown_fields import UnknownFieldSet
    except ImportError:  # protobuf older than the declared 4.24: the onnx package's reader, slower
        return _read_metadata_with_onnx(p)
    try:
        model = empty_pb2.Empty.FromString(p.read_bytes())
        meta = {}
        for prop in UnknownFieldSet(model):
            if prop.field_number == _METADATA_PROPS and isinstance(prop.data, bytes):
                entry = {f.field_number: f.data for f in UnknownFieldSet(empty_pb2.Empty.FromString(prop.data))}
                key, value = entry.get(_KEY, b""), entry.get(_VALUE, b"")
                if not isinstance(key, bytes) or not isinstance(value, bytes):
                    raise DecodeError("a metadata entry's key or value is not a string field")
                meta[key.decode()] = value.decode()
    except (DecodeError, UnicodeDecodeError) as exc:
        raise OnnxError(f"{p}: not a valid ONNX file (corrupt or truncated): {exc}") from exc
    return meta


def _read_metadata_with_onnx(p: Path) -> dict[str, str]:
    import onnx

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
    if model_cfg is not None and canonical(meta.get("model_config", "")) != canonical(model_config_json(model_cfg)):
        raise OnnxError(
            f"{path}: model config in the ONNX metadata does not match the checkpoint's: "
            f"{_config_diff(meta.get('model_config', ''), model_cfg)}"
        )
    if sha256 is not None and meta.get("checkpoint_sha256") != sha256:
        raise OnnxError(
            f"{path}: exported from checkpoint sha256 {meta.get('checkpoint_sha256')!r}, expected {sha256!r}"
        )


def canonical(text: str) -> str:
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

