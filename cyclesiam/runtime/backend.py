"""The network backend protocol: the only way the tracker calls the network."""

from __future__ import annotations

from typing import Protocol

import torch

BACKENDS = ("torch", "onnxruntime")


class NetworkBackend(Protocol):
    """The only place the network is called. Inputs are BGR float32 crops 0..255, NCHW (CPU)."""

    name: str  # "torch" | "onnxruntime": what runtime.backend resolved to
    has_mask: bool

    def template(self, z: torch.Tensor) -> torch.Tensor:
        """[B, 3, T, T] -> template features [B, C, t, t] (kept per target by the tracker)."""

    def track(self, zf: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """zf [B, C, t, t], x [B, 3, S, S] -> (cls [B, 2k, R, R], loc [B, 4k, R, R], feat [B, F, R, R])."""

    def track_features(self, zf: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """`track` plus the search features xf [B, C, H, W] (stride 8) the correlation read."""

    def mask(self, feat: torch.Tensor) -> torch.Tensor:
        """feat [N, F] (gathered at the chosen positions) -> mask logits [N, M*M]."""
