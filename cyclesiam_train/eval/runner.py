"""Run trackers over sequences (one-pass and VOT re-initialising protocols) and score them.

A tracker is anything with ``init(frame, box, mask=None)`` and
``update(frame) -> (box | None, score, mask | None)`` (:class:`EvalTracker`); after
``update`` its optional ``lost`` attribute says whether it declared the target lost. Frames
are read once per run, in order; only annotated frames are scored. Where a sequence marks
absent keyframes (target out of view), the one-pass run reports how often the tracker still
gave a box there and how often it said LOST.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence as Seq

import numpy as np

from cyclesiam_train.config import ConfigError, EvalConfig

from . import metrics as M
from .datasets import Sequence

Box = tuple[float, float, float, float]


class EvalTracker(Protocol):
    name: str

    def init(self, frame: np.ndarray, box: Box, mask: np.ndarray | None = None) -> None: ...

    def update(self, frame: np.ndarray) -> tuple[Box | None, float, np.ndarray | None]: ...


@dataclass
class OPERun:
    """One-pass run: initialised once on the first annotated frame, then never corrected."""

    boxes: np.ndarray  # [N, 4] predictions, NaN before init / when the tracker gave none
    scores: np.ndarray  # [N]
    init_frame: int
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # predictions on frames with a gt mask
    mask_from_box: bool = False  # the tracker gave no masks: filled boxes stand in
    seconds: float = 0.0  # time spent in update()
    updates: int = 0
    lost: np.ndarray | None = None  # [N] bool: the tracker gave no box or declared the target lost


@dataclass
class VOTRun:
    record: M.VOTRecord
    boxes: np.ndarray


def first_annotated(seq: Sequence) -> int | None:
    idx = np.nonzero(M.annotated(seq.boxes[:len(seq)]))[0]
    return int(idx[0]) if idx.size else None


def _predicted_mask(box: Box | None, mask: np.ndarray | None, shape: tuple[int, ...]) -> tuple[np.ndarray, bool]:
    if mask is not None:
        return np.asarray(mask, dtype=bool), False
    return M.box_to_mask(box, shape[:2]), True


def init_shift(values: Seq[float]) -> tuple[float, float]:
    """`eval.init_shift` checked: two finite numbers (pixels)."""
    shift = tuple(values)
    if len(shift) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                                  for v in shift):
        raise ConfigError(f"eval.init_shift must be two finite numbers [dx, dy] (pixels), got {list(values)}")
    return float(shift[0]), float(shift[1])


def shifted(box: Seq[float], shift: tuple[float, float]) -> Box:
    x, y, w, h = (float(v) for v in box)
    return (x + shift[0], y + shift[1], w, h)


def run_ope(tracker: EvalTracker, seq: Sequence, shift: tuple[float, float] = (0.0, 0.0)) -> OPERun:
    """Initialise on the first annotated frame (with its mask if given; the box moved by `shift`),
    track to the end."""
    n = len(seq)
    boxes, scores = np.full((n, 4), np.nan), np.full(n, np.nan)
    start = first_annotated(seq)
    run = OPERun(boxes, scores, -1 if start is None else start, lost=np.zeros(n, dtype=bool))
    if start is None:
        return run
    from_box = []
    for i, frame in seq.iter_frames():
        if i < start:
            continue
        if i == start:
            tracker.init(frame, shifted(seq.boxes[i], shift), seq.mask(i))
            boxes[i], scores[i] = seq.boxes[i], 1.0
            continue
        t0 = time.perf_counter()
        box, score, mask = tracker.update(frame)
        run.seconds += time.perf_counter() - t0
        run.updates += 1
        if box is not None:
            boxes[i], scores[i] = box, score
        run.lost[i] = box is None or bool(getattr(tracker, "lost", False))
        if i in seq.masks:
            run.masks[i], used_box = _predicted_mask(box, mask, frame.shape)
            from_box.append(used_box)
    run.mask_from_box = bool(from_box) and all(from_box)
    return run


def run_vot(tracker: EvalTracker, seq: Sequence, skip: int = 5, failure_iou: float = 0.0,
            shift: tuple[float, float] = (0.0, 0.0)) -> VOTRun:
    """VOT supervised protocol: a failure (IoU <= failure_iou on an annotated frame) stops
    tracking; the tracker is re-initialised ``skip`` frames later, on the next annotated frame
    (every initialisation box moved by `shift`)."""
    n = len(seq)
    valid = M.annotated(seq.boxes[:n])
    overlaps, boxes = np.full(n, np.nan), np.full((n, 4), np.nan)
    inits: list[int] = []
    failures: list[int] = []
    tracking, next_init = False, 0
    for i, frame in seq.iter_frames():
        if not tracking:
            if i >= next_init and valid[i]:
                tracker.init(frame, shifted(seq.boxes[i], shift), seq.mask(i))
                inits.append(i)
                boxes[i] = seq.boxes[i]
                tracking = True
            continue
        box, _, _ = tracker.update(frame)
        if box is not None:
            boxes[i] = box
        if valid[i]:
            overlaps[i] = float(M.box_iou(boxes[i:i + 1], seq.boxes[i:i + 1])[0])
            if overlaps[i] <= failure_iou:
                failures.append(i)
                tracking, next_init = False, i + skip
    return VOTRun(M.VOTRecord(overlaps, inits, failures), boxes)


# --------------------------------------------------------------------------- scoring


def score_ope(run: OPERun, seq: Sequence, cfg: EvalConfig) -> tuple[dict[str, Any], M.OPEResult]:
    n = len(seq)
    skip = np.zeros(n, dtype=bool)
    skip[:max(run.init_frame, 0) + 1] = True  # the init frame (given) and anything before it
    res = M.evaluate_ope(run.boxes, seq.boxes[:n], skip, n_success=cfg.success_thresholds,
                         strict=cfg.success_strict, precision_max=cfg.precision_max,
                         norm_precision_max=cfg.norm_precision_max)
    summary = res.summary(cfg.precision_threshold, cfg.norm_precision_threshold,
                          M.precision_thresholds(cfg.precision_max), M.norm_precision_thresholds(cfg.norm_precision_max))
    summary["fps"] = run.updates / run.seconds if run.seconds > 0 else math.nan
    return summary, res


def score_masks(run: OPERun, seq: Sequence, cfg: EvalConfig) -> dict[str, Any] | None:
    """DAVIS J and F over frames with a gt mask after the init frame (None if there are none)."""
    if not run.masks or (run.mask_from_box and not cfg.mask_from_box):
        return None
    js, fs, js_box = [], [], []
    for i in sorted(run.masks):
        gt = seq.mask(i)
        pred = run.masks[i]
        js.append(M.region_similarity(pred, gt))
        fs.append(M.boundary_f_measure(pred, gt, cfg.davis_bound_th))
        js_box.append(M.region_similarity(M.box_to_mask(run.boxes[i], gt.shape), gt))
    j, f = M.davis_statistics(js), M.davis_statistics(fs)
    # J_box: the tracker's own box filled in, on the same frames (a mask must beat it to be worth having)
    return {"J": j, "F": f, "JF": (j["mean"] + f["mean"]) / 2, "J_box": float(np.mean(js_box)),
            "frames": len(js), "mask_from_box": run.mask_from_box}


def score_absent(run: OPERun, seq: Sequence) -> dict[str, int] | None:
    """On absent keyframes after the init frame: how often the tracker gave a box vs said LOST."""
    if seq.absent is None or run.lost is None:
        return None
    frames = np.nonzero(seq.absent[:len(seq)])[0]
    frames = frames[frames > run.init_frame]
    if not frames.size:
        return None
    lost = int(run.lost[frames].sum())
    return {"keyframes": int(frames.size), "box": int(frames.size) - lost, "lost": lost}


def score_vot(run: VOTRun, cfg: EvalConfig) -> dict[str, Any]:
    acc, used = M.vot_accuracy(run.record, cfg.vot_burn_in)
    tracked = int(np.isfinite(run.record.overlaps).sum())
    failures = len(run.record.failures)
    return {"accuracy": acc, "accuracy_frames": used, "failures": failures, "tracked_frames": tracked,
            "reliability": M.vot_reliability(failures, tracked)}


@dataclass
class TrackerResults:
    """Everything measured for one tracker on one dataset."""

    name: str
    sequences: dict[str, dict[str, Any]] = field(default_factory=dict)
    ope: dict[str, M.OPEResult] = field(default_factory=dict)
    vot: dict[str, M.VOTRecord] = field(default_factory=dict)
    predictions: dict[str, np.ndarray] = field(default_factory=dict)


def evaluate_tracker(tracker: EvalTracker, sequences: Seq[Sequence], cfg: EvalConfig,
                     log: Any = None) -> TrackerResults:
    """Run the configured protocols (``cfg.protocols``) on every sequence."""
    out = TrackerResults(tracker.name)
    shift = init_shift(cfg.init_shift)
    for seq in sequences:
        entry: dict[str, Any] = {"frames": len(seq), "annotated": int(M.annotated(seq.boxes[:len(seq)]).sum())}
        if "ope" in cfg.protocols:
            run = run_ope(tracker, seq, shift)
            entry["ope"], out.ope[seq.name] = score_ope(run, seq, cfg)
            masks = score_masks(run, seq, cfg)
            if masks is not None:
                entry["davis"] = masks
            absent = score_absent(run, seq)
            if absent is not None:
                entry["absent"] = absent
            out.predictions[seq.name] = run.boxes
        if "vot" in cfg.protocols:
            vrun = run_vot(tracker, seq, cfg.vot_skip, cfg.vot_failure_iou, shift)
            entry["vot"] = score_vot(vrun, cfg)
            out.vot[seq.name] = vrun.record
        out.sequences[seq.name] = entry
        if log is not None:
            log(f"[{tracker.name}] {seq.name}: {_one_line(entry)}")
    return out


def _one_line(entry: dict[str, Any]) -> str:
    parts = []
    if "ope" in entry:
        parts.append(f"AUC {entry['ope']['auc']:.3f} P@20 {entry['ope']['precision']:.3f}")
    if "vot" in entry:
        parts.append(f"A {entry['vot']['accuracy']:.3f} fail {entry['vot']['failures']}")
    if "davis" in entry:
        parts.append(f"J {entry['davis']['J']['mean']:.3f} (box {entry['davis']['J_box']:.3f}) "
                     f"F {entry['davis']['F']['mean']:.3f}")
    if "absent" in entry:
        parts.append(f"absent {entry['absent']['keyframes']}: box {entry['absent']['box']} lost {entry['absent']['lost']}")
    return ", ".join(parts)


def _nanmean(values: list[float]) -> float:
    arr = np.asarray([v for v in values if v is not None], dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else math.nan


def overall(results: TrackerResults, cfg: EvalConfig) -> dict[str, Any]:
    """Dataset-level numbers: OTB curves averaged over sequences (OTB/pysot convention),
    VOT accuracy averaged over sequences, failures summed, EAO over all fragments, J/F
    averaged over sequences (objects)."""
    summary: dict[str, Any] = {"sequences": len(results.sequences)}
    curves: dict[str, list[float]] = {}
    scored = [r for r in results.ope.values() if r.frames > 0]
    if scored:
        success = np.mean([r.success for r in scored], axis=0)
        precision = np.mean([r.precision for r in scored], axis=0)
        norm = np.mean([r.norm_precision for r in scored], axis=0)
        pt, nt = M.precision_thresholds(cfg.precision_max), M.norm_precision_thresholds(cfg.norm_precision_max)
        summary["ope"] = {
            "auc": M.auc(success),
            "precision": M.value_at(precision, pt, cfg.precision_threshold),
            "norm_precision": M.value_at(norm, nt, cfg.norm_precision_threshold),
            "norm_precision_auc": float(np.mean(norm)),
            "mean_iou": _nanmean([float(np.mean(r.ious)) for r in scored]),
            "fps": _nanmean([e["ope"]["fps"] for e in results.sequences.values() if "ope" in e]),
        }
        curves.update(success=success.tolist(), precision=precision.tolist(), norm_precision=norm.tolist())
    if results.vot:
        entries = [e["vot"] for e in results.sequences.values() if "vot" in e]
        fragments = [f for rec in results.vot.values() for f in M.eao_fragments(rec)]
        # sequence lengths in annotated frames after the first (given) one
        lengths = [results.sequences[name]["annotated"] - 1 for name in results.vot]
        low, high = M.eao_range(lengths, cfg.eao_low, cfg.eao_high)
        longest = max((len(f) for f, _ in fragments), default=0)
        curve = M.eao_curve(fragments, max(high, longest))
        failures = sum(e["failures"] for e in entries)
        tracked = sum(e["tracked_frames"] for e in entries)
        summary["vot"] = {
            "accuracy": _nanmean([e["accuracy"] for e in entries]),
            "failures": failures,
            "reliability": M.vot_reliability(failures, tracked),
            "eao": M.eao_score(curve, low, high),
            "eao_range": [low, high],
        }
        curves["eao"] = [None if not math.isfinite(v) else float(v) for v in curve]
    davis = [e["davis"] for e in results.sequences.values() if "davis" in e]
    if davis:
        summary["davis"] = {
            key: {stat: _nanmean([d[key][stat] for d in davis]) for stat in ("mean", "recall", "decay")}
            for key in ("J", "F")
        }
        summary["davis"]["JF"] = (summary["davis"]["J"]["mean"] + summary["davis"]["F"]["mean"]) / 2
        summary["davis"]["J_box"] = _nanmean([d["J_box"] for d in davis])
        summary["davis"]["mask_from_box"] = all(d["mask_from_box"] for d in davis)
    absent = [e["absent"] for e in results.sequences.values() if "absent" in e]
    if absent:
        summary["absent"] = {key: sum(a[key] for a in absent) for key in ("keyframes", "box", "lost")}
    summary["curves"] = curves
    return summary
