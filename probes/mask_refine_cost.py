"""Whole per-frame path (box + mask, 640x480, one target) with two tracker.mask_refine values side by side.

Two trackers of the shipped model track the same frames (data/mbt_cube, resized to 640x480, the
box of `cyclesiam-bench`), alternating which goes first on each frame, so host load falls on both
alike. Prints per variant: p50 / p95 of the whole `track` call and p50 of its masks stage, over
`--frames` frames, and per block of 20 frames the p50s (the spread).

    PYTHONPATH=$PWD .venv/bin/python probes/mask_refine_cost.py --variants none colour
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from cyclesiam.build import build_tracker
from cyclesiam.cli.bench import DEFAULT_FRAMES, load_frames, target_boxes
from cyclesiam.config import load_config
from cyclesiam.default_model import default_checkpoint


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=["none", "colour"])
    ap.add_argument("--frames", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--backend", default="onnxruntime")
    args = ap.parse_args()
    frames = load_frames(DEFAULT_FRAMES, args.frames + args.warmup + 1)
    box = target_boxes(640, 480, 1)[0]
    trackers = {}
    for v in args.variants:
        cfg = load_config(overrides={"runtime": {"backend": args.backend}, "tracker": {"mask_refine": v}})
        trackers[v] = build_tracker(cfg, default_checkpoint())
        trackers[v].add_target(frames[0], box)
    total = {v: [] for v in args.variants}
    mask = {v: [] for v in args.variants}
    for n, frame in enumerate(frames[1:]):
        order = args.variants if n % 2 == 0 else args.variants[::-1]
        for v in order:
            t0 = time.perf_counter()
            trackers[v].track(frame)
            if n >= args.warmup:
                total[v].append((time.perf_counter() - t0) * 1e3)
                mask[v].append(trackers[v].timing["mask"])
    for v in args.variants:
        t, m = np.array(total[v]), np.array(mask[v])
        blocks = [float(np.median(t[i:i + 20])) for i in range(0, len(t), 20)]
        mblocks = [float(np.median(m[i:i + 20])) for i in range(0, len(m), 20)]
        print(f"{v:8s} whole path p50 {np.median(t):6.1f} ms p95 {np.percentile(t, 95):6.1f} "
              f"(block p50s {min(blocks):.1f}-{max(blocks):.1f}) | masks stage p50 {np.median(m):5.2f} ms "
              f"(block p50s {min(mblocks):.2f}-{max(mblocks):.2f}) | {len(t)} frames")


if __name__ == "__main__":
    main()
