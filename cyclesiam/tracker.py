"""SiamTracker: multi-target Siamese box + mask tracking (SiamRPN / SiamMask inference logic).

The tracker owns everything per target (template features, centre, size, score, LOST state; see
`cyclesiam.tracking.target`); the model is state-free and called only through a `NetworkBackend`
(`cyclesiam.runtime`). Every frame, all targets that search the same crop size go through ONE
batched forward (tracking targets at `model_cfg.search_size`, held LOST targets at
`tracker_cfg.lost_search_size`), then through the stages of `cyclesiam.tracking`:

  search   crop (centred by tracker.motion: tracking/motion.py, none | velocity), forward, the SiamRPN
           decode (tracking/decode.py, shared with training), distractors
  scale    the strategy of tracker.scale_from / scale_steps: how many scales the search covers and
           where the size comes from (tracking/scale/: none | score | template)
  state    the LOST hysteresis (tracking/state.py) and the policy of tracker.lost_hold
           (tracking/lost/: report | hold); the template similarity it reads is measured once
  masks    the mask head at the chosen position of every target that moved (tracking/masks.py)
  update   tracker.template_update (tracking/template_update.py: none | last | blend)
The search runs with every kernel of tracker.template_bank (tracking/template_bank.py: none | rotations |
rotations_on_drop) and keeps each target's best.

Strategies are looked up from the config on every frame, so the config may change between frames.
Coordinates: continuous pixels (see `cyclesiam.crop`); boxes are (x, y, w, h) top-left.
"""

from __future__ import annotations

import itertools
import math
import time
from typing import Sequence

import numpy as np
import torch

from cyclesiam.config import ModelConfig, TrackerConfig, response_size, validate
from cyclesiam.crop import image_mean, to_bgr
from cyclesiam.distractors import find_distractors
from cyclesiam.mask import largest_component, rotated_box
from cyclesiam.runtime.backend import NetworkBackend
from cyclesiam.runtime.threads import torch_threads
from cyclesiam.runtime.torch_backend import TorchBackend
from cyclesiam.tracking.decode import cosine_window as hanning_window
from cyclesiam.tracking.decode import decode_response
from cyclesiam.tracking.image_bounds import clip_result, inside
from cyclesiam.tracking.lost import lost_policy
from cyclesiam.tracking.lost.report import ReportLost
from cyclesiam.tracking.masks import compute_masks
from cyclesiam.tracking.motion import motion_model
from cyclesiam.tracking.network import Network, ms_since
from cyclesiam.tracking.post import PostResult, peak_positions, postprocess
from cyclesiam.tracking.result import TrackResult, validate_box
from cyclesiam.tracking.scale import SCALE_SOURCES, scale_strategy
from cyclesiam.tracking.scale.base import ScaleStrategy
from cyclesiam.tracking.search import SearchRows, search
from cyclesiam.tracking.similarity import Appearance
from cyclesiam.tracking.state import TrackState, next_state, reads_similarity, similarity_decides
from cyclesiam.tracking.target import Target, extent
from cyclesiam.tracking.template_bank import bank_search
from cyclesiam.tracking.template_update import update_templates

TRACKING = TrackState.TRACKING
LOST = TrackState.LOST


class SiamTracker:
    """Multi-target Siamese tracker (box + optional mask), one batched forward per search size.

    `model` is a `SiameseNet` (wrapped in a `TorchBackend`) or any `NetworkBackend`.
    `cfg` (the TrackerConfig) is read every frame, so it may be changed between frames.
    After each `track()`: `timing` holds ms per stage (crop, network, post, scale, mask, template,
    total) and `last_batches` maps each search size used to the ids in that batch.
    """

    def __init__(
        self,
        model: torch.nn.Module | NetworkBackend,
        tracker_cfg: TrackerConfig,
        model_cfg: ModelConfig,
        device: torch.device | str = "cpu",
        *,
        half: bool = False,
        channels_last: bool = False,
    ) -> None:
        validate(tracker_cfg, "tracker")  # ConfigError (a ValueError) naming the key
        self.cfg = tracker_cfg
        self.model_cfg = model_cfg
        self.device = torch.device(device)
        if isinstance(model, torch.nn.Module):
            has_mask = bool(model_cfg.mask) and getattr(model, "mask_head", None) is not None
            backend: NetworkBackend = TorchBackend(model, self.device, half, channels_last, has_mask)
        else:
            backend = model
        self._net = Network(backend, model_cfg, self.device)
        self._targets: dict[str, Target] = {}
        self._ids = itertools.count(1)
        self.timing: dict[str, float] = {}  # ms of the last track() call, per stage and "total"
        self.last_batches: dict[int, list[str]] = {}  # search size -> target ids, last track() call
        self.torch_threads = 0  # > 0: torch's thread count inside add_target/track (restored after)

    @property
    def backend(self) -> NetworkBackend:
        return self._net.backend

    # ----------------------------------------------------------------- targets

    @property
    def target_ids(self) -> list[str]:
        return list(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def add_target(self, image: np.ndarray, bbox: Sequence[float], target_id: str | None = None,
                   mask: np.ndarray | None = None) -> str:
        """Start (or replace, when `target_id` exists) a target from box (x, y, w, h) in `image`.

        The box is validated (finite, positive, at least partly inside; clipped to the image).
        An optional initial mask (HxW, nonzero = target) gives the first polygon and mask.
        """
        with torch_threads(self.torch_threads):
            return self._add_target(image, bbox, target_id, mask)

    def _add_target(
        self,
        image: np.ndarray,
        bbox: Sequence[float],
        target_id: str | None = None,
        mask: np.ndarray | None = None,
    ) -> str:
        bgr = to_bgr(image)
        x, y, w, h = validate_box(bbox, bgr.shape)
        center = np.array([x + w / 2, y + h / 2], dtype=np.float64)
        size = np.array([w, h], dtype=np.float64)
        init_mask, polygon = self._initial_mask(mask, bgr.shape)
        crop = self._net.template_crops(bgr, center[None], size[None], self.cfg.context_amount)
        zf = self._net.backend.template(crop).clone()[0]
        tid = str(target_id) if target_id not in (None, "") else self._next_id()
        target = Target(id=tid, center=center, size=size, zf=zf, reference=zf, polygon=polygon, mask=init_mask,
                        template_crop=crop[0].clone())
        lost = lost_policy(self.cfg)
        target.scale_bias = scale_strategy(self.cfg).on_add(
            target, lambda factors: self._search(bgr, image_mean(bgr), self.model_cfg.search_size, [target], factors,
                                                 lost, {}))
        self._targets[tid] = target
        return tid

    def remove_target(self, target_id: str) -> bool:
        """Forget one target; False when it did not exist."""
        return self._targets.pop(str(target_id), None) is not None

    def clear(self) -> None:
        self._targets.clear()

    def set_box(self, target_id: str, bbox: Sequence[float]) -> None:
        """Move a target's search state to `bbox` (x, y, w, h, pixels), keeping its template: for
        diagnostics that start each frame from a known box (probes/center_precision.py)."""
        target = self._target(target_id)
        x, y, w, h = (float(v) for v in bbox)
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
            raise ValueError(f"set_box: box must be finite with positive size, got {tuple(bbox)}")
        target.center, target.size = np.array([x + w / 2, y + h / 2]), np.array([w, h])
        target.distractors, target.velocity = np.empty((0, 2)), np.zeros(2)

    def result(self, target_id: str) -> TrackResult:
        """The current state of one target (after `add_target`: the given box)."""
        return self._target(target_id).result()

    def _target(self, target_id: str) -> Target:
        try:
            return self._targets[str(target_id)]
        except KeyError:
            raise KeyError(f"no target '{target_id}'; targets: {self.target_ids}") from None

    def _next_id(self) -> str:
        while True:
            tid = str(next(self._ids))
            if tid not in self._targets:
                return tid

    @staticmethod
    def _initial_mask(mask: np.ndarray | None, shape: Sequence[int]) -> tuple[np.ndarray | None, np.ndarray | None]:
        if mask is None:
            return None, None
        mask = np.asarray(mask)
        if mask.shape[:2] != tuple(shape[:2]) or (mask.ndim == 3 and mask.shape[2] != 1) or mask.ndim > 3:
            raise ValueError(f"initial mask shape {mask.shape} does not match the image {tuple(shape[:2])}")
        binary = largest_component(mask.reshape(shape[:2]) > 0)
        poly = rotated_box(binary)
        if poly is None:
            return None, None
        return binary, poly

    def replace_network(self, backend: NetworkBackend, model_cfg: ModelConfig,
                        templates: dict[str, torch.Tensor]) -> None:
        """Track with `backend` from the next frame on; `templates` maps every target id to its template
        features from that backend (`tracking/network_swap.py`). Ids, states and boxes are kept; each
        target's search kernel restarts from its first template (a template update starts over)."""
        missing = sorted(set(self._targets) - set(templates))
        if missing:
            raise ValueError(f"replace_network: no new template for target(s) {missing}")
        self._net = Network(backend, model_cfg, self.device)
        self.model_cfg = model_cfg
        for tid, target in self._targets.items():
            target.zf = target.reference = templates[tid]
            target.running, target.bank = None, None

    def template_crops(self) -> dict[str, torch.Tensor | None]:
        """Each target's kept template crop [3, T, T] (None for a target added without one)."""
        return {tid: t.template_crop for tid, t in self._targets.items()}

    # ----------------------------------------------------------------- per frame

    def track(self, image: np.ndarray, want_masks: bool | None = None) -> list[TrackResult]:
        """Track every target in `image` (BGR/grey uint8); results in insertion order. Masks are
        computed when `want_masks` (None: the config's mask_enabled) and the model has a mask head."""
        with torch_threads(self.torch_threads):
            return self._track(image, want_masks)

    def _track(self, image: np.ndarray, want_masks: bool | None) -> list[TrackResult]:
        t_start = time.perf_counter()
        timing = {"crop": 0.0, "network": 0.0, "post": 0.0, "mask": 0.0, "template": 0.0}
        bgr = to_bgr(image)
        targets = list(self._targets.values())
        self.last_batches = {}
        if targets:
            masks = self.cfg.mask_enabled if want_masks is None else bool(want_masks)
            lost, scale = lost_policy(self.cfg), scale_strategy(self.cfg)
            pad = image_mean(bgr)
            groups: dict[int, list[Target]] = {}
            for t in targets:
                groups.setdefault(lost.search_size(t, self.model_cfg), []).append(t)
            self.last_batches = {size: [t.id for t in members] for size, members in groups.items()}
            moved: list[Target] = []
            for search_size, members in groups.items():
                moved += self._track_group(bgr, pad, search_size, members, lost, scale, masks, timing)
            t0 = time.perf_counter()
            update_templates(self.cfg, moved, lambda centers, sizes: self._templates(bgr, centers, sizes, pad))
            timing["template"] = ms_since(t0)
        timing["total"] = ms_since(t_start)
        self.timing = timing
        if self.cfg.box_in_image != "report":
            return [t.result() for t in targets]
        return [clip_result(t.result(), bgr.shape, self.cfg.min_size, t.polygon is None) for t in targets]

    def _track_group(self, bgr: np.ndarray, pad: tuple[float, ...], search_size: int, members: list[Target],
                     lost: ReportLost, scale: ScaleStrategy, masks: bool, timing: dict[str, float]) -> list[Target]:
        """The stages for targets sharing a search size; returns the targets that moved."""
        cfg = self.cfg
        all_held = all(lost.held(t) for t in members)
        factors = scale.search_factors(all_held)
        found = self._search(bgr, pad, search_size, members, factors, lost, timing)
        t0 = time.perf_counter()
        found = scale.from_search(found, factors, members, bgr.shape)
        timing["post"] += ms_since(t0)
        post = found.post

        appearance = Appearance(self._net, cfg, bgr, members, post.center, timing, pad)
        if similarity_decides(cfg):
            rows = [b for b, t in enumerate(members)
                    if not scale.similarity_on_demand or reads_similarity(t.state, float(post.score[b]), cfg)]
            if rows:
                appearance.measure(rows, scale.similarity_factors(all_held))
        for b, t in enumerate(members):
            t.state, t.low_count = next_state(t.state, t.low_count, float(post.score[b]), cfg, appearance.best(b))
        moving = [b for b, t in enumerate(members) if not lost.held(t)]  # a held box stays; searched wider next
        sizes = scale.settle(found, appearance, members, moving, bgr.shape) if moving else None

        t0 = time.perf_counter()
        for b, t in enumerate(members):
            t.score, t.similarity = float(post.score[b]), appearance.best(b)
            t.frames += 1
            t.polygon, t.mask, t.distractors = None, None, np.empty((0, 2))
        previous = [t.center for t in members]
        for n, b in enumerate(moving):
            t = members[b]
            t.center, t.size = post.center[b].copy(), (post.size[b] if sizes is None else sizes[n]).copy()
            if cfg.box_in_image == "state":
                t.center, t.size = inside(t.center, t.size, bgr.shape, cfg.min_size)
            if cfg.distractor_penalty > 0:  # measured in the size the search gave
                t.distractors = find_distractors(found.scores[b], found.resp.anchors_np, found.resp.score_size,
                                                 found.centers[b], float(found.scale_z[b]), t.center,
                                                 extent(post.size[b]), cfg.distractor_score, cfg.distractor_distance)
        motion = motion_model(cfg)
        for t, before in zip(members, previous):  # held targets too: a LOST one's velocity is reset
            motion.update(t, before)
        timing["post"] += ms_since(t0)

        if moving and masks and self.backend.has_mask:
            t0 = time.perf_counter()
            compute_masks(self._net, cfg, bgr, members, moving, found)
            timing["mask"] += ms_since(t0)
        return [members[b] for b in moving]

    def _search(self, bgr: np.ndarray, pad: tuple[float, ...], search_size: int, members: list[Target],
                factors: np.ndarray, lost: ReportLost, timing: dict[str, float]) -> SearchRows:
        def run(rows: list[Target]) -> SearchRows:
            window_influence = np.array([lost.window_influence(t) for t in rows])
            return search(self._net, self.cfg, bgr, pad, search_size, rows, factors, window_influence, timing,
                          scale_strategy(self.cfg).search_features)

        return bank_search(self.cfg, members, len(factors), self._net.backend.template, run)

    def _templates(self, bgr: np.ndarray, centers: np.ndarray, sizes: np.ndarray,
                   pad: tuple[float, ...] | None = None) -> torch.Tensor:
        return self._net.templates(bgr, centers, sizes, self.cfg.context_amount, pad)


__all__ = [
    "LOST",
    "SCALE_SOURCES",
    "TRACKING",
    "NetworkBackend",
    "PostResult",
    "SiamTracker",
    "TorchBackend",
    "TrackResult",
    "TrackState",
    "decode_response",
    "hanning_window",
    "next_state",
    "peak_positions",
    "postprocess",
    "response_size",
    "validate_box",
]
