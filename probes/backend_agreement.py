#!/usr/bin/env python3
"""Do torch and onnxruntime give the same track? Per-keyframe IoU between the two backends' boxes
on the real `val` clips (issue 20 item 4: "the same clip must give the same track").

    PYTHONPATH=$PWD .venv/bin/python probes/backend_agreement.py [--clips mbt_cube ...] \
        [--set tracker.center_from=soft ...] [--workers 2] [--out DIR] [--perturb 1e-3]

Each (clip, backend) is one one-pass run of the evaluation harness (cyclesiam_train.eval: the shipped
model, today's defaults plus --set, masks off, one thread per process), initialised on frame 0.
Prints per clip the IoU between the two backends' boxes on the present box keyframes (mean, min),
each backend's success AUC, and the mean / worst over the clips. `--perturb D` adds a third run,
torch with the init box shifted right by D px: the tracker's own sensitivity to a tiny change,
with no second backend involved (printed as the torch / torch+D IoU).
--out keeps each run's boxes as JSON (a re-run with the same --out and --set reuses them).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "annotations" / "real"
CHECKPOINT = ROOT / "models" / "cyclesiam_default.safetensors"
BACKENDS = ("torch", "onnxruntime")


def run_one(clip: str, backend: str, sets: list[str], shift: float) -> dict[str, Any]:
    """One one-pass run -> {"boxes": [N, 4] (NaN where none), "auc": success AUC, "present": keyframes}."""
    from cyclesiam_train.config import load_config, parse_dotted
    from cyclesiam_train.eval.baselines import SiamTrackerAdapter
    from cyclesiam_train.eval.datasets import load_dataset
    from cyclesiam_train.eval.runner import run_ope, score_ope

    base = [f"runtime.backend={backend}", "runtime.device=cpu", "runtime.threads=1", "tracker.mask_enabled=false"]
    cfg = load_config(None, parse_dotted(base + sets))
    (seq,) = [s for s in load_dataset(DATASET, "real", split="val") if s.name == clip]
    if shift:
        seq.boxes = seq.boxes.copy()
        seq.boxes[0, 0] += shift
    run = run_ope(SiamTrackerAdapter(str(CHECKPOINT), cfg), seq)
    summary, _ = score_ope(run, seq, cfg.eval)
    gt = seq.boxes[:len(seq)]
    present = np.flatnonzero(np.isfinite(gt).all(axis=1))
    return {"boxes": run.boxes.tolist(), "auc": float(summary["auc"]), "present": present[present > 0].tolist()}


def _job(args: tuple[str, str, list[str], float, str]) -> tuple[str, str, dict[str, Any]]:
    clip, label, sets, shift, out = args
    backend = "torch" if label.startswith("torch") else label
    path = Path(out) / f"{clip}.{label}.json" if out else None
    if path is not None and path.exists():
        return clip, label, json.loads(path.read_text())
    result = run_one(clip, backend, sets, shift)
    if path is not None:
        path.write_text(json.dumps(result))
    return clip, label, result


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of matching rows of two [N, 4] xywh arrays (0 where either is missing)."""
    x1, y1 = np.maximum(a[:, 0], b[:, 0]), np.maximum(a[:, 1], b[:, 1])
    x2 = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2])
    y2 = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
    return np.where(np.isfinite(iou), iou, 0.0)


def val_clips() -> list[str]:
    from cyclesiam_train.eval.datasets import read_key_values

    return sorted(p.name for p in DATASET.iterdir()
                  if (p / "source.txt").is_file() and read_key_values(p / "source.txt").get("split") == "val")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", nargs="+", default=None, help="val clips (default: all)")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="config override, e.g. tracker.lr=0.2")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--perturb", type=float, default=0.0, help="also torch with the init box shifted by this (px)")
    parser.add_argument("--out", type=Path, default=None, help="keep/reuse each run's boxes here")
    args = parser.parse_args(argv)
    clips = args.clips or val_clips()
    labels = list(BACKENDS) + ([f"torch+{args.perturb:g}"] if args.perturb else [])
    out = ""
    if args.out:
        key = hashlib.sha256(json.dumps(sorted(args.sets)).encode()).hexdigest()[:10]
        (args.out / key).mkdir(parents=True, exist_ok=True)
        (args.out / key / "sets.json").write_text(json.dumps(args.sets))
        out = str(args.out / key)
    jobs = [(c, lab, args.sets, args.perturb if "+" in lab else 0.0, out) for c in clips for lab in labels]
    with ProcessPoolExecutor(max_workers=max(1, args.workers)) as pool:
        done = list(pool.map(_job, jobs))
    runs = {(c, lab): r for c, lab, r in done}
    print(f"settings: defaults {' '.join(args.sets)}")
    head = f"{'clip':<20} {'keyframes':>9} {'IoU mean':>9} {'IoU min':>8} {'AUC torch':>10} {'AUC onnx':>9}"
    print(head + (f" {'torch/+d mean':>14} {'min':>6}" if args.perturb else ""))
    means, mins, extra = [], [], []
    for c in clips:
        t, o = runs[(c, "torch")], runs[(c, "onnxruntime")]
        keys = np.asarray(t["present"], dtype=int)
        iou = box_iou(np.asarray(t["boxes"])[keys], np.asarray(o["boxes"])[keys])
        means.append(iou.mean())
        mins.append(iou.min())
        line = f"{c:<20} {len(keys):>9} {iou.mean():>9.3f} {iou.min():>8.3f} {t['auc']:>10.3f} {o['auc']:>9.3f}"
        if args.perturb:
            p = runs[(c, labels[2])]
            iou_p = box_iou(np.asarray(t["boxes"])[keys], np.asarray(p["boxes"])[keys])
            extra.append(iou_p.mean())
            line += f" {iou_p.mean():>14.3f} {iou_p.min():>6.3f}"
        print(line)
    aucs_t = np.mean([runs[(c, "torch")]["auc"] for c in clips])
    aucs_o = np.mean([runs[(c, "onnxruntime")]["auc"] for c in clips])
    print(f"{'mean over clips':<20} {'':>9} {np.mean(means):>9.3f} {np.mean(mins):>8.3f} {aucs_t:>10.4f} {aucs_o:>9.4f}"
          + (f" {np.mean(extra):>14.3f}" if extra else ""))
    worst = int(np.argmin(means))
    print(f"worst clip: {clips[worst]} (IoU mean {means[worst]:.3f}); lowest single keyframe IoU {min(mins):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
