#!/usr/bin/env python3
"""Per-frame trace of the template bank inside one `cyclesiam-eval` run (issue 20, the gated bank).

    PYTHONPATH=$PWD nice -n 10 .venv/bin/python probes/bank_gate_trace.py --trace OUT.jsonl -- \
        --dataset annotations/real --format real --split val --out DIR --checkpoint M --set ...

Runs the evaluation harness in this process (the arguments after `--` are cyclesiam-eval's, so its
table and results.json are the ordinary ones) with the tracker's bank search wrapped. Writes one JSON
line per tracked frame: clip, protocol (ope/vot), frame index, the target's score and own-kernel
(upright) score from the previous frame, whether the rotated kernels were searched, which kernel won,
and this frame's upright and winning raw scores; and one line per VOT run with its inits and failures.
Prints the frames that searched the bank per clip and protocol.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np

import cyclesiam.tracker as tracker_module
import cyclesiam_train.eval.runner as runner
from cyclesiam_train.eval.cli import main as eval_main

CURRENT: dict[str, Any] = {"clip": "", "protocol": "", "frame": -1}


def _follow_frames(seq: Any, protocol: str) -> None:
    """Make `seq.iter_frames` keep CURRENT up to date (an instance attribute; the class is untouched)."""
    frames = seq.iter_frames

    def iter_frames() -> Any:
        for index, frame in frames():
            CURRENT.update(clip=seq.name, protocol=protocol, frame=index)
            yield index, frame

    seq.iter_frames = iter_frames


def _wrap_protocols(out: Any) -> None:
    run_ope, run_vot = runner.run_ope, runner.run_vot

    def ope(tracker: Any, seq: Any) -> Any:
        _follow_frames(seq, "ope")
        return run_ope(tracker, seq)

    def vot(tracker: Any, seq: Any, *args: Any, **kwargs: Any) -> Any:
        _follow_frames(seq, "vot")
        result = run_vot(tracker, seq, *args, **kwargs)
        out.write(json.dumps({"clip": seq.name, "protocol": "vot", "inits": list(map(int, result.record.inits)),
                              "failures": list(map(int, result.record.failures))}) + "\n")
        return result

    runner.run_ope, runner.run_vot = ope, vot


def _wrap_bank_search(out: Any) -> None:
    bank_search = tracker_module.bank_search

    def traced(cfg: Any, members: list, n_scales: int, embed: Any, run: Callable) -> Any:
        before = [(float(t.score), float(getattr(t, "upright_score", np.nan))) for t in members]
        seen: dict[str, Any] = {}

        def spy(rows: list) -> Any:
            found = run(rows)
            seen["rows"], seen["found"] = len(rows), found
            return found

        found = bank_search(cfg, members, n_scales, embed, spy)
        if CURRENT["frame"] < 0 or len(members) != 1:
            return found
        per_kernel = seen["found"].post.score.reshape(-1, n_scales)  # kernel-major for one member
        win = int(np.argmax(seen["found"].post.best_pscore().reshape(-1, n_scales).max(axis=1)))
        out.write(json.dumps({**CURRENT, "prev_score": before[0][0], "prev_upright": before[0][1],
                              "bank": seen["rows"] > len(members), "kernel": win,
                              "upright": float(per_kernel[0].max()), "score": float(found.post.score.max())}) + "\n")
        return found

    tracker_module.bank_search = traced


def summarise(trace: Path) -> None:
    counts: Counter = Counter()
    frames: Counter = Counter()
    for line in trace.read_text().splitlines():
        row = json.loads(line)
        if "frame" in row:
            frames[(row["clip"], row["protocol"])] += 1
            counts[(row["clip"], row["protocol"])] += bool(row["bank"])
    print("frames searching the bank (clip, protocol: bank / tracked)")
    for key in sorted(frames):
        print(f"  {key[0]:<20} {key[1]}: {counts[key]} / {frames[key]}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trace", type=Path, required=True)
    parser.add_argument("eval_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    eval_args = args.eval_args[1:] if args.eval_args[:1] == ["--"] else args.eval_args
    with args.trace.open("w") as out:
        _wrap_protocols(out)
        _wrap_bank_search(out)
        code = eval_main(eval_args)
    summarise(args.trace)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
