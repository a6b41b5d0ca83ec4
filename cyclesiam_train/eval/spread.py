"""How much does a figure owe to chance? `cyclesiam-eval` under a few 1-px shifts of the start box.

    python -m cyclesiam_train.eval.spread --out DIR [--shifts 0,0 1,0 0,1 -1,0 0,-1] -- \\
        --dataset annotations/real --format real --split val --set runtime.backend=onnxruntime [...]
    python -m cyclesiam_train.eval.spread --out DIR --reuse    (print again from the folders there)

A tracker is chaotic: a one-pixel change of the initialisation box, another backend, or another
CPU's float rounding can send a one-pass run onto a look-alike or off a clip's last keyframes, and
move that clip's AUC by 0.1. So one run decides nothing between two close variants. This runs the
same evaluation once per shift (`eval.init_shift`; every other argument is passed to
`cyclesiam-eval` as given, except --out) into DIR/shift_DX_DY/, then prints per tracker: each clip's
one-pass AUC as mean and min..max over the shifts with its VOT failures per shift, and the set's
mean AUC, failures, mask J and own-box J per shift with their mean and range. DIR/spread.json holds
the same. Compare two variants by running this for each with the same shifts.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import cli

DEFAULT_SHIFTS = ("0,0", "1,0", "0,1", "-1,0", "0,-1")


def parse_shift(text: str) -> tuple[float, float]:
    try:
        dx, dy = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a shift is DX,DY in pixels, got {text!r}") from None
    if not (math.isfinite(dx) and math.isfinite(dy)):
        raise argparse.ArgumentTypeError(f"a shift must be finite, got {text!r}")
    return dx, dy


def shift_folder(out: Path, shift: tuple[float, float]) -> Path:
    return out / f"shift_{shift[0]:g}_{shift[1]:g}"


def run_shifts(eval_args: Sequence[str], out: Path, shifts: Sequence[tuple[float, float]]) -> list[dict[str, Any]]:
    """One `cyclesiam-eval` per shift; the results.json of each, in the order of `shifts`."""
    docs = []
    for shift in shifts:
        folder = shift_folder(out, shift)
        code = cli.main([*eval_args, "--out", str(folder), "--set", f"eval.init_shift=[{shift[0]},{shift[1]}]"])
        if code != 0:
            raise SystemExit(code)
        docs.append(json.loads((folder / "results.json").read_text()))
    return docs


def _value(entry: dict[str, Any], *keys: str) -> float:
    for key in keys:
        if not isinstance(entry, dict) or key not in entry:
            return math.nan
        entry = entry[key]
    return float(entry) if entry is not None else math.nan


def summarise(docs: Sequence[dict[str, Any]], shifts: Sequence[tuple[float, float]]) -> dict[str, Any]:
    """Per tracker: per clip AUC over the shifts and failures per shift; per shift the set's figures."""
    out: dict[str, Any] = {"shifts": [list(s) for s in shifts], "trackers": {}}
    for name in docs[0]["trackers"]:
        runs = [doc["trackers"][name] for doc in docs]
        clips = {}
        for clip in runs[0]["sequences"]:
            aucs = [_value(r["sequences"].get(clip, {}), "ope", "auc") for r in runs]
            fails = [_value(r["sequences"].get(clip, {}), "vot", "failures") for r in runs]
            clips[clip] = {"auc": aucs, "failures": fails}
        per_shift = {
            "auc": [_value(r["overall"], "ope", "auc") for r in runs],
            "precision": [_value(r["overall"], "ope", "precision") for r in runs],
            "failures": [_value(r["overall"], "vot", "failures") for r in runs],
            "absent_box": [_value(r["overall"], "absent", "box") for r in runs],
            "absent_lost": [_value(r["overall"], "absent", "lost") for r in runs],
            "J": [_value(r["overall"], "davis", "J", "mean") for r in runs],
            "J_box": [_value(r["overall"], "davis", "J_box") for r in runs],
        }
        out["trackers"][name] = {"clips": clips, "per_shift": per_shift}
    return out


def _stats(values: Sequence[float]) -> str:
    arr = np.asarray(values, dtype=np.float64)
    arr = arr[np.isfinite(arr)]
    if not arr.size:
        return "-"
    return f"{arr.mean():.3f} ({arr.min():.3f}..{arr.max():.3f})"


def _counts(values: Sequence[float]) -> str:
    return " ".join("-" if not math.isfinite(v) else f"{v:g}" for v in values)


def print_summary(summary: dict[str, Any]) -> None:
    shifts = " ".join(f"({dx:g},{dy:g})" for dx, dy in summary["shifts"])
    print(f"\nshifts of the start box (dx,dy px): {shifts}")
    for name, t in summary["trackers"].items():
        print(f"\n{name}")
        print(f"{'clip':<22}{'AUC mean (min..max)':>26}  failures per shift")
        for clip, c in t["clips"].items():
            print(f"{clip:<22}{_stats(c['auc']):>26}  {_counts(c['failures'])}")
        s = t["per_shift"]
        print(f"{'set mean AUC':<22}{_stats(s['auc']):>26}  per shift: {' '.join(f'{v:.3f}' for v in s['auc'])}")
        print(f"{'precision@20':<22}{_stats(s['precision']):>26}")
        print(f"{'failures':<22}{_stats(s['failures']):>26}  per shift: {_counts(s['failures'])}")
        if any(math.isfinite(v) for v in s["absent_lost"]):
            print(f"{'absent: box / LOST':<22}{_stats(s['absent_box']):>26}  {_stats(s['absent_lost'])}")
        if any(math.isfinite(v) for v in s["J"]):
            print(f"{'mask J / own box J':<22}{_stats(s['J']):>26}  {_stats(s['J_box'])}")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cyclesiam_train.eval.spread", description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True, help="folder: shift_DX_DY/ per shift and spread.json")
    p.add_argument("--shifts", nargs="+", type=parse_shift, default=[parse_shift(s) for s in DEFAULT_SHIFTS],
                   metavar="DX,DY", help=f"start-box shifts in pixels (default: {' '.join(DEFAULT_SHIFTS)})")
    p.add_argument("--reuse", action="store_true",
                   help="summarise the shift folders already under --out instead of running the evaluations")
    p.add_argument("eval_args", nargs=argparse.REMAINDER, help="-- then the cyclesiam-eval arguments (no --out)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    eval_args = args.eval_args[1:] if args.eval_args[:1] == ["--"] else args.eval_args
    out = Path(args.out)
    if args.reuse:
        docs = [json.loads((shift_folder(out, shift) / "results.json").read_text()) for shift in args.shifts]
        return _report(out, summarise(docs, args.shifts))
    if "--out" in eval_args or any(a.startswith("--out=") for a in eval_args):
        print("error: give --out before '--' (each shift writes its own folder under it)", file=sys.stderr)
        return 2
    if not eval_args:
        print("error: no cyclesiam-eval arguments after '--'", file=sys.stderr)
        return 2
    return _report(out, summarise(run_shifts(eval_args, out, args.shifts), args.shifts))


def _report(out: Path, summary: dict[str, Any]) -> int:
    (out / "spread.json").write_text(json.dumps(summary, indent=1))
    print_summary(summary)
    print(f"spread: {out / 'spread.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
