"""Label-free drift of the tracker on real footage: track forward, then back (docs/MODEL.md, "Scale").

From a label-free box (the training seeds' `random_box`, contrast-scored) on a random frame of
a real clip, the tracker follows `--length` frames forward and then the same frames backward to
the start. A tracker without bias ends where it began, so the round trip's size ratio and
centre error measure its drift without any annotation. Prints per clip the median and mean of
log(final size / start size) (a shrinking tracker gives < 0), the share of round trips that
shrank by more than 10%, and the median centre error as a fraction of the start size.

    python bench/cycle_drift.py --checkpoint models/cyclesiam_default.safetensors \
        --clips data/train_frames/tree data/train_frames/cityCC0 [--set tracker.KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cyclesiam_train.config import Config, load_config, parse_dotted
from cyclesiam.sources import ImageFolderSource
from cyclesiam.tracker import build_tracker
from cyclesiam_train.eval.datasets import read_image
from cyclesiam_train.seeds import random_box


def round_trip(tracker, frames: list[np.ndarray], box: tuple[float, float, float, float]) -> tuple[float, float]:
    """(log size ratio, centre error / start size) after tracking `frames` forward and back."""
    tracker.clear()
    tracker.add_target(frames[0], box)
    result = None
    for frame in frames[1:] + frames[-2::-1]:
        (result,) = tracker.track(frame)
    x, y, w, h = box
    fx, fy, fw, fh = result.bbox
    size = np.sqrt(w * h)
    centre_error = np.hypot(fx + fw / 2 - (x + w / 2), fy + fh / 2 - (y + h / 2)) / size
    return float(np.log(np.sqrt(fw * fh) / size)), float(centre_error)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--clips", nargs="+", required=True, help="image folders of real clips")
    ap.add_argument("--length", type=int, default=30, help="frames forward (and as many back)")
    ap.add_argument("--trips", type=int, default=12, help="round trips per clip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = ap.parse_args()

    cfg: Config = load_config(None, parse_dotted(args.set))
    cfg.runtime.device, cfg.tracker.mask_enabled = "cpu", False
    tracker = build_tracker(cfg, args.checkpoint)
    seeds = cfg.train.seeds
    seeds.random_score, seeds.random_candidates = "contrast", 32  # the shipped model's seeds
    rng = np.random.default_rng(args.seed)
    print(f"{'clip':<12}{'trips':>6}{'median log size':>17}{'mean':>8}{'shrank >10%':>13}{'grew >10%':>11}"
          f"{'centre err':>12}")
    all_logs, all_errors = [], []
    for clip in args.clips:
        files = ImageFolderSource(clip).files
        logs, errors = [], []
        for _ in range(args.trips):
            start = int(rng.integers(0, len(files) - args.length))
            frames = [read_image(f) for f in files[start:start + args.length]]
            box = random_box(frames[0], rng, seeds)
            log_size, error = round_trip(tracker, frames, tuple(float(v) for v in box))
            logs.append(log_size)
            errors.append(error)
        logs_a = np.array(logs)
        print(f"{Path(clip).name:<12}{len(logs):>6}{np.median(logs_a):>17.3f}{logs_a.mean():>8.3f}"
              f"{(logs_a < np.log(0.9)).mean():>13.2f}{(logs_a > np.log(1.1)).mean():>11.2f}{np.median(errors):>12.3f}")
        all_logs += logs
        all_errors += errors
    logs_a = np.array(all_logs)
    print(f"{'all':<12}{len(logs_a):>6}{np.median(logs_a):>17.3f}{logs_a.mean():>8.3f}"
          f"{(logs_a < np.log(0.9)).mean():>13.2f}{(logs_a > np.log(1.1)).mean():>11.2f}{np.median(all_errors):>12.3f}")


if __name__ == "__main__":
    main()
