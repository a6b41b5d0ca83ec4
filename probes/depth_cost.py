"""Cost of the 3D step per frame (cyclesiam/depth3d.py) at 640x480: one target, its mask
or its box, uint16 and float32 depth, a small and a large target, side by side in one run.
With --tracker: what depth adds to a frame of the node when nothing else asks for masks
(the shipped model on the real mbt_cube frames: track without masks, against track with
masks + the 3D step), interleaved frame by frame.

    PYTHONPATH=. .venv/bin/python probes/depth_cost.py [--repeats 5] [--frames 200] [--tracker]

Prints ms per frame p50 and the range of the p50 over the repeats (the machine is shared:
compare rows of the same run only)."""

from __future__ import annotations

import argparse
import time

import numpy as np

from cyclesiam.config import DepthConfig
from cyclesiam.depth3d import Intrinsics, target_3d

K = Intrinsics(fx=615.0, fy=615.0, cx=319.5, cy=239.5, width=640, height=480)


def scene(dtype) -> np.ndarray:
    """A wall at 2.5 m, a disc object at 0.9..1.0 m, 3 % holes, sensor-like noise."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:480, :640]
    depth = 2.5 + 0.01 * rng.standard_normal((480, 640))
    obj = ((xx - 320) ** 2 + (yy - 240) ** 2) <= 110 ** 2
    depth[obj] = 0.9 + 0.1 * (yy[obj] - 130) / 220 + 0.003 * rng.standard_normal(obj.sum())
    depth[rng.random((480, 640)) < 0.03] = 0
    return (depth * 1000).astype(np.uint16) if dtype == np.uint16 else depth.astype(np.float32)


def mask_for(radius: int) -> np.ndarray:
    yy, xx = np.mgrid[:480, :640]
    return (((xx - 320) ** 2 + (yy - 240) ** 2) <= radius ** 2).astype(np.uint8)


def time_case(depth, box, mask, frames: int) -> float:
    cfg = DepthConfig()
    samples = []
    for _ in range(frames):
        start = time.perf_counter()
        target_3d(depth, K, cfg, box, mask)
        samples.append((time.perf_counter() - start) * 1000)
    return float(np.median(samples))


def tracker_case(frames: int) -> None:
    from pathlib import Path

    import cv2

    from cyclesiam.build import build_tracker
    from cyclesiam.config import Config
    from cyclesiam.default_model import default_checkpoint

    folder = Path(__file__).resolve().parents[1] / "data" / "mbt_cube"
    images = [cv2.imread(str(p)) for p in sorted(folder.glob("*.pgm"))[:frames]]
    cfg = Config()
    cfg.runtime.device = "cpu"
    tracker = build_tracker(cfg, default_checkpoint())
    tracker.add_target(images[0], (250.0, 170.0, 140.0, 140.0))  # the cube
    depth = scene(np.uint16)
    plain, with_depth, step3d = [], [], []
    for image in images[1:]:
        start = time.perf_counter()
        tracker.track(image, want_masks=False)
        plain.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        [result] = tracker.track(image, want_masks=True)
        middle = time.perf_counter()
        target_3d(depth, K, DepthConfig(), result.bbox, result.mask)
        with_depth.append((time.perf_counter() - start) * 1000)
        step3d.append((time.perf_counter() - middle) * 1000)
    def q(v: list[float]) -> str:
        return f"p50 {np.median(v):.2f} ms (p10..p90 {np.percentile(v, 10):.2f}..{np.percentile(v, 90):.2f})"

    print(f"tracker, 1 target, {len(plain)} mbt_cube frames 640x480 (each frame tracked both ways, interleaved):")
    print(f"  track, no masks            : {q(plain)}")
    print(f"  track with masks + 3D step : {q(with_depth)}")
    print(f"  of which the 3D step       : {q(step3d)}")
    print(f"  added per frame            : p50 {np.median(np.subtract(with_depth, plain)):.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--tracker", action="store_true", help="also the node's added cost with the shipped model")
    args = parser.parse_args()
    cases = []
    for dtype in (np.uint16, np.float32):
        depth = scene(dtype)
        for radius in (40, 110):  # ~5k and ~38k pixels
            box = (320 - radius - 10, 240 - radius - 10, 2 * radius + 20, 2 * radius + 20)
            name = f"{np.dtype(dtype).name:7s} r={radius:3d}"
            cases.append((f"{name} mask", depth, box, mask_for(radius)))
            cases.append((f"{name} box ", depth, box, None))
    runs: dict[str, list[float]] = {name: [] for name, *_ in cases}
    for _ in range(args.repeats):  # interleaved so every case sees the same machine load
        for name, depth, box, mask in cases:
            runs[name].append(time_case(depth, box, mask, args.frames))
    print(f"ms per frame, one target at 640x480 (p50 of {args.frames} frames; median and range over "
          f"{args.repeats} repeats)")
    for name, values in runs.items():
        print(f"  {name}: p50 {np.median(values):.3f} ms  range {min(values):.3f}..{max(values):.3f}")
    if args.tracker:
        tracker_case(min(args.frames, 100))


if __name__ == "__main__":
    main()
