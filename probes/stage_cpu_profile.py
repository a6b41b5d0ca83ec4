"""Process CPU time per stage of `SiamTracker.track` (benchmark, not a test): where a frame's time goes.

    PYTHONPATH=TREE .venv/bin/python probes/stage_cpu_profile.py [--targets 1 4] [--frames 20]
                                                               [--repeats 3] [--set key=value ...]

The default path (onnxruntime, box + mask, tracker defaults, the shipped model) over 640x480
data/mbt_cube frames. The stages' functions are wrapped here (the tracker is not changed) with
process CPU time, which counts onnxruntime's worker threads too and moves far less than wall time
on a loaded machine. Per stage: the p50 over repeats of the per-frame mean, and the range; "other"
is the frame's total minus the wrapped stages (Python glue, copies, the LOST rule, bookkeeping).
Only the public names of the tree on PYTHONPATH are used, so older trees run it too.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from typing import Any, Callable

import numpy as np

from cyclesiam import crop as crop_mod
from cyclesiam import tracker as tracker_mod
from cyclesiam.build import build_tracker
from cyclesiam.cli.bench import DEFAULT_FRAMES, load_frames, target_boxes
from cyclesiam.config import load_config, parse_dotted
from cyclesiam.default_model import cli_checkpoint
from cyclesiam.tracking import masks, network, search, similarity

SPENT: dict[str, float] = defaultdict(float)


def timed(stage: str | Callable[..., str], fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` adding its process CPU time to SPENT[stage] (stage may be chosen from the arguments)."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        c0 = time.process_time()
        try:
            return fn(*args, **kwargs)
        finally:
            SPENT[stage(*args, **kwargs) if callable(stage) else stage] += time.process_time() - c0
    return wrapper


def instrument(tracker: Any) -> None:
    crop_call = crop_mod.CropBatch.__call__
    crop_mod.CropBatch.__call__ = timed(lambda self, image, centers, sides, out_size, *a, **k:
                                        "crop search" if out_size > 200 else "crop templates (scale)", crop_call)
    backend = tracker.backend
    for name, stage in (("track", "net search pass"), ("track_features", "net search pass"),
                        ("template", "net template passes (scale + LOST)"), ("mask", "net mask head")):
        if hasattr(backend, name):
            setattr(backend, name, timed(stage, getattr(backend, name)))
    search.decode_response = timed("decode (softmax, anchors)", search.decode_response)
    search.postprocess = timed("post (penalty, window, argmax, step)", search.postprocess)
    similarity.template_similarity = timed("similarity (cosine)", similarity.template_similarity)
    masks.backproject_probabilities = timed("mask warp onto ROI", masks.backproject_probabilities)
    masks.binary_to_polygon = timed("largest component + polygon", masks.binary_to_polygon)
    masks.roi_result_to_image = timed("full-frame mask paste", masks.roi_result_to_image)
    for module in (network, tracker_mod):
        if hasattr(module, "image_mean"):
            module.image_mean = timed("image mean", module.image_mean)
    refiner_module = __import__("cyclesiam.tracking.mask_refine", fromlist=["MASK_REFINERS"])
    for cls in refiner_module.MASK_REFINERS.values():
        cls.refine = timed(f"mask refine ({cls.__name__})", cls.refine)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", nargs="+", type=int, default=[1, 4])
    p.add_argument("--frames", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    args = p.parse_args()
    overrides = parse_dotted(["runtime.backend=onnxruntime", "tracker.mask_enabled=true", *args.overrides])
    tracker = build_tracker(load_config(None, overrides), checkpoint=cli_checkpoint(None))
    instrument(tracker)
    frames = load_frames(DEFAULT_FRAMES, args.frames + 6)
    for count in args.targets:
        runs: list[dict[str, float]] = []
        for _ in range(args.repeats):
            tracker.clear()
            for box in target_boxes(640, 480, count):
                tracker.add_target(frames[0], box)
            for frame in frames[1:6]:  # warm-up
                tracker.track(frame)
            SPENT.clear()
            c0 = time.process_time()
            for frame in frames[6:]:
                tracker.track(frame)
            per_frame = {k: v * 1e3 / args.frames for k, v in SPENT.items()}
            per_frame["total"] = (time.process_time() - c0) * 1e3 / args.frames
            per_frame["other"] = per_frame["total"] - sum(v for k, v in per_frame.items() if k != "total")
            runs.append(per_frame)
        print(f"\n{count} target(s), CPU ms per frame, p50 [min-max] over {args.repeats} x {args.frames} frames")
        stages = sorted({k for r in runs for k in r}, key=lambda k: (k == "total", -np.median([r.get(k, 0) for r in runs])))
        for k in stages:
            v = [r.get(k, 0.0) for r in runs]
            print(f"| {k:<40} | {np.median(v):6.2f} | {min(v):6.2f}-{max(v):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
