"""Label-free drift of the tracker on real footage: track forward, then back (docs/MODEL.md, "Scale").

From a label-free box (the training seeds' `random_box`, contrast-scored) on a random frame of
a real clip, the tracker follows `--length` frames forward and then the same frames backward to
the start. A tracker without bias ends where it began, so the round trip's size ratio and
centre error measure its drift without any annotation (cyclesiam_train/label_free_check.py, the
same check cyclesiam-adapt runs). Prints per clip the median and mean of log(final size / start
size) (a shrinking tracker gives < 0), the share of round trips that shrank by more than 10%, the
median centre error as a fraction of the start size, and the mean round-trip IoU.

    python probes/cycle_drift.py --checkpoint models/cyclesiam_default.safetensors \
        --clips data/train_frames/tree data/train_frames/cityCC0 [--set tracker.KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cyclesiam.config import parse_dotted
from cyclesiam.sources import ImageFolderSource
from cyclesiam.build import build_tracker
from cyclesiam_train.label_free_check import eval_config, plan_trips, run_trips, seed_config, summary

HEADER = (f"{'clip':<12}{'trips':>6}{'median log size':>17}{'mean':>8}{'shrank >10%':>13}{'grew >10%':>11}"
          f"{'centre err':>12}{'IoU':>7}")


def row(name: str, s: dict[str, float]) -> str:
    return (f"{name:<12}{s['trips']:>6}{s['median_log_size']:>17.3f}{s['mean_log_size']:>8.3f}{s['shrank']:>13.2f}"
            f"{s['grew']:>11.2f}{s['centre_error']:>12.3f}{s['iou']:>7.3f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--clips", nargs="+", required=True, help="image folders of real clips")
    ap.add_argument("--length", type=int, default=30, help="frames forward (and as many back)")
    ap.add_argument("--trips", type=int, default=12, help="round trips per clip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shift", type=float, default=0.0,
                    help="known translation of the way back, x box size (0: plain round trips, as before)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = ap.parse_args()

    cfg = eval_config(parse_dotted(args.set))
    tracker = build_tracker(cfg, args.checkpoint)
    sources = [ImageFolderSource(clip) for clip in args.clips]
    trips = plan_trips(sources, [(0, len(s)) for s in sources], args.trips, args.length,
                       np.random.default_rng(args.seed), seed_config(cfg.train.seeds), args.shift)
    results = run_trips(tracker, sources, trips)
    print(HEADER)
    for k, clip in enumerate(args.clips):
        print(row(Path(clip).name, summary([r for r, t in zip(results, trips) if t.recording == k])))
    print(row("all", summary(results)))


if __name__ == "__main__":
    main()
