"""Template update stage (tracker.template_update): which targets learn from this frame and how
their search kernel follows. The template similarity always compares with the first template."""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from cyclesiam.config import TrackerConfig
from cyclesiam.tracking.state import TrackState
from cyclesiam.tracking.target import Target


class KeepFirst:
    """"none" (SiamRPN): the first template stays the kernel."""

    def select(self, cfg: TrackerConfig, targets: list[Target]) -> list[Target]:
        return []

    def running(self, cfg: TrackerConfig, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        return old


class EveryFrame(KeepFirst):
    """"last": every frame's template from the last prediction (the paper's wording)."""

    def select(self, cfg: TrackerConfig, targets: list[Target]) -> list[Target]:
        return targets

    def running(self, cfg: TrackerConfig, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        return new


class ConfidentBlend(KeepFirst):
    """"blend": a running average (rate template_update_rate), only over frames scoring at least
    template_update_min_score."""

    def select(self, cfg: TrackerConfig, targets: list[Target]) -> list[Target]:
        return [t for t in targets if t.score >= cfg.template_update_min_score]

    def running(self, cfg: TrackerConfig, old: torch.Tensor, new: torch.Tensor) -> torch.Tensor:
        return (1.0 - cfg.template_update_rate) * old + cfg.template_update_rate * new


TEMPLATE_UPDATERS: dict[str, type[KeepFirst]] = {"none": KeepFirst, "last": EveryFrame, "blend": ConfidentBlend}


def update_templates(cfg: TrackerConfig, moved: list[Target],
                     embed: Callable[[np.ndarray, np.ndarray], torch.Tensor]) -> None:
    """Update the kernels of the targets that moved this frame (never from a frame they are LOST in);
    `embed(centres, sizes)` -> template features. The kernel is template_update_anchor x first +
    (1 - anchor) x the updated template."""
    updater = TEMPLATE_UPDATERS[cfg.template_update]()
    chosen = updater.select(cfg, [t for t in moved if t.state != TrackState.LOST])
    if not chosen:
        return
    zf = embed(np.stack([t.center for t in chosen]), np.stack([t.size for t in chosen]))
    anchor = cfg.template_update_anchor
    for t, new in zip(chosen, zf):
        t.running = updater.running(cfg, t.reference if t.running is None else t.running, new)
        t.zf = t.running if anchor == 0.0 else anchor * t.reference + (1.0 - anchor) * t.running
