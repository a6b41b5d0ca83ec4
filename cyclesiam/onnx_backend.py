"""Backwards-compatible names: the ONNX code lives in `cyclesiam.runtime` (format, export, cache,
session, check) and the backend factory in `cyclesiam.build`. New code imports from there."""

from __future__ import annotations

from cyclesiam.build import make_backend
from cyclesiam.runtime.backend import BACKENDS
from cyclesiam.runtime.onnx_cache import (CACHE_DIR_NAME, CachedExport, cache_dirs, ensure_exported, file_sha256,
                                          user_cache_root)
from cyclesiam.runtime.onnx_check import (CHECK_ATOL, CHECK_RTOL, CheckRow, check_on_frames, compare_with_torch,
                                          real_crops, torch_reference, within_tolerance)
from cyclesiam.runtime.onnx_export import EXPORT_XCORR, dynamic_conv_weights, export_model, export_ready_copy
from cyclesiam.runtime.onnx_format import (DEFAULT_OPSET, FORMAT_NAME, FORMAT_VERSION, PARTS, OnnxError,
                                           check_metadata, read_metadata)
from cyclesiam.runtime.onnx_session import OnnxBackend, select_providers

__all__ = [
    "BACKENDS", "CACHE_DIR_NAME", "CHECK_ATOL", "CHECK_RTOL", "DEFAULT_OPSET", "EXPORT_XCORR", "FORMAT_NAME",
    "FORMAT_VERSION", "PARTS", "CachedExport", "CheckRow", "OnnxBackend", "OnnxError", "cache_dirs",
    "check_metadata", "check_on_frames", "compare_with_torch", "dynamic_conv_weights", "ensure_exported",
    "export_model", "export_ready_copy", "file_sha256", "make_backend", "read_metadata", "real_crops",
    "select_providers", "torch_reference", "user_cache_root", "within_tolerance",
]
