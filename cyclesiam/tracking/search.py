"""Search stage: crop, forward and decode every target of a batch at its size x each scale factor,
one row per (target, scale), target-major, without changing any state. The crop is centred where
the motion model (tracker.motion) expects the target. The distractor memory
(tracker.distractor_*) damps the candidates near each target's remembered distractors here."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from cyclesiam.config import TrackerConfig
from cyclesiam.crop import template_crop_sizes
from cyclesiam.distractors import distractor_factors
from cyclesiam.tracking.decode import decode_response
from cyclesiam.tracking.motion import motion_model
from cyclesiam.tracking.network import Network, Response, ms_since
from cyclesiam.tracking.post import PostResult, postprocess
from cyclesiam.tracking.scale.common import scale_rows
from cyclesiam.tracking.target import Target


@dataclass
class SearchRows:
    """Decoded search rows and what the later stages need of them."""

    post: PostResult
    scores: np.ndarray  # [rows, N] raw foreground scores
    centers: np.ndarray  # [rows, 2] crop centres, image pixels
    scale_z: np.ndarray  # [rows] crop pixels per image pixel
    feat: torch.Tensor  # [rows, F, R, R]
    resp: Response
    xf: torch.Tensor | None = None  # [rows, C, H, W] search features (only when asked for)
    search_size: int = 0  # crop side, network pixels

    def take(self, rows: np.ndarray) -> "SearchRows":
        """Only the given rows."""
        return SearchRows(post=self.post.take(rows), scores=self.scores[rows], centers=self.centers[rows],
                          scale_z=self.scale_z[rows], feat=self.feat[torch.as_tensor(rows, device=self.feat.device)],
                          resp=self.resp, search_size=self.search_size,
                          xf=None if self.xf is None else self.xf[torch.as_tensor(rows, device=self.xf.device)])


def search(net: Network, cfg: TrackerConfig, bgr: np.ndarray, pad: tuple[float, ...], search_size: int,
           members: list[Target], factors: np.ndarray, window_influence: np.ndarray,
           timing: dict[str, float], features: bool = False) -> SearchRows:
    """Every target (window_influence [B] each) at its size x each of `factors` [S] -> B*S rows
    (with the search features xf when `features`)."""
    n_scales = len(factors)
    motion = motion_model(cfg)
    centers, sizes = scale_rows(np.stack([motion.search_center(t) for t in members]),
                                np.stack([t.size for t in members]), factors)
    s_z = template_crop_sizes(sizes, cfg.context_amount)
    scale_z = net.model_cfg.template_size / s_z
    zf = torch.stack([t.zf for t in members])
    if n_scales > 1:
        zf = zf.repeat_interleave(n_scales, dim=0)
    cls, loc, feat, *xf = net.track(bgr, pad, centers, s_z * search_size / net.model_cfg.template_size, search_size,
                                    zf, timing, features)
    resp = net.response(cls.shape[-1])
    t0 = time.perf_counter()
    scores_t, boxes_t = decode_response(cls, loc, resp.anchors)
    scores, boxes = scores_t.cpu().numpy(), boxes_t.cpu().numpy()
    post = postprocess(scores, boxes, centers, sizes, scale_z, resp.window, np.repeat(window_influence, n_scales),
                       cfg, bgr.shape, resp.anchors_np, resp.score_size,
                       _distractor_factors(cfg, members, n_scales, centers, scale_z, resp))
    timing["post"] = timing.get("post", 0.0) + ms_since(t0)
    return SearchRows(post=post, scores=scores, centers=centers, scale_z=scale_z, feat=feat, resp=resp,
                      xf=xf[0] if xf else None, search_size=search_size)


def _distractor_factors(cfg: TrackerConfig, members: list[Target], n_scales: int, centers: np.ndarray,
                        scale_z: np.ndarray, resp: Response) -> np.ndarray | None:
    """Score factors [rows, N] damping the candidates near each target's remembered distractors
    (None when the memory is off or no target remembers one)."""
    if cfg.distractor_penalty <= 0 or all(len(t.distractors) == 0 for t in members):
        return None
    radii = np.repeat([cfg.distractor_radius * t.extent for t in members], n_scales)
    points = [t.distractors for t in members for _ in range(n_scales)]
    return distractor_factors(resp.anchors_np, resp.score_size, centers, scale_z, points, radii, cfg.distractor_penalty)
