"""Swapping a running tracker's network for another checkpoint, targets kept.

Two steps, so the slow one runs beside the running tracker and the fast one between two frames:

  prepare_network  (slow, any thread, no lock): the checkpoint checked and loaded, the backend built,
                   a test forward, every target's template re-created from the template crop the
                   tracker kept when the target was set
  swap_in          (fast, under the caller's lock, between two `track` calls): targets set or
                   replaced since `prepare_network` get their template now; then the tracker
                   switches network and templates at once

A file that is missing, corrupt, not a CycleSiam checkpoint, of another template size, or whose
network gives wrong shapes or non-finite outputs raises ModelSwapError; the tracker is untouched.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from cyclesiam.config import ModelConfig, response_size
from cyclesiam.runtime.backend import NetworkBackend

if TYPE_CHECKING:
    from cyclesiam.config import Config
    from cyclesiam.tracker import SiamTracker


class ModelSwapError(RuntimeError):
    """The checkpoint cannot replace the running network; the message says why."""


@dataclass
class NewNetwork:
    """A network ready to be swapped in (the result of `prepare_network`)."""

    checkpoint: Path
    identity: str  # model_identity(checkpoint)
    backend: NetworkBackend
    model_cfg: ModelConfig
    crops: dict[str, torch.Tensor]  # the template crops the templates were made from, per target id
    templates: dict[str, torch.Tensor]  # target id -> [C, t, t] from `backend`


def model_identity(path: str | Path) -> str:
    """`<file name>@<first 12 hex digits of its sha256>`: which model produced a result."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return f"{Path(path).name}@{digest.hexdigest()[:12]}"


def prepare_network(cfg: "Config", checkpoint: str | Path, running_cfg: ModelConfig,
                    crops: dict[str, torch.Tensor | None]) -> NewNetwork:
    """Load and check `checkpoint` with the runtime of `cfg` and make the templates of `crops`
    (`SiamTracker.template_crops()`, read under the caller's lock); ModelSwapError when it cannot be used."""
    from cyclesiam.build import make_backend
    from cyclesiam.checkpoint import CheckpointError, load_model

    path = Path(checkpoint)
    try:
        identity = model_identity(path)
        model, model_cfg, _meta = load_model(path)
    except (CheckpointError, OSError) as exc:
        raise ModelSwapError(str(exc)) from None
    if model_cfg.template_size != running_cfg.template_size:
        raise ModelSwapError(f"{path}: template size {model_cfg.template_size} differs from the running model's "
                             f"{running_cfg.template_size}; the kept template crops do not fit it (restart the node "
                             "with this checkpoint instead)")
    try:
        backend = make_backend(cfg, model, model_cfg, path)
    except Exception as exc:  # an export or a device failure: the running model stays
        raise ModelSwapError(f"{path}: building the {cfg.runtime.backend} backend failed: {exc!r}") from None
    check_forward(backend, model_cfg, path)
    kept = {tid: crop for tid, crop in crops.items() if crop is not None}
    return NewNetwork(path, identity, backend, model_cfg, kept, templates_for(backend, kept))


def check_forward(backend: NetworkBackend, model_cfg: ModelConfig, path: Path | str = "") -> None:
    """One template, track and mask forward on fixed noise: the shapes of the model contract and
    finite values, else ModelSwapError."""
    gen = torch.Generator().manual_seed(0)
    t, s = model_cfg.template_size, model_cfg.search_size
    z = torch.rand((1, 3, t, t), generator=gen) * 255.0
    x = torch.rand((1, 3, s, s), generator=gen) * 255.0
    k, r = model_cfg.anchor.num_anchors, response_size(model_cfg, s)
    try:
        zf = backend.template(z)
        cls, loc, feat = backend.track(zf, x)
        outputs = {"template": zf, "score": cls, "box": loc}
        if backend.has_mask:
            outputs["mask"] = backend.mask(feat.flatten(2)[:, :, (r * r) // 2])
    except Exception as exc:
        raise ModelSwapError(f"{path}: test forward failed: {exc!r}") from None
    expected = {"score": (1, 2 * k, r, r), "box": (1, 4 * k, r, r)}
    for name, shape in expected.items():
        if tuple(outputs[name].shape) != shape:
            raise ModelSwapError(f"{path}: {name} output has shape {tuple(outputs[name].shape)}, expected {shape}")
    bad = [name for name, value in outputs.items() if not bool(torch.isfinite(value.float()).all())]
    if bad:
        raise ModelSwapError(f"{path}: non-finite values in the test forward's {bad} output(s)")


def templates_for(backend: NetworkBackend, crops: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Template features from `backend` of each target's kept crop (one batched forward)."""
    if not crops:
        return {}
    ids = list(crops)
    zf = backend.template(torch.stack([crops[tid] for tid in ids])).clone()
    return {tid: zf[i] for i, tid in enumerate(ids)}


def swap_in(tracker: "SiamTracker", new: NewNetwork) -> None:
    """Switch `tracker` to `new` (call under the lock that guards `track`): targets set or replaced
    after `prepare_network` read the crops get their template from the new network now."""
    current = tracker.template_crops()
    late = {tid: crop for tid, crop in current.items() if crop is not None and new.crops.get(tid) is not crop}
    templates = {tid: new.templates[tid] for tid in current if tid in new.templates and tid not in late}
    templates.update(templates_for(new.backend, late))
    tracker.replace_network(new.backend, new.model_cfg, templates)


__all__ = ["ModelSwapError", "NewNetwork", "check_forward", "model_identity", "prepare_network", "swap_in",
           "templates_for"]
