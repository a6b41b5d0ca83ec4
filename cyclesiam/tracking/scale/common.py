"""What every scale strategy shares: the scale factors, one search row per (target, scale), the
scale penalty, moving a size towards a picked scale, and the template similarity."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from cyclesiam.config import TrackerConfig
from cyclesiam.tracking.post import clip_size


def scale_factors(cfg: TrackerConfig) -> np.ndarray:
    """Search scales relative to the current size: scale_step^i, i in -(n//2)..n//2 (n odd; 1.0 when n = 1)."""
    n = int(cfg.scale_steps)
    return cfg.scale_step ** (np.arange(n) - n // 2).astype(np.float64)


def scale_rows(centers: np.ndarray, sizes: np.ndarray, factors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres and sizes [B, 2] -> one row per (target, scale), target-major: (centres [B*S, 2],
    sizes x factors [B*S, 2])."""
    n = len(factors)
    return np.repeat(centers, n, axis=0), np.repeat(sizes, n, axis=0) * np.tile(factors, len(sizes))[:, None]


def scale_penalties(factors: np.ndarray, cfg: TrackerConfig) -> np.ndarray:
    """Factor on each scale's score or similarity: 1 at factor 1, cfg.scale_penalty elsewhere -> [S]."""
    return np.where(factors == 1.0, 1.0, cfg.scale_penalty)


def move_sizes(sizes: np.ndarray, picked: np.ndarray, lr: np.ndarray, cfg: TrackerConfig,
               image_shape: Sequence[int]) -> np.ndarray:
    """Sizes [B, 2] moved towards sizes x picked factor [B] by the smoothing weight lr [B], clipped."""
    scaled = sizes * picked[:, None]
    return clip_size(sizes * (1.0 - lr[:, None]) + scaled * lr[:, None], cfg, image_shape)


def template_similarity(candidates: torch.Tensor, reference: torch.Tensor) -> np.ndarray:
    """Cosine similarity of each target's candidate features to its reference features:
    candidates [B, S, ...], reference [B, ...] -> [B, S] (NaN where a vector is all zeros)."""
    cand = candidates.flatten(2).double()
    ref = reference.flatten(1).double().to(cand.device)
    dots = torch.einsum("bsf,bf->bs", cand, ref)
    norms = cand.norm(dim=2) * ref.norm(dim=1)[:, None]
    return (dots / norms).cpu().numpy()


def best_similarity(similarity: np.ndarray) -> np.ndarray:
    """Each row's best similarity over its scales [B, S] -> [B] (NaN where none is finite)."""
    finite = np.isfinite(similarity)
    return np.where(finite.any(axis=1), np.where(finite, similarity, -np.inf).max(axis=1), math.nan)
