#!/usr/bin/env python3
"""CPU ms per frame of tracker.template_bank variants on one real clip, alternated in one process.

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python probes/bank_gate_cost.py --clip mbt_cube --frames 60 \
        --rounds 3 --checkpoint M [--variants none,rotations_on_drop,rotations] [--set key=value ...]

One target from the clip's annotated first box (annotations/real), onnxruntime, one thread, box + mask
(the config's defaults plus --set), tracked over frames 1..N; each round runs every variant once, in
turn, so all of them share the host's load. Prints per round and variant the CPU p50 (process_time) and
wall p50 in ms per frame (first 5 frames are warm-up) and how many frames searched more than one kernel.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import cyclesiam.tracker as tracker_module
from cyclesiam.build import build_tracker
from cyclesiam.config import load_config, parse_dotted
from cyclesiam_train.eval.datasets import load_dataset

ROOT = Path(__file__).resolve().parents[1]
BANK_FRAMES = {"count": 0}


def _count_bank_frames() -> None:
    bank_search = tracker_module.bank_search

    def counted(cfg: Any, members: list, n_scales: int, embed: Any, run: Any) -> Any:
        def spy(rows: list) -> Any:
            BANK_FRAMES["count"] += len(rows) > len(members)
            return run(rows)

        return bank_search(cfg, members, n_scales, embed, spy)

    tracker_module.bank_search = counted


def one_run(variant: str, frames: list[np.ndarray], box: tuple[float, ...], checkpoint: Path,
            overrides: list[str]) -> dict[str, float]:
    dotted = ["runtime.backend=onnxruntime", "runtime.threads=1", *overrides, f"tracker.template_bank={variant}"]
    tracker = build_tracker(load_config(None, parse_dotted(dotted)), checkpoint=checkpoint)
    tracker.add_target(frames[0], box)
    BANK_FRAMES["count"] = 0
    wall, cpu = [], []
    for n, frame in enumerate(frames[1:]):
        t0, c0 = time.perf_counter(), time.process_time()
        tracker.track(frame)
        if n >= 5:
            wall.append((time.perf_counter() - t0) * 1e3)
            cpu.append((time.process_time() - c0) * 1e3)
    return {"cpu_p50_ms": round(float(np.median(cpu)), 1), "wall_p50_ms": round(float(np.median(wall)), 1),
            "bank_frames": BANK_FRAMES["count"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clip", default="mbt_cube")
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--variants", default="none,rotations_on_drop,rotations")
    parser.add_argument("--set", nargs="*", default=[], dest="overrides")
    args = parser.parse_args()
    (seq,) = load_dataset(ROOT / "annotations" / "real", "real", names=[args.clip], max_frames=args.frames + 1)
    frames = [frame for _, frame in seq.iter_frames()]
    box = tuple(float(v) for v in seq.boxes[0])
    _count_bank_frames()
    for r in range(args.rounds):
        for variant in args.variants.split(","):
            row = one_run(variant, frames, box, args.checkpoint, args.overrides)
            print(json.dumps({"round": r, "variant": variant, "clip": args.clip, **row}), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
