"""Tracking and segmentation metrics: OTB/LaSOT one-pass, VOT supervised (A/R/EAO), DAVIS J and F.

Conventions (one place, used everywhere in the evaluation):

- Boxes are ``(x, y, w, h)`` in pixels, continuous coordinates; the centre is ``(x + w/2, y + h/2)``.
- A ground-truth row is *annotated* when its four values are finite and ``w > 0, h > 0``.
  Frames without annotation (NaN rows, missing rows, GOT-10k absence) are skipped: they
  are neither successes nor failures and do not enter any mean.
- A missing prediction (None / NaN) on an annotated frame has IoU 0 and an infinite
  centre error.

OTB success: ``success(t)`` for the ``n`` thresholds ``linspace(0, 1, n)`` is the fraction
of annotated frames that succeed at ``t``. The OTB toolkit counts ``IoU > t``, so a perfect
tracker scores 20/21 = 0.952 AUC; by default (``strict=False``) a frame succeeds when
``IoU >= t`` and ``IoU > 0`` (with a 1e-9 tolerance for float round-off), so the perfect
tracker scores 1 and a zero-overlap frame never succeeds. AUC = mean of the curve.

Precision: fraction of annotated frames with centre error <= t pixels (t = 0..max, 1 px);
normalised precision divides the x/y centre offsets by the ground-truth w/h (pysot's LaSOT
evaluation) and is reported at 0.2 on the curve 0..0.5 (51 points).

VOT: see :func:`vot_accuracy`, :func:`eao_curve`. DAVIS: see :func:`region_similarity`,
:func:`boundary_f_measure`, :func:`davis_statistics`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import cv2
import numpy as np

IOU_EPS = 1e-9


# --------------------------------------------------------------------------- boxes


def as_boxes(boxes: Sequence[Sequence[float] | None] | np.ndarray) -> np.ndarray:
    """Boxes as a float64 ``[N, 4]`` array; ``None`` entries become NaN rows."""
    if isinstance(boxes, np.ndarray):
        arr = boxes.astype(np.float64, copy=False)
        return arr.reshape(-1, 4)
    rows = [[math.nan] * 4 if b is None else [float(v) for v in b] for b in boxes]
    return np.asarray(rows, dtype=np.float64).reshape(-1, 4)


def annotated(gt: np.ndarray) -> np.ndarray:
    """Boolean ``[N]``: rows with a usable ground-truth box (finite, positive size)."""
    gt = as_boxes(gt)
    return np.isfinite(gt).all(axis=1) & (gt[:, 2] > 0) & (gt[:, 3] > 0)


def box_iou(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Element-wise IoU of two ``[N, 4]`` xywh arrays; 0 where a box is missing or empty."""
    pred, gt = as_boxes(pred), as_boxes(gt)
    x1 = np.maximum(pred[:, 0], gt[:, 0])
    y1 = np.maximum(pred[:, 1], gt[:, 1])
    x2 = np.minimum(pred[:, 0] + pred[:, 2], gt[:, 0] + gt[:, 2])
    y2 = np.minimum(pred[:, 1] + pred[:, 3], gt[:, 1] + gt[:, 3])
    with np.errstate(invalid="ignore"):
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
        iou = np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)
    valid = annotated(pred) & annotated(gt)
    return np.where(valid, np.clip(iou, 0.0, 1.0), 0.0)


def box_centers(boxes: np.ndarray) -> np.ndarray:
    boxes = as_boxes(boxes)
    return boxes[:, :2] + boxes[:, 2:] / 2.0


def center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Euclidean centre distance in pixels; ``inf`` where the prediction is missing."""
    d = np.linalg.norm(box_centers(pred) - box_centers(gt), axis=1)
    return np.where(np.isfinite(d), d, np.inf)


def normalized_center_error(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """Centre distance with x/y offsets divided by the ground-truth width/height."""
    gt = as_boxes(gt)
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = (box_centers(pred) - box_centers(gt)) / gt[:, 2:]
        d = np.linalg.norm(offset, axis=1)
    return np.where(np.isfinite(d), d, np.inf)


# --------------------------------------------------------------------------- OTB one-pass


def success_thresholds(n: int = 21) -> np.ndarray:
    return np.linspace(0.0, 1.0, n)


def success_curve(ious: np.ndarray, thresholds: np.ndarray, strict: bool = False) -> np.ndarray:
    """Fraction of frames succeeding at each IoU threshold (see module doc for the rule)."""
    ious = np.asarray(ious, dtype=np.float64).reshape(-1, 1)
    if ious.size == 0:
        return np.full(len(thresholds), np.nan)
    thr = np.asarray(thresholds, dtype=np.float64).reshape(1, -1)
    if strict:
        ok = ious > thr
    else:
        ok = (ious >= thr - IOU_EPS) & (ious > 0)
    return ok.mean(axis=0)


def auc(curve: np.ndarray) -> float:
    """Area under a success curve sampled at equally spaced thresholds on [0, 1] (OTB: mean)."""
    curve = np.asarray(curve, dtype=np.float64)
    return float(np.mean(curve)) if curve.size else math.nan


def precision_curve(errors: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Fraction of frames with error <= each threshold."""
    errors = np.asarray(errors, dtype=np.float64).reshape(-1, 1)
    if errors.size == 0:
        return np.full(len(thresholds), np.nan)
    return (errors <= np.asarray(thresholds, dtype=np.float64).reshape(1, -1)).mean(axis=0)


def value_at(curve: np.ndarray, thresholds: np.ndarray, t: float) -> float:
    """The curve value at the threshold closest to ``t``."""
    if len(curve) == 0:
        return math.nan
    return float(curve[int(np.argmin(np.abs(np.asarray(thresholds) - t)))])


@dataclass
class OPEResult:
    """One-pass evaluation of one sequence (only annotated frames after the init frame)."""

    frames: int
    ious: np.ndarray
    success: np.ndarray
    precision: np.ndarray
    norm_precision: np.ndarray

    def summary(self, precision_at: float, norm_precision_at: float, precision_thresholds: np.ndarray,
                norm_thresholds: np.ndarray) -> dict[str, float]:
        return {
            "frames": self.frames,
            "auc": auc(self.success),
            "mean_iou": float(np.mean(self.ious)) if self.frames else math.nan,
            "precision": value_at(self.precision, precision_thresholds, precision_at),
            "norm_precision": value_at(self.norm_precision, norm_thresholds, norm_precision_at),
            "norm_precision_auc": float(np.mean(self.norm_precision)) if self.frames else math.nan,
        }


def precision_thresholds(max_px: float = 50.0) -> np.ndarray:
    return np.arange(0.0, float(max_px) + 1e-9, 1.0)


def norm_precision_thresholds(max_norm: float = 0.5, n: int = 51) -> np.ndarray:
    return np.linspace(0.0, float(max_norm), n)


def evaluate_ope(pred: np.ndarray, gt: np.ndarray, skip: np.ndarray | None = None, *,
                 n_success: int = 21, strict: bool = False, precision_max: float = 50.0,
                 norm_precision_max: float = 0.5) -> OPEResult:
    """OTB curves over annotated frames; ``skip`` marks frames excluded (e.g. the init frame)."""
    pred, gt = as_boxes(pred), as_boxes(gt)
    use = annotated(gt)
    if skip is not None:
        use &= ~np.asarray(skip, dtype=bool)
    p, g = pred[use], gt[use]
    ious = box_iou(p, g)
    return OPEResult(
        frames=int(use.sum()),
        ious=ious,
        success=success_curve(ious, success_thresholds(n_success), strict),
        precision=precision_curve(center_error(p, g), precision_thresholds(precision_max)),
        norm_precision=precision_curve(normalized_center_error(p, g), norm_precision_thresholds(norm_precision_max)),
    )


# --------------------------------------------------------------------------- VOT supervised


@dataclass
class VOTRecord:
    """What the supervised (re-initialising) run produced for one sequence.

    ``overlaps[i]``: IoU on frame i (NaN where unannotated or not tracked: the init frame,
    skipped frames after a failure); ``inits`` / ``failures``: frame indices, ascending.
    """

    overlaps: np.ndarray
    inits: list[int]
    failures: list[int]


def vot_accuracy(record: VOTRecord, burn_in: int = 10) -> tuple[float, int]:
    """Mean IoU over tracked annotated frames, excluding ``burn_in`` frames from each init.

    Returns ``(accuracy, frames_used)``. The burn-in window ``[init, init + burn_in)`` is
    counted in video frames and applies to every initialisation, the first one included
    (as in the VOT toolkit). Failure frames (IoU 0) count in accuracy.
    """
    ov = np.asarray(record.overlaps, dtype=np.float64).copy()
    for start in record.inits:
        ov[start:start + max(burn_in, 0)] = np.nan
    valid = np.isfinite(ov)
    if not valid.any():
        return math.nan, 0
    return float(ov[valid].mean()), int(valid.sum())


def vot_reliability(failures: int, frames: int, s: float = 100.0) -> float:
    """VOT robustness as reliability ``exp(-s * F / N)`` (probability of tracking s frames)."""
    return math.exp(-s * failures / frames) if frames > 0 else math.nan


def eao_fragments(record: VOTRecord) -> list[tuple[np.ndarray, bool]]:
    """Split a supervised run at its (re-)initialisations into EAO fragments.

    A fragment holds the overlaps of the *annotated* frames tracked from one init (the init
    frame itself excluded: the tracker is given the answer there) up to and including the
    failure that ends it. Returns ``(overlaps, ended_by_failure)`` per fragment.
    """
    ov = np.asarray(record.overlaps, dtype=np.float64)
    failures = sorted(record.failures)
    out: list[tuple[np.ndarray, bool]] = []
    for k, start in enumerate(record.inits):
        stop_next = record.inits[k + 1] if k + 1 < len(record.inits) else len(ov)
        fail = next((f for f in failures if start < f < stop_next), None)
        end = fail + 1 if fail is not None else stop_next
        seg = ov[start + 1:end]
        out.append((seg[np.isfinite(seg)], fail is not None))
    return out


def eao_curve(fragments: Sequence[tuple[np.ndarray, bool]], max_length: int | None = None) -> np.ndarray:
    """Expected average overlap Phi(Ns) for Ns = 1..max_length (index Ns-1).

    Standard VOT construction: each fragment is cut/padded to Ns. A fragment that ended in a
    failure is padded with zeros (the tracker is known to have lost the target); one that
    reached the end of the sequence is padded with "unknown" and only used for lengths it
    covers. Phi(Ns) = mean over usable fragments of their average overlap over Ns frames.
    Simplification vs. the VOT toolkit: fragments are weighted equally (no per-sequence
    weights) and lengths count annotated frames, so sparse keyframe annotation works.
    """
    if max_length is None:
        max_length = max((len(f) for f, _ in fragments), default=0)
    curve = np.full(max_length, np.nan)
    if max_length == 0:
        return curve
    table = np.full((len(fragments), max_length), np.nan)
    for row, (frag, failed) in enumerate(fragments):
        n = min(len(frag), max_length)
        if failed:
            table[row, :] = 0.0
        table[row, :n] = frag[:n]
    for ns in range(1, max_length + 1):
        usable = np.isfinite(table[:, ns - 1])
        if usable.any():
            curve[ns - 1] = float(table[usable, :ns].mean(axis=1).mean())
    return curve


def eao_range(sequence_lengths: Sequence[int], low: int = 0, high: int = 0) -> tuple[int, int]:
    """The length interval [low, high] the EAO score averages over (annotated frames).

    Given explicitly (VOT2016: 108..371), or automatically: the 10th..90th percentile of the
    evaluated sequence lengths. This stands in for VOT's rule (the interval around the mode
    of a kernel density estimate of sequence lengths where the density exceeds half its
    peak) on small development sets where a KDE is meaningless.
    """
    if low > 0 and high >= low:
        return int(low), int(high)
    lengths = [n for n in sequence_lengths if n > 0]
    if not lengths:
        return 1, 1
    lo = max(1, int(math.floor(np.percentile(lengths, 10))))
    hi = max(lo, int(math.ceil(np.percentile(lengths, 90))))
    return lo, hi


def eao_score(curve: np.ndarray, low: int, high: int) -> float:
    """Mean of the EAO curve over lengths ``low..high`` (lengths with no data are skipped)."""
    seg = np.asarray(curve, dtype=np.float64)[max(low, 1) - 1:high]
    seg = seg[np.isfinite(seg)]
    return float(seg.mean()) if seg.size else math.nan


# --------------------------------------------------------------------------- DAVIS


def region_similarity(pred: np.ndarray, gt: np.ndarray) -> float:
    """DAVIS J: mask IoU; 1 when both masks are empty."""
    p, g = np.asarray(pred, dtype=bool), np.asarray(gt, dtype=bool)
    union = np.logical_or(p, g).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(p, g).sum() / union)


def mask_boundary(mask: np.ndarray) -> np.ndarray:
    """One-pixel inner boundary of a binary mask (mask minus its 3x3 erosion).

    The image border is not a boundary (replicated border): an object cut by the frame edge
    has no contour along it, in prediction and ground truth alike.
    """
    m = np.asarray(mask, dtype=np.uint8)
    eroded = cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    return (m > 0) & (eroded == 0)


def bound_pixels(shape: tuple[int, ...], bound_th: float = 0.008) -> int:
    """DAVIS boundary tolerance in pixels: ``ceil(bound_th * diagonal)`` if bound_th < 1."""
    if bound_th >= 1:
        return int(round(bound_th))
    return int(math.ceil(bound_th * math.hypot(shape[0], shape[1])))


def _dilate_disk(boundary: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return boundary
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(boundary.astype(np.uint8), disk) > 0


def boundary_f_measure(pred: np.ndarray, gt: np.ndarray, bound_th: float = 0.008) -> float:
    """DAVIS F: boundary precision/recall with a disk tolerance, harmonic mean.

    Both boundaries empty: 1. One empty: 0 (precision or recall is 0).
    """
    p, g = mask_boundary(pred), mask_boundary(gt)
    radius = bound_pixels(p.shape, bound_th)
    n_p, n_g = int(p.sum()), int(g.sum())
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0
    precision = float((p & _dilate_disk(g, radius)).sum()) / n_p
    recall = float((g & _dilate_disk(p, radius)).sum()) / n_g
    if precision + recall == 0:
        return 0.0
    return 2.0 * precision * recall / (precision + recall)


def davis_statistics(values: Sequence[float], n_bins: int = 4) -> dict[str, float]:
    """DAVIS mean, recall (fraction > 0.5) and decay (first minus last of 4 bins, DAVIS binning)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return {"mean": math.nan, "recall": math.nan, "decay": math.nan}
    ids = np.round(np.linspace(1, len(x), n_bins + 1) + 1e-10).astype(int) - 1
    bins = [x[ids[i]:ids[i + 1] + 1] for i in range(n_bins)]
    decay = float(np.mean(bins[0]) - np.mean(bins[-1])) if len(x) >= n_bins else math.nan
    return {"mean": float(x.mean()), "recall": float((x > 0.5).mean()), "decay": decay}


def box_to_mask(box: Sequence[float] | None, shape: tuple[int, int]) -> np.ndarray:
    """A filled box as a boolean mask (pixel centres inside the box)."""
    mask = np.zeros(shape[:2], dtype=bool)
    if box is None or not np.isfinite(np.asarray(box, dtype=np.float64)).all():
        return mask
    x, y, w, h = (float(v) for v in box)
    x0, y0 = max(int(math.ceil(x - 0.5)), 0), max(int(math.ceil(y - 0.5)), 0)
    x1, y1 = min(int(math.ceil(x + w - 0.5)), shape[1]), min(int(math.ceil(y + h - 0.5)), shape[0])
    if x1 > x0 and y1 > y0:
        mask[y0:y1, x0:x1] = True
    return mask


def mask_to_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """Tight pixel box ``(x, y, w, h)`` of a binary mask (pixel (c, r) covers [c, c+1)); None if empty."""
    ys, xs = np.nonzero(np.asarray(mask))
    if xs.size == 0:
        return None
    x0, y0 = int(xs.min()), int(ys.min())
    return (float(x0), float(y0), float(xs.max() + 1 - x0), float(ys.max() + 1 - y0))
