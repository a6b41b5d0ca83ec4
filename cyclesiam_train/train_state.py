"""Resumable training state in one safetensors file, never pickled.

Tensors (model weights and buffers, SGD momentum buffers, torch/CUDA RNG states) are safetensors
tensors; everything else (step, config, Python/NumPy RNG states as lists, optimiser hyper-parameters,
data list, loss) is JSON in the file's metadata. Writes are atomic (`write_atomically`: temporary file
+ fsync + rename), so a kill at any moment leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from cyclesiam.checkpoint import stale_temporaries, write_atomically

FORMAT = "cyclesiam-train-state/1"
STATE_FILE = "checkpoint.safetensors"


class StateError(RuntimeError):
    """A training checkpoint is missing, truncated or does not match; the message names the file."""


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Current RNG states: tensors (torch CPU, CUDA) and JSON-able lists (Python, NumPy)."""
    tensors = {"rng.torch": torch.get_rng_state().clone()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s.clone()
    py = random.getstate()
    np_state = np.random.get_state()
    meta = {"python": [py[0], list(py[1]), py[2]],
            "numpy": [np_state[0], np_state[1].tolist(), int(np_state[2]), int(np_state[3]), float(np_state[4])]}
    return tensors, meta


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    if "rng.torch" in tensors:
        torch.set_rng_state(tensors["rng.torch"].to(torch.uint8))
    if torch.cuda.is_available():
        cuda = [tensors[k].to(torch.uint8) for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    if "python" in meta:
        v, s, g = meta["python"]
        random.setstate((v, tuple(s), g))
    if "numpy" in meta:
        name, keys, pos, has_gauss, gauss = meta["numpy"]
        np.random.set_state((name, np.asarray(keys, dtype=np.uint32), pos, has_gauss, gauss))


def save_state(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, step: int,
               info: dict[str, Any], scaler_state: dict[str, Any] | None = None) -> Path:
    """Atomically write model + optimiser + step + RNG + `info` (config, data, ...) to `path`."""
    path = Path(path)
    tensors: dict[str, torch.Tensor] = {}
    for name, t in model.state_dict().items():
        tensors[f"model.{name}"] = t.detach().cpu().clone().contiguous()
    opt = optimizer.state_dict()
    for idx, st in opt["state"].items():
        for key, value in st.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{idx}.{key}"] = value.detach().cpu().clone().contiguous()
            else:
                raise StateError(f"optimizer state '{key}' is not a tensor; cannot store it without pickling")
    groups = [{k: v for k, v in g.items()} for g in opt["param_groups"]]
    rng_tensors, rng_meta = rng_state()
    tensors.update(rng_tensors)
    meta = {"format": FORMAT, "step": int(step), "param_groups": groups, "rng": rng_meta,
            "scaler": scaler_state or {}, "info": info}
    return write_atomically(path, lambda tmp: save_file(tensors, tmp, metadata={"format": FORMAT,
                                                                                "state": json.dumps(meta)}))


def remove_stale_temporaries(run_dir: str | Path) -> list[Path]:
    """Delete the half-written temporary files a killed run left in `run_dir` (never read: only
    complete files are renamed into place). Returns what was removed."""
    stale = stale_temporaries(run_dir)
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def read_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata) of a training checkpoint; clear errors for missing/foreign/truncated files."""
    path = Path(path)
    if path.is_dir():
        path = path / STATE_FILE
    if not path.is_file():
        raise StateError(f"{path}: no training checkpoint here")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:
        raise StateError(f"{path}: not a readable safetensors checkpoint ({type(exc).__name__}: {exc})") from exc
    if header.get("format") != FORMAT:
        raise StateError(f"{path}: not a cyclesiam training checkpoint (format {header.get('format')!r}, "
                         f"expected {FORMAT!r})")
    try:
        meta = json.loads(header["state"])
    except (KeyError, json.JSONDecodeError) as exc:
        raise StateError(f"{path}: checkpoint metadata is damaged: {exc}") from exc
    return tensors, meta


def load_model_state(model: torch.nn.Module, tensors: dict[str, torch.Tensor], where: str) -> None:
    """Strictly load the `model.*` tensors into `model`."""
    sd = {k[len("model."):]: v for k, v in tensors.items() if k.startswith("model.")}
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if missing or unexpected:
        raise StateError(f"{where}: checkpoint does not match the model: missing {list(missing)[:5]}, "
                         f"unexpected {list(unexpected)[:5]}")


def load_optimizer_state(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                         where: str) -> None:
    """Rebuild the optimiser state dict from tensors + JSON param groups."""
    state: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    groups = meta["param_groups"]
    current = optimizer.state_dict()["param_groups"]
    if [len(g["params"]) for g in groups] != [len(g["params"]) for g in current]:
        raise StateError(f"{where}: optimiser parameter groups do not match the model")
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError) as exc:
        raise StateError(f"{where}: optimiser state does not match: {exc}") from exc
    device = next(iter(optimizer.param_groups[0]["params"])).device
    for st in optimizer.state.values():
        for k, v in st.items():
            if isinstance(v, torch.Tensor):
                st[k] = v.to(device)
