"""Label-free tracking quality: forward-backward round trips of many seed boxes (no annotation).

From a label-free box (the training seeds' `random_box`, contrast-scored: object-like) on a frame
of a recording, the tracker follows `length` frames forward and then the same frames backward to
the start. A tracker that keeps its target ends where it began, so the round trip's IoU with the
start box, its size ratio and its centre error measure tracking quality without any label.

A tracker that never moves would end where it began too (a random-init model scores 0.98 IoU on
tree.avi that way). So on the way back every frame is also translated, growing linearly to a known
`shift` (half the box size by default, in a random direction): the target then ends at start box +
shift, and a tracker that stays put misses it (IoU about 0.3 for a square box).

The same trips (frames and boxes, from one seeded RNG) are run for every model compared, so the
comparison is paired: `compare` calls a model better only when the mean paired IoU gain is above
zero by more than `z` standard errors.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, replace as dataclass_replace
from pathlib import Path
from typing import Any, Sequence

import cv2
import numpy as np

from cyclesiam.bbox import iou
from cyclesiam_train.config import Config, SeedConfig, load_config
from cyclesiam.sources import FrameSource
from cyclesiam_train.seeds import random_box

Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Trip:
    recording: int  # index into the sources given to plan_trips / run_trips
    start: int  # first frame
    length: int  # frames forward (as many back)
    box: Box  # x, y, w, h on frame `start`
    shift: tuple[float, float] = (0.0, 0.0)  # px the way back translates the frames by, at its end


@dataclass(frozen=True)
class TripResult:
    iou: float  # final box against the start box (1 = back exactly where it began)
    log_size: float  # log(final size / start size): < 0 shrank
    centre_error: float  # centre distance / start size


@dataclass(frozen=True)
class Verdict:
    base: float  # mean round-trip IoU of the base model
    candidate: float  # ... of the candidate
    gain: float  # mean paired difference candidate - base
    stderr: float  # its standard error over trips
    better: bool  # gain > z * stderr and gain > 0


def seed_config(cfg: SeedConfig | None = None) -> SeedConfig:
    """Object-like seed boxes (contrast score, best of 32), as the shipped model's training seeds."""
    seeds = copy.deepcopy(cfg) if cfg is not None else SeedConfig()
    seeds.random_score, seeds.random_candidates = "contrast", 32
    return seeds


def eval_config(overrides: dict[str, Any] | None = None, device: str = "cpu") -> Config:
    """The tracker config the check runs with: defaults (+ overrides), torch backend, no masks."""
    cfg = load_config(None, overrides or {})
    cfg.runtime.device, cfg.runtime.backend, cfg.tracker.mask_enabled = device, "torch", False
    return cfg


def translated(frame: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """`frame` with its content moved by (dx, dy) px (edges replicated)."""
    h, w = frame.shape[:2]
    return cv2.warpAffine(frame, np.float32([[1, 0, dx], [0, 1, dy]]), (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def round_trip(tracker: Any, frames: Sequence[np.ndarray], box: Box,
               shift: tuple[float, float] = (0.0, 0.0)) -> TripResult:
    """Track `frames` forward from `box` on frames[0], then backward to frames[0] with the frames moved
    linearly up to `shift`; the result is measured against the start box moved by `shift`."""
    tracker.clear()
    tracker.add_target(frames[0], box)
    back = list(frames[-2::-1])
    for frame in frames[1:]:
        tracker.track(frame)
    result = None
    for j, frame in enumerate(back, start=1):
        f = j / len(back)
        (result,) = tracker.track(translated(frame, shift[0] * f, shift[1] * f) if any(shift) else frame)
    box = (box[0] + shift[0], box[1] + shift[1], box[2], box[3])
    x, y, w, h = box
    fx, fy, fw, fh = result.bbox
    size = math.sqrt(w * h)
    centre_error = math.hypot(fx + fw / 2 - (x + w / 2), fy + fh / 2 - (y + h / 2)) / size
    overlap = float(iou(np.array([box], dtype=np.float64), np.array([result.bbox], dtype=np.float64), fmt="xywh")[0])
    return TripResult(overlap, float(math.log(max(math.sqrt(fw * fh), 1e-6) / size)), float(centre_error))


def read_frames(source: FrameSource, start: int, length: int) -> list[np.ndarray]:
    return [source.frame(i) for i in range(start, start + length)]


def known_shift(box: Box, image_shape: Sequence[int], fraction: float, rng: np.random.Generator) -> tuple[float, float]:
    """A translation of `fraction` x the box size in a random direction, turned (per axis) so the moved box
    stays inside the image where it can."""
    if fraction <= 0:
        return 0.0, 0.0
    x, y, w, h = box
    angle = rng.uniform(0, 2 * math.pi)
    d = fraction * math.sqrt(w * h)
    dx, dy = d * math.cos(angle), d * math.sin(angle)
    height, width = image_shape[:2]
    dx = -dx if not 0 <= x + dx and x + w + dx <= width else dx
    dy = -dy if not 0 <= y + dy and y + h + dy <= height else dy
    return float(dx), float(dy)


def plan_trips(sources: Sequence[FrameSource], ranges: Sequence[tuple[int, int]], trips: int, length: int,
               rng: np.random.Generator, seeds: SeedConfig, shift: float = 0.5) -> list[Trip]:
    """`trips` round trips per recording, each inside its frame range [lo, hi) (shortened to fit); `shift`:
    the way back's known translation as a fraction of the box size (0 = none)."""
    plan = []
    for k, (source, (lo, hi)) in enumerate(zip(sources, ranges)):
        n = min(length, hi - lo)
        if n < 2:
            raise ValueError(f"{source.path}: {hi - lo} frame(s) in [{lo}, {hi}); a round trip needs 2")
        for _ in range(trips):
            start = int(rng.integers(lo, max(lo + 1, hi - n)))
            first = source.frame(start)
            box = tuple(float(v) for v in random_box(first, rng, seeds))
            plan.append(Trip(k, start, n, box, known_shift(box, first.shape, shift, rng)))
    return plan


def plan_seeded_trips(sources: Sequence[FrameSource], ranges: Sequence[tuple[int, int]],
                      seeds: Sequence[tuple[int, int, Box]], trips: int, length: int, rng: np.random.Generator,
                      random_seeds: SeedConfig, shift: float = 0.5) -> list[Trip]:
    """Like `plan_trips`, but each round trip starts from a given box (recording, frame, box): the seeds
    the model was adapted with, e.g. the node's own detections, so the check measures the targets the
    adaptation is for. Per recording up to `trips` of its seeds whose frame leaves room for a trip inside
    its range (drawn without replacement); a recording with none gets `plan_trips`' label-free boxes."""
    plan = []
    for k, (source, (lo, hi)) in enumerate(zip(sources, ranges)):
        usable = [(f, box) for rec, f, box in seeds if rec == k and lo <= f <= hi - 2]
        if not usable:
            plan += [dataclass_replace(t, recording=k) for t in
                     plan_trips([source], [(lo, hi)], trips, length, rng, random_seeds, shift)]
            continue
        for i in sorted(rng.choice(len(usable), size=min(trips, len(usable)), replace=False)):
            start, box = usable[int(i)]
            box = tuple(float(v) for v in box)
            plan.append(Trip(k, start, min(length, hi - start), box, known_shift(box, source.frame(start).shape, shift, rng)))
    return plan


MIN_TRIPS = 2  # a paired comparison needs a spread


def run_trips(tracker: Any, sources: Sequence[FrameSource], trips: Sequence[Trip],
              deadline: float | None = None) -> list[TripResult]:
    """The trips in order; with a `deadline` (time.monotonic()), no trip starts after it once
    MIN_TRIPS are done, so a check fits its share of a time budget on a slow or busy machine."""
    results = []
    for t in trips:
        if deadline is not None and len(results) >= MIN_TRIPS and time.monotonic() > deadline:
            break
        results.append(round_trip(tracker, read_frames(sources[t.recording], t.start, t.length), t.box, t.shift))
    return results


def summary(results: Sequence[TripResult]) -> dict[str, float]:
    """Mean IoU, share of failed trips (IoU < 0.5), median/mean log size, shrank/grew > 10 %, median centre error."""
    ious = np.array([r.iou for r in results])
    logs = np.array([r.log_size for r in results])
    return {"trips": len(results), "iou": float(ious.mean()), "failed": float((ious < 0.5).mean()),
            "median_log_size": float(np.median(logs)), "mean_log_size": float(logs.mean()),
            "shrank": float((logs < np.log(0.9)).mean()), "grew": float((logs > np.log(1.1)).mean()),
            "centre_error": float(np.median([r.centre_error for r in results]))}


def compare(base: Sequence[TripResult], candidate: Sequence[TripResult], z: float = 1.645) -> Verdict:
    """Paired comparison over the same trips: better only when the IoU gain is clearly above zero."""
    if len(base) != len(candidate) or not base:
        raise ValueError(f"compare needs the same non-empty trips for both models, got {len(base)} and {len(candidate)}")
    diff = np.array([c.iou - b.iou for b, c in zip(base, candidate)])
    stderr = float(diff.std(ddof=1) / math.sqrt(len(diff))) if len(diff) > 1 else math.inf
    gain = float(diff.mean())
    return Verdict(float(np.mean([b.iou for b in base])), float(np.mean([c.iou for c in candidate])), gain, stderr,
                   bool(gain > 0 and gain > z * stderr))


def measure(checkpoint: str | Path, sources: Sequence[FrameSource], trips: Sequence[Trip],
            cfg: Config | None = None, deadline: float | None = None) -> list[TripResult]:
    """Round trips of the model in `checkpoint` (tracker built from `cfg`, default `eval_config()`);
    the first ones only when `deadline` passes (see `run_trips`)."""
    from cyclesiam.build import build_tracker

    tracker = build_tracker(cfg or eval_config(), checkpoint)
    return run_trips(tracker, sources, trips, deadline)
