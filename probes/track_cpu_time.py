"""Per-frame wall-clock and CPU time of `SiamTracker.track` (benchmark, not a test).

CPU time (this process, all threads) moves far less than wall time when other jobs share the
cores, so two code versions can be compared on a busy host: run this file from each source tree
in turn, alternating (it uses only the public API, so older trees run it too).

    PYTHONPATH=TREE .venv/bin/python probes/track_cpu_time.py 1,4 20 [key=value ...]

Prints one JSON line per target count: wall p50 and CPU p50 in ms (onnxruntime, box + mask,
640x480 data/mbt_cube, the shipped model; key=value pairs override the config).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from cyclesiam.build import build_tracker
from cyclesiam.cli.bench import DEFAULT_FRAMES, load_frames, target_boxes
from cyclesiam.config import load_config, parse_dotted
from cyclesiam.default_model import cli_checkpoint


def main(argv: list[str]) -> int:
    counts = [int(c) for c in argv[0].split(",")] if argv else [1]
    iterations = int(argv[1]) if len(argv) > 1 else 20
    overrides = parse_dotted(["runtime.backend=onnxruntime", "tracker.mask_enabled=true", *argv[2:]])
    tracker = build_tracker(load_config(None, overrides), checkpoint=cli_checkpoint(None))
    frames = load_frames(DEFAULT_FRAMES, iterations + 6)
    for count in counts:
        tracker.clear()
        for box in target_boxes(640, 480, count):
            tracker.add_target(frames[0], box)
        wall, cpu = [], []
        for n, frame in enumerate(frames[1:]):
            t0, c0 = time.perf_counter(), time.process_time()
            tracker.track(frame)
            if n >= 5:  # warm-up
                wall.append((time.perf_counter() - t0) * 1e3)
                cpu.append((time.process_time() - c0) * 1e3)
        print(json.dumps({"targets": count, "wall_p50_ms": round(float(np.median(wall)), 1),
                          "cpu_p50_ms": round(float(np.median(cpu)), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
