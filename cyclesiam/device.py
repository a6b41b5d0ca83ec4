"""Device selection: `auto` | `cpu` | `cuda` | `cuda:N`."""

from __future__ import annotations

import importlib.util

import torch


class DeviceError(RuntimeError):
    """The requested device does not exist on this machine."""


def resolve_device(name: str = "auto") -> torch.device:
    """The torch device for a config string; a clear error when CUDA is asked for but absent."""
    name = (name or "auto").strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda" or name.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise DeviceError(f"device '{name}' requested but CUDA is not available (torch {torch.__version__})")
        device = torch.device(name)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device '{name}' requested but only {torch.cuda.device_count()} CUDA device(s) exist")
        return device
    raise ValueError(f"unknown device '{name}': use auto, cpu, cuda or cuda:N")


def use_half(device: torch.device, half: bool) -> bool:
    """Half precision only where it is supported and asked for (CUDA)."""
    return bool(half) and device.type == "cuda"


def resolve_backend(name: str, device: torch.device) -> str:
    """The network backend for a config string. `auto`: onnxruntime when the device is the CPU and
    onnxruntime (and onnx, for the export) is installed, which is ~1.6x faster there (README); torch
    on CUDA or without onnxruntime. Other names are returned as given (checked where they are built)."""
    name = (name or "auto").strip().lower()
    if name != "auto":
        return name
    if device.type != "cpu":
        return "torch"
    installed = all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "onnx"))
    return "onnxruntime" if installed else "torch"
