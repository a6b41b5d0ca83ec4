#!/usr/bin/env python3
"""Where does a one-pass track leave its target among look-alikes? (issue 20, the zebrafish clip)

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python probes/lookalike_jumps.py --clip idtrackerai_test_A \
        --out /work/runs/zebra/diag [--set tracker.X=V ...] [--sheet]

One one-pass run of the evaluation harness (the shipped model, onnxruntime, one thread, masks off,
today's defaults plus --set) with the tracker's search wrapped, so every frame records: the box,
raw score, state, template similarity, and the strongest local peaks of that frame's score map
(image pixels, raw score, windowed+penalised score; with tracker.template_bank, of the winning kernel).
The clip's moving blobs (difference to the
median frame; for a clip with a static background such as the fish tank) say what else is there.
Writes OUT/frames.json and prints, per present keyframe, the IoU with the annotation, the distance
of the track and of the annotation to the nearest other blob, and every frame where the track's
centre moves by more than half a target size (a jump): from where, to what.
--sheet writes OUT/sheet_*.png: keyframes with the annotation (green), the track (red), the peaks
(yellow, radius ~ score) and the blobs (blue).
"""

from __future__ import annotations

import argparse
import json
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "annotations" / "real"
CHECKPOINT = ROOT / "models" / "cyclesiam_default.safetensors"


def score_peaks(rows: Any, row: int, top: int = 6) -> list[dict[str, float]]:
    """The strongest local peaks (max over anchors) of one search row, image pixels."""
    from cyclesiam.distractors import cell_centers, local_peaks

    r = rows.resp.score_size
    raw = rows.scores[row].reshape(-1, r, r).max(axis=0)
    pscore = rows.post.pscore[row].reshape(-1, r, r).max(axis=0)
    ii, jj = local_peaks(raw, 0.3)
    order = np.argsort(-raw[ii, jj])[:top]
    cells = cell_centers(rows.resp.anchors_np, r).reshape(r, r, 2)
    out = []
    for k in order:
        i, j = int(ii[k]), int(jj[k])
        x, y = rows.centers[row] + cells[i, j] / rows.scale_z[row]
        out.append({"x": float(x), "y": float(y), "score": float(raw[i, j]), "pscore": float(pscore[i, j])})
    return out


def score_near(rows: Any, point: np.ndarray, radius: float) -> float:
    """The best raw score (max over anchors) of search row 0's cells within `radius` image pixels of `point`."""
    from cyclesiam.distractors import cell_centers

    r = rows.resp.score_size
    raw = rows.scores[0].reshape(-1, r, r).max(axis=0).reshape(-1)
    cells = rows.centers[0] + cell_centers(rows.resp.anchors_np, r) / rows.scale_z[0]
    stride = float(rows.resp.anchors_np[1, 0] - rows.resp.anchors_np[0, 0])
    near = np.hypot(*(cells - point).T) <= max(radius, 0.75 * stride / rows.scale_z[0])
    return float(raw[near].max()) if near.any() else float("nan")


def blobs(frames: list[np.ndarray], min_area: int = 150) -> list[list[list[float]]]:
    """Per frame the boxes (x, y, w, h) of regions far from the median frame (moving things)."""
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_BGR2GRAY) for f in frames[::5]])
    background = np.median(grey, axis=0).astype(np.int16)
    out = []
    for f in frames:
        diff = np.abs(cv2.cvtColor(f, cv2.COLOR_BGR2GRAY).astype(np.int16) - background).astype(np.uint8)
        fg = cv2.morphologyEx((diff > 25).astype(np.uint8), cv2.MORPH_CLOSE, np.ones((5, 5), np.uint8))
        n, _, stats, _ = cv2.connectedComponentsWithStats(fg)
        out.append([[float(v) for v in stats[k, :4]] for k in range(1, n) if stats[k, 4] >= min_area])
    return out


def open_clip(clip: str, sets: list[str]) -> tuple[Any, Any]:
    """The probe's config (onnxruntime, one thread, masks off, plus `sets`) and the real clip."""
    from cyclesiam_train.config import load_config, parse_dotted
    from cyclesiam_train.eval.datasets import load_dataset

    base = ["runtime.backend=onnxruntime", "runtime.device=cpu", "runtime.threads=1", "tracker.mask_enabled=false"]
    (seq,) = [s for s in load_dataset(DATASET, "real") if s.name == clip]
    return load_config(None, parse_dotted(base + sets)), seq


@contextmanager
def captured_search_rows() -> Iterator[list[Any]]:
    """The rows the tracker decides on (the winning kernel's), appended at every search inside the block."""
    import cyclesiam.tracker as tracker_module

    original, captured = tracker_module.bank_search, []

    def spy(*args: Any, **kwargs: Any) -> Any:
        captured.append(original(*args, **kwargs))
        return captured[-1]

    tracker_module.bank_search = spy
    try:
        yield captured
    finally:
        tracker_module.bank_search = original


def run(clip: str, sets: list[str], start: int = 0) -> tuple[list[dict[str, Any]], Any, list[np.ndarray]]:
    from cyclesiam_train.eval.baselines import SiamTrackerAdapter

    cfg, seq = open_clip(clip, sets)
    records, frames = [], []
    with captured_search_rows() as captured:
        adapter = SiamTrackerAdapter(str(CHECKPOINT), cfg)
        for i, frame in seq.iter_frames():
            frames.append(frame)
            if i <= start:
                adapter.init(frame, tuple(seq.boxes[start if i == start else 0]))
                records.append({"frame": i, "box": [float(v) for v in seq.boxes[start if i == start else 0]],
                                "score": 1.0})
                continue
            captured.clear()
            box, score, _ = adapter.update(frame)
            (target,) = adapter._tracker._targets.values()
            rows = captured[-1]
            records.append({"frame": i, "box": list(box), "score": score, "state": str(target.state),
                            "similarity": target.similarity, "peaks": score_peaks(rows, 0),
                            "crop_center": rows.centers[0].tolist(),
                            "crop_side": float(rows.search_size / rows.scale_z[0]),
                            "best_pscore": float(rows.post.best_pscore()[0])})
    return records, seq, frames


def orientation(mask: np.ndarray | None) -> float:
    """Axis angle (degrees, [0, 180)) of a binary mask's principal axis (NaN without one)."""
    if mask is None or not np.any(mask):
        return float("nan")
    ys, xs = np.nonzero(mask)
    cov = np.cov(np.stack([xs, ys]).astype(np.float64))
    vals, vecs = np.linalg.eigh(cov)
    vx, vy = vecs[:, np.argmax(vals)]
    return float(np.degrees(np.arctan2(vy, vx)) % 180.0)


def at_annotation(clip: str, sets: list[str], template_frame: int) -> None:
    """With the template of `template_frame`, search every present keyframe from its annotated box:
    the target's own score (best raw score within 0.3 target sizes of the annotated centre) against the
    strongest peak farther than one target size (a look-alike or background), by orientation change."""
    from cyclesiam_train.eval.baselines import SiamTrackerAdapter

    cfg, seq = open_clip(clip, sets)
    gt = seq.boxes[:len(seq)]
    frames = dict(seq.iter_frames())
    with captured_search_rows() as captured:
        adapter = SiamTrackerAdapter(str(CHECKPOINT), cfg)
        adapter.init(frames[template_frame], tuple(gt[template_frame]))
        tid = adapter._target
        angle0 = orientation(seq.mask(template_frame))
        print(f"template: frame {template_frame}, axis {angle0:.0f} deg")
        print("keyframe  turn(deg)  own score  best far peak  far/own")
        for k in np.flatnonzero(np.isfinite(gt).all(axis=1)):
            if k == template_frame:
                continue
            adapter._tracker.set_box(tid, gt[k])
            captured.clear()
            adapter._tracker.track(frames[k])
            peaks = score_peaks(captured[0], 0, top=40)
            c, size = center(gt[k].tolist()), float(np.sqrt(gt[k][2] * gt[k][3]))
            gaps = [float(np.hypot(p["x"] - c[0], p["y"] - c[1])) for p in peaks]
            own = score_near(captured[0], c, 0.3 * size)
            far = max([p["score"] for p, g in zip(peaks, gaps) if g > size] or [0.0])
            turn = abs((orientation(seq.mask(k)) - angle0 + 90.0) % 180.0 - 90.0)
            print(f"{k:8d} {turn:9.0f} {own:10.2f} {far:14.2f} {far / max(own, 1e-3):8.2f}")


def center(box: list[float]) -> np.ndarray:
    return np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])


def iou(a: list[float], b: list[float]) -> float:
    x0, y0 = max(a[0], b[0]), max(a[1], b[1])
    x1, y1 = min(a[0] + a[2], b[0] + b[2]), min(a[1] + a[3], b[1] + b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    return inter / (a[2] * a[3] + b[2] * b[3] - inter)


def nearest_blob(point: np.ndarray, frame_blobs: list[list[float]], exclude: np.ndarray | None) -> float:
    """Distance from point to the nearest blob centre (not the blob containing `exclude`)."""
    gaps = []
    for b in frame_blobs:
        c = center(b)
        if exclude is not None and b[0] <= exclude[0] <= b[0] + b[2] and b[1] <= exclude[1] <= b[1] + b[3]:
            continue
        gaps.append(float(np.hypot(*(c - point))))
    return min(gaps) if gaps else float("inf")


def peak_text(peaks: list[dict[str, float]]) -> str:
    return ", ".join(f"({p['x']:.0f},{p['y']:.0f}) {p['score']:.2f}/{p['pscore']:.2f}" for p in peaks)


def trace(records: list[dict[str, Any]], frame_blobs: list[list[list[float]]], first: int, last: int) -> None:
    """Every frame of [first, last]: centre, score, state, similarity, step, gap to a blob, peaks."""
    for prev, rec in zip(records[first - 1:last], records[first:last + 1]):
        c = center(rec["box"])
        step = float(np.hypot(*(c - center(prev["box"]))))
        peaks = peak_text(rec.get("peaks", [])[:3])
        print(f"  {rec['frame']:4d} ({c[0]:.0f},{c[1]:.0f}) {rec['box'][2]:.0f}x{rec['box'][3]:.0f} "
              f"s {rec['score']:.2f} "
              f"{rec.get('state', '-'):8s} sim {rec.get('similarity', float('nan')):.2f} step {step:5.1f} "
              f"blob gap {nearest_blob(c, frame_blobs[rec['frame']], None):5.1f} | {peaks}")


def report(records: list[dict[str, Any]], seq: Any, frame_blobs: list[list[list[float]]], start: int = 0) -> None:
    gt = seq.boxes[:len(seq)].copy()
    gt[:start] = np.nan
    print("keyframe  IoU   score  state     sim   track->gt  gt->other blob  target size")
    for i in np.flatnonzero(np.isfinite(gt).all(axis=1)):
        rec, g = records[i], gt[i].tolist()
        size = float(np.sqrt(g[2] * g[3]))
        print(f"{i:8d} {iou(rec['box'], g):5.2f} {rec['score']:6.3f}  {rec.get('state', '-'):8s} "
              f"{rec.get('similarity', float('nan')):5.2f} {np.hypot(*(center(rec['box']) - center(g))):9.1f} "
              f"{nearest_blob(center(g), frame_blobs[i], center(g)):14.1f} {size:10.1f}")
    print("\njumps (centre moves > 0.5 target size in one frame):")
    for prev, rec in zip(records, records[1:]):
        if "peaks" not in rec:
            continue
        step = float(np.hypot(*(center(rec["box"]) - center(prev["box"]))))
        size = float(np.sqrt(prev["box"][2] * prev["box"][3]))
        if step > 0.5 * size:
            peaks = peak_text(rec["peaks"][:4])
            gap = nearest_blob(center(rec["box"]), frame_blobs[rec["frame"]], None)
            print(f"  frame {rec['frame']}: {step:.0f} px ({step / size:.1f} sizes), {gap:.0f} px from a blob; "
                  f"score {rec['score']:.3f} "
                  f"{rec['state']} sim {rec['similarity']:.2f}; peaks raw/pscore {peaks}")


def sheet(records: list[dict[str, Any]], seq: Any, frames: list[np.ndarray], frame_blobs: Any, out: Path,
          which: list[int]) -> None:
    tiles = []
    for i in which:
        image = frames[i].copy()
        for b in frame_blobs[i]:
            cv2.rectangle(image, (int(b[0]), int(b[1])), (int(b[0] + b[2]), int(b[1] + b[3])), (255, 0, 0), 1)
        for p in records[i].get("peaks", []):
            cv2.circle(image, (int(p["x"]), int(p["y"])), int(3 + 12 * p["score"]), (0, 255, 255), 1)
        g = seq.boxes[i]
        if np.isfinite(g).all():
            cv2.rectangle(image, (int(g[0]), int(g[1])), (int(g[0] + g[2]), int(g[1] + g[3])), (0, 255, 0), 2)
        b = records[i]["box"]
        cv2.rectangle(image, (int(b[0]), int(b[1])), (int(b[0] + b[2]), int(b[1] + b[3])), (0, 0, 255), 2)
        c = center(b).astype(int)
        x0, y0 = max(0, c[0] - 200), max(0, c[1] - 150)
        tile = cv2.resize(image[y0:y0 + 300, x0:x0 + 400], (400, 300))
        cv2.putText(tile, f"{i} s={records[i]['score']:.2f} {records[i].get('state', '')}", (5, 20),
                    cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
        tiles.append(tile)
    while len(tiles) % 4:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[k:k + 4]) for k in range(0, len(tiles), 4)]
    cv2.imwrite(str(out), np.vstack(rows))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--clip", default="idtrackerai_test_A")
    p.add_argument("--out", type=Path)
    p.add_argument("--at-gt", type=int, help="only search each keyframe from its annotated box with this "
                                                "frame's template (own score against look-alikes, by turn)")
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--sheet", action="store_true")
    p.add_argument("--trace", action="append", default=[], help="print every frame of FIRST-LAST")
    p.add_argument("--start", type=int, default=0, help="initialise on this (annotated) frame, as a VOT re-init does")
    p.add_argument("--frames", help="comma list of frames for the sheet (default: the present keyframes)")
    args = p.parse_args()
    if args.at_gt is not None:
        at_annotation(args.clip, args.set, args.at_gt)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    records, seq, frames = run(args.clip, args.set, args.start)
    frame_blobs = blobs(frames)
    (args.out / "frames.json").write_text(json.dumps({"records": records, "blobs": frame_blobs}))
    report(records, seq, frame_blobs, args.start)
    for span in args.trace:
        first, last = (int(v) for v in span.split("-"))
        print(f"\ntrace {span}:")
        trace(records, frame_blobs, max(first, args.start + 1), last)
    if args.sheet:
        gt = seq.boxes[:len(seq)]
        which = ([int(v) for v in args.frames.split(",")] if args.frames
                 else np.flatnonzero(np.isfinite(gt).all(axis=1)).tolist())
        for k in range(0, len(which), 16):
            sheet(records, seq, frames, frame_blobs, args.out / f"sheet_{k // 16}.png", which[k:k + 16])


if __name__ == "__main__":
    main()
