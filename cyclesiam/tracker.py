"""SiamTracker: multi-target Siamese box + mask tracking (SiamRPN / SiamMask inference logic).

The tracker owns everything per target (template features, centre, size, score, LOST
state); the model is state-free. Every frame, all targets that search the same crop size
go through ONE batched forward (tracking targets at `model_cfg.search_size`, held lost targets
at `tracker_cfg.lost_search_size`). The network is called only through a `NetworkBackend`
(`template`, `track`, `mask`) so an ONNX Runtime backend can replace the torch one.

Post-processing (pysot SiamRPN/SiamMask), vectorised over targets and anchors:
  score   = softmax(cls)[fg]
  box     = anchor decode of loc (crop pixels, relative to the crop centre)
  penalty = exp(-(r_c * s_c - 1) * penalty_k)   (ratio and scale change vs the current box)
  pscore  = penalty * score * (1 - wi) + hanning * wi
  best    = argmax(pscore); lr = penalty * score * tracker_cfg.lr
  centre += box[best].xy / scale;  size = size * (1 - lr) + box[best].wh / scale * lr
  then clip the centre to the image and the size to [min_size, image side].
Scale (`scale_steps` > 1, the default): the size moves towards size x scale_step^i of the best
scale i, never towards the box regression's size. `scale_from: template` (default): one search,
then template-sized crops at each scale around the new centre are embedded and compared with the
target's template by cosine similarity (`template_similarity`, `pick_template_scales`).
`scale_from: score`: every target is searched at each scale and the best-scoring one wins
(`pick_scales`); with `scale_calibration`, each target's scores per scale are damped where its
own first frame showed a wrong scale outscoring the true one (`scale_bias`).
LOST: `lost_frames` low frames in a row (score below `lost_threshold` and, with
`lost_similarity` > 0, a template-sized crop at the new box unlike the template). With
`lost_hold` the box is held and searched for in a wider crop; without it (the default) the target
is tracked exactly as before and only reported LOST until it scores as itself again.
Distractor memory (`distractor_penalty` > 0, off by default): the strong peaks away from each
target are remembered for one frame and damp the candidates near them (cyclesiam/distractors.py).

Coordinates: continuous pixels (see `cyclesiam.crop`); boxes are (x, y, w, h) top-left.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch

from cyclesiam.anchors import generate_anchors
from cyclesiam.bbox import decode
from cyclesiam.config import ModelConfig, TrackerConfig, response_size
from cyclesiam.crop import CropBatch, image_mean, template_crop_sizes, to_bgr
from cyclesiam.distractors import distractor_factors, find_distractors
from cyclesiam.mask import backproject_mask, box_polygon, largest_component, rotated_box
from cyclesiam.runtime.backend import NetworkBackend
from cyclesiam.runtime.torch_backend import TorchBackend

TRACKING = "tracking"
LOST = "lost"
TEMPLATE_UPDATES = ("none", "last", "blend")
CENTER_SOURCES = ("regression", "peak")
SCALE_SOURCES = ("score", "template")


# --------------------------------------------------------------------------- results


@dataclass
class TrackResult:
    """One target in one frame. bbox = (x, y, w, h) top-left, pixels; polygon = 4 corners."""

    id: str
    bbox: tuple[float, float, float, float]
    score: float
    state: str  # "tracking" | "lost"
    polygon: list[list[float]]
    mask: np.ndarray | None = None  # uint8 HxW, 0/255; None when not computed
    # cosine similarity of the template-sized crop at the box to the template (the LOST rule's
    # second signal); NaN when this frame did not measure it
    similarity: float = math.nan


# --------------------------------------------------------------------------- pure post-processing


def hanning_window(score_size: int, num_anchors: int) -> np.ndarray:
    """Cosine window over the response map, tiled over anchors -> [k * R * R] (index a*R*R + i*R + j)."""
    h = np.hanning(score_size)
    return np.tile(np.outer(h, h).reshape(-1), num_anchors)


def decode_response(
    cls: torch.Tensor, loc: torch.Tensor, anchors: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """cls [B, 2k, R, R], loc [B, 4k, R, R], anchors [k*R*R, 4] -> (fg scores [B, N], boxes [B, N, 4] cxcywh)."""
    b = cls.shape[0]
    scores = torch.softmax(cls.reshape(b, 2, -1), dim=1)[:, 1]
    deltas = loc.reshape(b, 4, -1).transpose(1, 2)
    boxes = decode(deltas, anchors.to(deltas.dtype))
    return scores, boxes


def _change(r: np.ndarray) -> np.ndarray:
    return np.maximum(r, 1.0 / r)


def _context_size(w: np.ndarray, h: np.ndarray, context: float) -> np.ndarray:
    p = (w + h) * context
    return np.sqrt((w + p) * (h + p))


@dataclass
class PostResult:
    """Vectorised post-processing output for B targets."""

    best: np.ndarray  # [B] int, flattened anchor index of the chosen box
    score: np.ndarray  # [B] raw fg score at `best`
    center: np.ndarray  # [B, 2] new centre (image pixels)
    size: np.ndarray  # [B, 2] new (w, h) (image pixels)
    penalty: np.ndarray  # [B] penalty at `best`
    pscore: np.ndarray  # [B, N] penalised, windowed score (what argmax ran on)
    lr: np.ndarray  # [B] size smoothing weight used (cfg.lr * penalty * score; 0 for a held target)

    def best_pscore(self) -> np.ndarray:
        """The penalised, windowed score of each row's chosen anchor -> [rows]."""
        return self.pscore[np.arange(len(self.best)), self.best]

    def take(self, rows: np.ndarray) -> "PostResult":
        """The results of the given rows only."""
        return PostResult(**{k: v[rows] for k, v in vars(self).items()})


def _parabola_vertex(left: np.ndarray, mid: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Offset in [-0.5, 0.5] cells of the vertex of the parabola through three equally spaced values
    (0 where they are not concave or a neighbour is missing)."""
    curvature = left - 2.0 * mid + right
    ok = np.isfinite(left) & np.isfinite(right) & (curvature < 0)
    offset = 0.5 * (left - right) / np.where(ok, curvature, -1.0)
    return np.where(ok, np.clip(offset, -0.5, 0.5), 0.0)


def peak_positions(response: np.ndarray, best: np.ndarray, anchors: np.ndarray, score_size: int) -> np.ndarray:
    """Sub-cell position of each row's chosen cell: the vertex of a parabola through the response at
    the cell and its row / column neighbours (same anchor). response [B, N] (N = k R R, index
    a R R + i R + j), best [B], anchors [N, 4] (centres on the stride grid, crop pixels) -> [B, 2]
    crop pixels. At most half a cell from the cell's centre; none on the border of the map."""
    r = score_size
    maps = response.reshape(len(best), -1, r, r)
    a, rest = np.divmod(best, r * r)
    i, j = np.divmod(rest, r)
    rows = np.arange(len(best))

    def at(di: int, dj: int) -> np.ndarray:
        ii, jj = i + di, j + dj
        inside = (ii >= 0) & (ii < r) & (jj >= 0) & (jj < r)
        values = maps[rows, a, np.clip(ii, 0, r - 1), np.clip(jj, 0, r - 1)]
        return np.where(inside, values, -np.inf)

    stride = float(anchors[1, 0] - anchors[0, 0]) if r > 1 else 0.0
    mid = at(0, 0)
    dx = _parabola_vertex(at(0, -1), mid, at(0, 1))
    dy = _parabola_vertex(at(-1, 0), mid, at(1, 0))
    return anchors[best, :2] + stride * np.stack([dx, dy], axis=1)


def postprocess(
    scores: np.ndarray,
    boxes: np.ndarray,
    centers: np.ndarray,
    sizes: np.ndarray,
    scale_z: np.ndarray,
    window: np.ndarray,
    window_influence: np.ndarray | float,
    cfg: TrackerConfig,
    image_shape: Sequence[int],
    anchors: np.ndarray | None = None,
    score_size: int = 0,
    score_factors: np.ndarray | None = None,
) -> PostResult:
    """SiamRPN post-processing for B targets at once.

    scores [B, N]; boxes [B, N, 4] (cx, cy, w, h) in crop pixels relative to the crop centre;
    centers/sizes [B, 2] current state in image pixels; scale_z [B] crop pixels per image pixel;
    window [N]; window_influence scalar or [B]; anchors [N, 4] of the R x R map, R = score_size (both
    needed when cfg.center_from is "peak"); score_factors [B, N] multiply the penalised, windowed
    score before the argmax (distractor memory).
    """
    scores = np.asarray(scores, dtype=np.float64)
    boxes = np.asarray(boxes, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64).reshape(-1, 2)
    sizes = np.asarray(sizes, dtype=np.float64).reshape(-1, 2)
    scale_z = np.asarray(scale_z, dtype=np.float64).reshape(-1)
    wi = np.broadcast_to(np.asarray(window_influence, dtype=np.float64), scale_z.shape)[:, None]
    rows = np.arange(scores.shape[0])

    # a diverged network (NaN/inf outputs, e.g. exp overflow of the size offsets) must not
    # poison the state: such candidates are never chosen; a target with none valid is held
    valid = np.isfinite(scores) & np.isfinite(boxes).all(axis=-1) & (boxes[..., 2] > 0) & (boxes[..., 3] > 0)
    scores = np.where(valid, scores, 0.0)
    boxes = np.where(valid[..., None], boxes, 1.0)

    pw, ph = boxes[..., 2], boxes[..., 3]  # [B, N]
    tw, th = (sizes * scale_z[:, None]).T  # current size at crop scale, [B] each
    s_c = _change(_context_size(pw, ph, cfg.context_amount) / _context_size(tw, th, cfg.context_amount)[:, None])
    r_c = _change((tw / th)[:, None] / (pw / ph))
    penalty = np.exp(-(r_c * s_c - 1.0) * cfg.penalty_k)
    pscore = penalty * scores * (1.0 - wi) + window[None, :] * wi
    if score_factors is not None:
        pscore = pscore * score_factors
    pscore = np.where(valid, pscore, -np.inf)
    best = np.argmax(pscore, axis=1)

    box = boxes[rows, best] / scale_z[:, None]  # image pixels
    if cfg.center_from == "peak":
        if anchors is None or score_size < 1:
            raise ValueError("postprocess: tracker.center_from 'peak' needs the anchors and the score size")
        box[:, :2] = peak_positions(pscore, best, anchors, score_size) / scale_z[:, None]
    best_score = scores[rows, best]
    best_penalty = penalty[rows, best]
    held = ~valid[rows, best]
    best_score[held], best_penalty[held] = 0.0, 0.0  # lr 0: a held target keeps its size
    lr = best_penalty * best_score * cfg.lr
    center = centers + box[:, :2]
    center[held] = centers[held]
    size = clip_size(sizes * (1.0 - lr[:, None]) + box[:, 2:] * lr[:, None], cfg, image_shape)

    height, width = float(image_shape[0]), float(image_shape[1])
    center[:, 0] = np.clip(center[:, 0], 0.0, width)
    center[:, 1] = np.clip(center[:, 1], 0.0, height)
    return PostResult(best=best, score=best_score, center=center, size=size, penalty=best_penalty, pscore=pscore,
                      lr=lr)


def clip_size(size: np.ndarray, cfg: TrackerConfig, image_shape: Sequence[int]) -> np.ndarray:
    """Sizes [B, 2] clipped to [min_size, image side]."""
    height, width = float(image_shape[0]), float(image_shape[1])
    size = size.copy()
    size[:, 0] = np.clip(size[:, 0], min(cfg.min_size, width), width)
    size[:, 1] = np.clip(size[:, 1], min(cfg.min_size, height), height)
    return size


def check_tracker_config(cfg: TrackerConfig) -> None:
    """ValueError unless center_from and template_update are known, scale_steps is odd and >= 1
    (symmetric around the current size), scale_step > 1 and 0 < scale_penalty <= 1. Used at
    construction and by the node before it applies run-time parameter changes."""
    if cfg.center_from not in CENTER_SOURCES:
        raise ValueError(f"tracker.center_from must be one of {CENTER_SOURCES}, got '{cfg.center_from}'")
    if not (0.0 <= cfg.lost_similarity <= 1.0 and 0.0 <= cfg.recover_similarity <= 1.0):
        raise ValueError(f"tracker.lost_similarity and recover_similarity must be in [0, 1] (0 = off), got "
                         f"{cfg.lost_similarity} and {cfg.recover_similarity}")
    if cfg.scale_from not in SCALE_SOURCES:
        raise ValueError(f"tracker.scale_from must be one of {SCALE_SOURCES}, got '{cfg.scale_from}'")
    if cfg.template_update not in TEMPLATE_UPDATES:
        raise ValueError(f"tracker.template_update must be one of {TEMPLATE_UPDATES}, got '{cfg.template_update}'")
    if not (0.0 < cfg.template_update_rate <= 1.0 and 0.0 <= cfg.template_update_anchor <= 1.0):
        raise ValueError(f"tracker.template_update_rate must be in (0, 1] and template_update_anchor in [0, 1], got "
                         f"{cfg.template_update_rate} and {cfg.template_update_anchor}")
    if cfg.scale_steps < 1 or cfg.scale_steps % 2 == 0:
        raise ValueError(f"tracker.scale_steps must be odd and >= 1 (1 = no scale search, 3 = sizes x "
                         f"scale_step^(-1, 0, 1)), got {cfg.scale_steps}")
    if cfg.scale_steps > 1 and not cfg.scale_step > 1.0:
        raise ValueError(f"tracker.scale_step must be > 1, got {cfg.scale_step}")
    if not 0.0 < cfg.scale_penalty <= 1.0:
        raise ValueError(f"tracker.scale_penalty must be in (0, 1], got {cfg.scale_penalty}")
    if not 0.0 <= cfg.distractor_penalty <= 1.0:
        raise ValueError(f"tracker.distractor_penalty must be in [0, 1] (0 = off), got {cfg.distractor_penalty}")
    if not 0.0 <= cfg.distractor_score <= 1.0:
        raise ValueError(f"tracker.distractor_score must be in [0, 1], got {cfg.distractor_score}")
    if not (cfg.distractor_distance > 0.0 and cfg.distractor_radius >= 0.0):
        raise ValueError(f"tracker.distractor_distance must be > 0 and distractor_radius >= 0 (target sizes), got "
                         f"{cfg.distractor_distance} and {cfg.distractor_radius}")


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


def scale_bias(best_pscores: np.ndarray, factors: np.ndarray) -> np.ndarray:
    """Per-scale score factors from a search at the true scale (tracker.scale_calibration):
    best_pscores [B, S] of the scales `factors` [S] on a frame whose true size is factor 1.
    A scale that scored above the true one gets true / its score (< 1), the rest 1 -> [B, S]."""
    best = np.asarray(best_pscores, dtype=np.float64)
    true = best[:, np.flatnonzero(np.asarray(factors) == 1.0)[0]][:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(best > true, true / best, 1.0)
    return np.where(np.isfinite(ratio), np.clip(ratio, 0.0, 1.0), 1.0)


def pick_scales(post: PostResult, factors: np.ndarray, sizes: np.ndarray, cfg: TrackerConfig,
                image_shape: Sequence[int], bias: np.ndarray | None = None) -> tuple[np.ndarray, PostResult]:
    """Scale search: `post` holds B targets x S scales (target-major rows, state size x factors[s]).
    Per target keep the scale whose best penalised score (x scale_penalty off 1) is highest; the new
    size is the state size moved towards size x that factor by the usual smoothing weight (SiamFC).
    The box regression's size is not used here: a network whose regression is blind to scale
    (docs/MODEL.md) would otherwise drift; its position still is. `bias` [B, S] (scale_bias) scales
    each target's scores further.
    Returns (chosen rows [B], PostResult of those rows)."""
    s = len(factors)
    best_pscore = post.best_pscore().reshape(-1, s)
    best_pscore = best_pscore * scale_penalties(factors, cfg)[None, :]
    if bias is not None:
        best_pscore = best_pscore * bias
    pick = np.argmax(best_pscore, axis=1)
    chosen = np.arange(best_pscore.shape[0]) * s + pick
    picked = post.take(chosen)
    picked.size = move_sizes(sizes, factors[pick], picked.lr, cfg, image_shape)
    return chosen, picked


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


def pick_template_scales(similarity: np.ndarray, factors: np.ndarray, sizes: np.ndarray, lr: np.ndarray,
                         cfg: TrackerConfig, image_shape: Sequence[int]) -> np.ndarray:
    """tracker.scale_from "template": per target keep the scale whose crop is most similar to the
    template (x scale_penalty when not 1; non-finite similarities never win, none finite = keep the
    size) and move the size towards size x that factor by the smoothing weight `lr` [B] -> sizes [B, 2]."""
    sim = np.where(np.isfinite(similarity), similarity, -np.inf)
    sim = sim * scale_penalties(factors, cfg)[None, :]
    keep = np.flatnonzero(factors == 1.0)[0]
    pick = np.where(np.isfinite(sim).any(axis=1), np.argmax(sim, axis=1), keep)
    return move_sizes(sizes, factors[pick], lr, cfg, image_shape)


def next_state(state: str, low_count: int, score: float, cfg: TrackerConfig,
               similarity: float = math.nan) -> tuple[str, int]:
    """LOST hysteresis: lost after `lost_frames` consecutive low frames (score < lost_threshold and,
    when lost_similarity > 0, template similarity < lost_similarity); back when score >=
    recover_threshold (and similarity >= recover_similarity when that is > 0). A NaN similarity
    (not measured) never blocks LOST and never allows recovery that needs it."""
    if state == TRACKING:
        similar = cfg.lost_similarity > 0 and similarity >= cfg.lost_similarity
        if score < cfg.lost_threshold and not similar:
            low_count += 1
            if low_count >= cfg.lost_frames:
                return LOST, low_count
            return TRACKING, low_count
        return TRACKING, 0
    unlike = cfg.recover_similarity > 0 and not similarity >= cfg.recover_similarity
    if score >= cfg.recover_threshold and not unlike:
        return TRACKING, 0
    return LOST, low_count


def validate_box(bbox: Sequence[float], image_shape: Sequence[int]) -> tuple[float, float, float, float]:
    """A finite, positive box (x, y, w, h) clipped to the image; ValueError otherwise."""
    try:
        values = [float(v) for v in bbox]
    except (TypeError, ValueError) as exc:
        raise ValueError(f"box must be 4 numbers (x, y, w, h), got {bbox!r}") from exc
    if len(values) != 4:
        raise ValueError(f"box must be 4 numbers (x, y, w, h), got {len(values)}: {bbox!r}")
    if not all(math.isfinite(v) for v in values):
        raise ValueError(f"box has NaN or infinite values: {values}")
    x, y, w, h = values
    if w <= 0 or h <= 0:
        raise ValueError(f"box must have positive width and height, got w={w}, h={h}")
    height, width = int(image_shape[0]), int(image_shape[1])
    x1, y1 = max(x, 0.0), max(y, 0.0)
    x2, y2 = min(x + w, float(width)), min(y + h, float(height))
    if x2 - x1 <= 0 or y2 - y1 <= 0:
        raise ValueError(f"box {values} is entirely outside the {width}x{height} image")
    return x1, y1, x2 - x1, y2 - y1


# --------------------------------------------------------------------------- tracker


@dataclass
class _Target:
    id: str
    center: np.ndarray  # (cx, cy) image pixels
    size: np.ndarray  # (w, h) image pixels
    zf: torch.Tensor  # [C, t, t] search kernel: the template features (adapted by tracker.template_update)
    reference: torch.Tensor  # [C, t, t] the first template's features: what the template similarity compares with
    running: torch.Tensor | None = None  # tracker.template_update: the updated template before the anchor mix
    score: float = 1.0
    state: str = TRACKING
    low_count: int = 0
    frames: int = 0
    polygon: np.ndarray | None = None
    mask: np.ndarray | None = None
    # tracker.scale_calibration: (the scale factors it was measured at, score factor per scale)
    scale_bias: tuple[np.ndarray, np.ndarray] | None = None
    # tracker.distractor_*: strong peaks away from the target in the last frame [D, 2] image pixels
    distractors: np.ndarray = field(default_factory=lambda: np.empty((0, 2)))
    similarity: float = math.nan  # to the template at the last box (TrackResult.similarity)

    @property
    def bbox(self) -> tuple[float, float, float, float]:
        cx, cy = self.center
        w, h = self.size
        return (float(cx - w / 2), float(cy - h / 2), float(w), float(h))

    @property
    def extent(self) -> float:
        """sqrt(w * h): the target size the tracker.distractor_* distances are measured in."""
        return math.sqrt(self.size[0] * self.size[1])

    def result(self) -> TrackResult:
        poly = self.polygon if self.polygon is not None else box_polygon(self.bbox)
        return TrackResult(
            id=self.id,
            bbox=self.bbox,
            score=float(self.score),
            state=self.state,
            polygon=[[float(px), float(py)] for px, py in poly],
            mask=self.mask,
            similarity=float(self.similarity),
        )


@dataclass
class _Search:
    """One batched search: post-processed rows (target-major x scales) and what the masks need."""

    post: PostResult
    scores: np.ndarray  # [rows, N] raw foreground scores
    centers: np.ndarray
    scale_z: np.ndarray
    feat: torch.Tensor
    resp: "_Response"


@dataclass
class _Response:
    """Cached per response size: anchors (device tensor + numpy) and the cosine window."""

    anchors: torch.Tensor
    anchors_np: np.ndarray
    window: np.ndarray
    score_size: int


class SiamTracker:
    """Multi-target Siamese tracker (box + optional mask), one batched forward per search size.

    `model` is a `SiameseNet` (wrapped in a `TorchBackend`) or any `NetworkBackend`.
    `cfg` (the TrackerConfig) is read every frame, so it may be changed between frames.
    After each `track()`: `timing` holds ms per stage (crop, network, post, mask, template,
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
        check_tracker_config(tracker_cfg)
        self.cfg = tracker_cfg
        self.model_cfg = model_cfg
        self.device = torch.device(device)
        if isinstance(model, torch.nn.Module):
            has_mask = bool(model_cfg.mask) and getattr(model, "mask_head", None) is not None
            self.backend: NetworkBackend = TorchBackend(model, self.device, half, channels_last, has_mask)
        else:
            self.backend = model
        self._crops: dict[int, CropBatch] = {}  # one preallocated crop buffer per crop size
        self._pin = self.device.type == "cuda"
        self._responses: dict[int, _Response] = {}
        self._targets: dict[str, _Target] = {}
        self._ids = itertools.count(1)
        self.timing: dict[str, float] = {}  # ms of the last track() call, per stage and "total"
        self.last_batches: dict[int, list[str]] = {}  # search size -> target ids, last track() call

    # ----------------------------------------------------------------- targets

    @property
    def target_ids(self) -> list[str]:
        return list(self._targets)

    def __len__(self) -> int:
        return len(self._targets)

    def add_target(
        self,
        image: np.ndarray,
        bbox: Sequence[float],
        target_id: str | None = None,
        mask: np.ndarray | None = None,
    ) -> str:
        """Start (or replace, when `target_id` exists) a target from box (x, y, w, h) in `image`.

        The box is validated (finite, positive, at least partly inside; clipped to the image).
        An optional initial mask (HxW, nonzero = target) gives the first polygon and mask.
        """
        bgr = to_bgr(image)
        x, y, w, h = validate_box(bbox, bgr.shape)
        center = np.array([x + w / 2, y + h / 2], dtype=np.float64)
        size = np.array([w, h], dtype=np.float64)
        init_mask, polygon = self._initial_mask(mask, bgr.shape)
        zf = self._templates(bgr, center[None], size[None])[0]
        tid = str(target_id) if target_id not in (None, "") else self._next_id()
        target = _Target(id=tid, center=center, size=size, zf=zf, reference=zf, polygon=polygon, mask=init_mask)
        if self.cfg.scale_calibration and self.cfg.scale_steps > 1 and self.cfg.scale_from == "score":
            target.scale_bias = self._calibrate_scales(bgr, target)
        self._targets[tid] = target
        return tid

    def _calibrate_scales(self, bgr: np.ndarray, target: _Target) -> tuple[np.ndarray, np.ndarray]:
        """tracker.scale_calibration: search the target's own first frame at every scale (the true
        one is factor 1) and keep scale_bias of the scores."""
        factors = scale_factors(self.cfg)
        found = self._search(bgr, image_mean(bgr), self.model_cfg.search_size, [target], factors, {})
        return factors, scale_bias(found.post.best_pscore()[None, :], factors)[0]

    def remove_target(self, target_id: str) -> bool:
        """Forget one target; False when it did not exist."""
        return self._targets.pop(str(target_id), None) is not None

    def clear(self) -> None:
        self._targets.clear()

    def set_box(self, target_id: str, bbox: Sequence[float]) -> None:
        """Move a target's search state to `bbox` (x, y, w, h, pixels), keeping its template: for
        diagnostics that start each frame from a known box (bench/center_precision.py)."""
        try:
            target = self._targets[str(target_id)]
        except KeyError:
            raise KeyError(f"no target '{target_id}'; targets: {self.target_ids}") from None
        x, y, w, h = (float(v) for v in bbox)
        if not (math.isfinite(x) and math.isfinite(y) and math.isfinite(w) and math.isfinite(h) and w > 0 and h > 0):
            raise ValueError(f"set_box: box must be finite with positive size, got {tuple(bbox)}")
        target.center, target.size = np.array([x + w / 2, y + h / 2]), np.array([w, h])
        target.distractors = np.empty((0, 2))

    def result(self, target_id: str) -> TrackResult:
        """The current state of one target (after `add_target`: the given box)."""
        try:
            return self._targets[str(target_id)].result()
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

    # ----------------------------------------------------------------- per frame

    def track(self, image: np.ndarray) -> list[TrackResult]:
        """Track every target in `image` (BGR/grey uint8); results in insertion order."""
        t_start = time.perf_counter()
        timing = {"crop": 0.0, "network": 0.0, "post": 0.0, "mask": 0.0, "template": 0.0}
        bgr = to_bgr(image)
        targets = list(self._targets.values())
        self.last_batches = {}
        if targets:
            pad = image_mean(bgr)
            groups: dict[int, list[_Target]] = {}
            for t in targets:
                size = self.cfg.lost_search_size if self._held(t) else self.model_cfg.search_size
                groups.setdefault(size, []).append(t)
            self.last_batches = {size: [t.id for t in members] for size, members in groups.items()}
            updated: list[_Target] = []
            for search_size, members in groups.items():
                updated += self._track_group(bgr, pad, search_size, members, timing)
            t0 = time.perf_counter()
            self._update_templates(bgr, updated)
            timing["template"] = _ms(t0)
        timing["total"] = _ms(t_start)
        self.timing = timing
        return [t.result() for t in targets]

    def _track_group(
        self, bgr: np.ndarray, pad: tuple[float, ...], search_size: int, members: list[_Target], timing: dict
    ) -> list[_Target]:
        """One batched forward + post-processing for targets sharing a search size; returns those updated."""
        cfg = self.cfg
        # a held LOST target's box does not move and only the recovery test reads it: one scale is
        # enough, and the wide lost crop is the most expensive forward there is
        all_held = all(self._held(t) for t in members)
        by_score = cfg.scale_from == "score" and not all_held
        by_template = cfg.scale_from == "template" and cfg.scale_steps > 1
        factors = scale_factors(cfg) if by_score else np.ones(1)
        found = self._search(bgr, pad, search_size, members, factors, timing)
        post, scores, centers, scale_z, feat = found.post, found.scores, found.centers, found.scale_z, found.feat

        t0 = time.perf_counter()
        sizes = np.stack([t.size for t in members])
        if len(factors) > 1:
            chosen, post = pick_scales(post, factors, sizes, cfg, bgr.shape, self._scale_biases(members, factors))
            scores, centers, scale_z = scores[chosen], centers[chosen], scale_z[chosen]
            feat = feat[torch.as_tensor(chosen, device=feat.device)]
        elif by_template:
            post.size = sizes.copy()  # picked below from the similarity: the regression's size is blind to scale
        timing["post"] += _ms(t0)
        # the LOST rule needs every target's similarity first (held ones keep their size: one scale);
        # otherwise only targets still tracked need it
        similarity, best = None, np.full(len(members), math.nan)
        if cfg.lost_similarity > 0 or cfg.recover_similarity > 0:
            similarity = self._candidate_similarity(bgr, members, post.center, by_template and not all_held, timing)
            best = best_similarity(similarity)
        t0 = time.perf_counter()
        updated, masked = [], []
        for b, t in enumerate(members):
            t.state, t.low_count = next_state(t.state, t.low_count, float(post.score[b]), cfg, float(best[b]))
            t.similarity = float(best[b])
            t.score = float(post.score[b])
            t.frames += 1
            t.polygon, t.mask = None, None
            t.distractors = np.empty((0, 2))
            if self._held(t):
                continue  # hold the box; search the bigger crop next frame
            t.center, t.size = post.center[b].copy(), post.size[b].copy()
            if cfg.distractor_penalty > 0:
                t.distractors = find_distractors(scores[b], found.resp.anchors_np, found.resp.score_size, centers[b],
                                                 float(scale_z[b]), t.center, t.extent,
                                                 cfg.distractor_score, cfg.distractor_distance)
            updated.append(t)
            masked.append(b)
        timing["post"] += _ms(t0)

        if masked and by_template:
            tracked = [members[b] for b in masked]
            if similarity is not None and similarity.shape[1] == cfg.scale_steps:
                tracked_similarity = similarity[masked]
            else:  # not measured yet, or at one scale only (a held target that recovered)
                tracked_similarity = self._candidate_similarity(bgr, tracked, post.center[masked], True, timing)
            sizes = np.stack([t.size for t in tracked])
            for t, size in zip(tracked, pick_template_scales(tracked_similarity, scale_factors(cfg), sizes,
                                                             post.lr[masked], cfg, bgr.shape)):
                t.size = size
            for t, value in zip(tracked, best_similarity(tracked_similarity)):
                t.similarity = float(value)

        if masked and cfg.mask_enabled and self.backend.has_mask:
            t0 = time.perf_counter()
            self._masks(bgr, members, masked, feat, post, found.resp, centers, scale_z)
            timing["mask"] += _ms(t0)
        return updated

    def _search(self, bgr: np.ndarray, pad: tuple[float, ...], search_size: int, members: list[_Target],
                factors: np.ndarray, timing: dict) -> "_Search":
        """Crop, forward and post-process every target at its size x each of `factors` (one row per
        (target, scale), target-major), without changing any state."""
        cfg, tsize = self.cfg, self.model_cfg.template_size
        n_scales = len(factors)
        centers, scaled_sizes = scale_rows(np.stack([t.center for t in members]), np.stack([t.size for t in members]),
                                           factors)
        s_z = template_crop_sizes(scaled_sizes, cfg.context_amount)
        scale_z = tsize / s_z  # crop pixels per image pixel
        s_x = s_z * search_size / tsize

        t0 = time.perf_counter()
        x = self._crop(search_size)(bgr, centers, s_x, search_size, pad)
        timing["crop"] = timing.get("crop", 0.0) + _ms(t0)

        t0 = time.perf_counter()
        zf = torch.stack([t.zf for t in members])
        if n_scales > 1:
            zf = zf.repeat_interleave(n_scales, dim=0)
        cls, loc, feat = self.backend.track(zf, x)
        resp = self._response(cls.shape[-1])
        scores_t, boxes_t = decode_response(cls, loc, resp.anchors)
        scores, boxes = scores_t.cpu().numpy(), boxes_t.cpu().numpy()
        timing["network"] = timing.get("network", 0.0) + _ms(t0)

        t0 = time.perf_counter()
        wi = np.array([cfg.lost_window_influence if self._held(t) else cfg.window_influence for t in members])
        post = postprocess(scores, boxes, centers, scaled_sizes, scale_z, resp.window, np.repeat(wi, n_scales),
                           cfg, bgr.shape, resp.anchors_np, cls.shape[-1],
                           self._distractor_factors(members, n_scales, centers, scale_z, resp))
        timing["post"] = timing.get("post", 0.0) + _ms(t0)
        return _Search(post=post, scores=scores, centers=centers, scale_z=scale_z, feat=feat, resp=resp)

    def _distractor_factors(self, members: list[_Target], n_scales: int, centers: np.ndarray, scale_z: np.ndarray,
                            resp: _Response) -> np.ndarray | None:
        """tracker.distractor_*: score factors [rows, N] damping the candidates near each target's
        remembered distractors (None when off or when no target remembers one)."""
        penalty = self.cfg.distractor_penalty
        if penalty <= 0 or all(len(t.distractors) == 0 for t in members):
            return None
        radii = np.repeat([self.cfg.distractor_radius * t.extent for t in members], n_scales)
        points = [t.distractors for t in members for _ in range(n_scales)]
        return distractor_factors(resp.anchors_np, resp.score_size, centers, scale_z, points, radii, penalty)

    def _candidate_similarity(self, bgr: np.ndarray, members: list[_Target], centers: np.ndarray,
                              every_scale: bool, timing: dict) -> np.ndarray:
        """Cosine similarity [B, S] to each target's template of template-sized crops at `centers` and
        the current size x every scale factor (tracker.scale_from "template" picks the size from it);
        S = 1 without `every_scale` (only the LOST rule reads it)."""
        t0 = time.perf_counter()
        factors = scale_factors(self.cfg) if every_scale else np.ones(1)
        candidates = self._templates(bgr, *scale_rows(centers, np.stack([t.size for t in members]), factors))
        similarity = template_similarity(candidates.reshape(len(members), len(factors), *candidates.shape[1:]),
                                         torch.stack([t.reference for t in members]))
        timing["scale"] = timing.get("scale", 0.0) + _ms(t0)
        return similarity

    @staticmethod
    def _scale_biases(members: list[_Target], factors: np.ndarray) -> np.ndarray | None:
        """The targets' calibrated score factors [B, S] (1 where none was measured at these scales)."""
        if all(t.scale_bias is None for t in members):
            return None
        return np.stack([t.scale_bias[1] if t.scale_bias is not None and np.array_equal(t.scale_bias[0], factors)
                         else np.ones(len(factors)) for t in members])

    def _masks(
        self,
        bgr: np.ndarray,
        members: list[_Target],
        rows: list[int],
        feat: torch.Tensor,
        post: PostResult,
        resp: _Response,
        centers: np.ndarray,
        scale_z: np.ndarray,
    ) -> None:
        """Mask head at the chosen position of each listed target, back-projected to the image."""
        r2 = feat.shape[-1] * feat.shape[-2]
        rows_t = torch.as_tensor(rows, device=feat.device)
        pos = torch.as_tensor(post.best[rows] % r2, device=feat.device)
        vectors = feat.flatten(2)[rows_t, :, pos]  # [n, F]
        probs = torch.sigmoid(self.backend.mask(vectors).float()).cpu().numpy()
        m = int(round(math.sqrt(probs.shape[1])))
        for n, b in enumerate(rows):
            t = members[b]
            res = backproject_mask(
                probs[n].reshape(m, m),
                crop_center=centers[b],
                offset=resp.anchors_np[post.best[b], :2],
                scale=1.0 / scale_z[b],
                window_size=self.model_cfg.template_size,
                image_shape=bgr.shape,
                threshold=self.cfg.mask_threshold,
                fallback_bbox=t.bbox,
            )
            t.mask, t.polygon = res.mask, res.polygon

    def _held(self, target: _Target) -> bool:
        """A LOST target under tracker.lost_hold: box held, wide search, no motion prior."""
        return target.state == LOST and self.cfg.lost_hold

    def _update_templates(self, bgr: np.ndarray, updated: list[_Target]) -> None:
        mode = self.cfg.template_update
        updated = [t for t in updated if t.state != LOST]  # never learn from a frame it is lost in
        if mode == "none" or not updated:
            return
        if mode == "blend":
            updated = [t for t in updated if t.score >= self.cfg.template_update_min_score]
            if not updated:
                return
        zf = self._templates(bgr, np.stack([t.center for t in updated]), np.stack([t.size for t in updated]))
        rate, anchor = self.cfg.template_update_rate, self.cfg.template_update_anchor
        for t, new in zip(updated, zf):
            running = t.reference if t.running is None else t.running
            t.running = new if mode == "last" else (1.0 - rate) * running + rate * new
            t.zf = t.running if anchor == 0.0 else anchor * t.reference + (1.0 - anchor) * t.running

    def _templates(self, bgr: np.ndarray, centers: np.ndarray, sizes: np.ndarray) -> torch.Tensor:
        tsize = self.model_cfg.template_size
        s_z = template_crop_sizes(sizes, self.cfg.context_amount)
        z = self._crop(tsize)(bgr, centers, s_z, tsize, image_mean(bgr))
        return self.backend.template(z).clone()

    def _crop(self, out_size: int) -> CropBatch:
        crop = self._crops.get(out_size)
        if crop is None:
            crop = self._crops[out_size] = CropBatch(pin_memory=self._pin)
        return crop

    def _response(self, score_size: int) -> _Response:
        resp = self._responses.get(score_size)
        if resp is None:
            anchors = generate_anchors(self.model_cfg.anchor, score_size)
            k = self.model_cfg.anchor.num_anchors
            resp = _Response(
                anchors=torch.from_numpy(anchors).to(self.device),
                anchors_np=anchors.astype(np.float64),
                window=hanning_window(score_size, k),
                score_size=score_size,
            )
            self._responses[score_size] = resp
        return resp


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000.0


def __getattr__(name: str):
    # backwards-compatible `cyclesiam.tracker.build_tracker` for call sites outside the core until
    # they import `cyclesiam.build`; resolved on use, so this module never imports cyclesiam.build
    if name == "build_tracker":
        from cyclesiam.build import build_tracker

        return build_tracker
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LOST",
    "TRACKING",
    "NetworkBackend",
    "PostResult",
    "SiamTracker",
    "TorchBackend",
    "TrackResult",
    "decode_response",
    "hanning_window",
    "next_state",
    "postprocess",
    "response_size",
    "validate_box",
]
