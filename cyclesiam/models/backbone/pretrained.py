"""Loading ImageNet/user weights into a backbone without ever unpickling arbitrary objects.

Accepted: `.safetensors`, and torchvision-style `.pth`/`.pt` state dicts read only with
`torch.load(weights_only=True)` (the restricted unpickler: tensors and plain containers).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import torch
from torch import nn


class PretrainedError(RuntimeError):
    """A weights file cannot be used; the message names the file and the problem."""


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of a `.safetensors` or (restricted-loaded) torch state-dict file."""
    p = Path(path)
    if not p.is_file():
        raise PretrainedError(f"backbone weights file not found: {p}")
    if p.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(p), device="cpu")
        except (SafetensorError, OSError, ValueError) as exc:
            raise PretrainedError(f"{p}: not a readable safetensors file: {exc}") from exc
    try:
        obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as exc:  # the restricted unpickler raises several types
        raise PretrainedError(
            f"{p}: cannot be read as a plain tensor state dict with torch.load(weights_only=True) "
            f"(full unpickling is refused on purpose): {exc}"
        ) from exc
    return _unwrap(obj, p)


def _unwrap(obj: object, path: Path) -> dict[str, torch.Tensor]:
    # common wrappers: {"state_dict": {...}} or {"model": {...}}
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise PretrainedError(f"{path}: expected a mapping of parameter names to tensors")
    state = {str(k): v for k, v in obj.items()}
    if state and all(k.startswith("module.") for k in state):  # saved from DataParallel/DDP
        state = {k[len("module."):]: v for k, v in state.items()}
    return state


def load_pretrained(module: nn.Module, path: str | Path) -> nn.Module:
    """Load `path` into `module` strictly: every parameter/buffer of `module` must be in the
    file with the same shape; file keys that `module` does not have are only allowed under
    `module.ignored_prefixes` (the layers a truncated trunk does not build)."""
    p = Path(path)
    state = read_state_dict(p)
    own = module.state_dict()
    ignored = tuple(getattr(module, "ignored_prefixes", ()))
    missing = sorted(k for k in own if k not in state)
    unexpected = sorted(k for k in state if k not in own and not k.startswith(ignored))
    shapes = [
        f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or shapes:
        raise PretrainedError(
            f"{p} does not match backbone {type(module).__name__}: "
            f"{len(missing)} missing key(s) {_head(missing)}; {len(unexpected)} unexpected key(s) "
            f"{_head(unexpected)}; {len(shapes)} shape mismatch(es) {_head(shapes)}"
        )
    module.load_state_dict({k: state[k] for k in own}, strict=True)
    return module


def _head(items: list[str], n: int = 5) -> str:
    return "[" + ", ".join(items[:n]) + (", ..." if len(items) > n else "") + "]"
