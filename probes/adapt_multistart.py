"""Base against adapted on the second halves, one pass from several starts (issue 21).

`probes/adapt_time_split.py` scores each model by one pass from keyframe H. On a long second half
one drift event decides that figure, so a gap of 0.05 between two close models can be chance. This
probe re-scores the models of a finished time-split run from up to `--starts` present keyframes
at or after H (evenly spread), each pass scored on the present keyframes after its start, and
prints the mean AUC gain and its spread over the starts per clip.

    python probes/adapt_multistart.py --run /work/runs/split_A [--starts 8] [--threads 2] [--also NAME=FILE]

`--also blend=blend50.safetensors` scores `RUN/<clip>/adapt/blend50.safetensors` too, in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adapt_time_split import adapted_model, second_half  # noqa: E402
from label_free_vs_auc import Candidate, build, load_clip, one_pass_auc  # noqa: E402

from cyclesiam.default_model import resolve_checkpoint  # noqa: E402
from cyclesiam_train.eval.metrics import annotated  # noqa: E402


def starts_after(clip, h: int, count: int) -> list[int]:
    """Up to `count` present keyframes from H on, evenly spread, each with a later present keyframe."""
    present = np.nonzero(annotated(clip.boxes[:len(clip)]))[0]
    later = present[present >= h][:-1]
    if len(later) <= count:
        return [int(s) for s in later]
    return [int(later[i]) for i in np.linspace(0, len(later) - 1, count).round().astype(int)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True, help="the --out folder of probes/adapt_time_split.py")
    ap.add_argument("--starts", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--also", action="append", default=[], metavar="NAME=FILE",
                    help="another model per clip, FILE relative to RUN/<clip>/adapt (repeatable)")
    args = ap.parse_args(argv)
    also = dict(item.split("=", 1) for item in args.also)
    run = Path(args.run)
    rows = json.loads((run / "results.json").read_text())
    base = Candidate("base", str(resolve_checkpoint(None)), {})
    print(f"{'clip':<20}{'starts':>7}{'AUC base':>10}{'adapted':>9}{'gain':>8}{'gain min..max':>16}{'adapted ahead':>15}")
    gains = []
    also_gains: dict[str, list[float]] = {name: [] for name in also}
    for row in rows:
        clip, _frames = load_clip(row["clip"])
        adapted = Candidate("adapted", str(adapted_model(run / row["clip"] / "adapt")), {})
        starts = starts_after(clip, int(row["split"]), args.starts)
        others = [Candidate(name, str(run / row["clip"] / "adapt" / file), {}) for name, file in also.items()]
        auc = {}
        for c in (base, adapted, *others):
            tracker, cfg = build(c, "onnxruntime", args.threads)
            auc[c.name] = np.array([one_pass_auc(tracker, second_half(clip, s), cfg) for s in starts])
        gain = auc["adapted"] - auc["base"]
        gains.append(float(gain.mean()))
        print(f"{row['clip']:<20}{len(starts):>7}{auc['base'].mean():>10.3f}{auc['adapted'].mean():>9.3f}"
              f"{gain.mean():>+8.3f}{gain.min():>+8.3f}..{gain.max():+.3f}{int((gain > 0).sum()):>11}/{len(starts)}",
              flush=True)
        for c in others:
            g = auc[c.name] - auc["base"]
            also_gains[c.name].append(float(g.mean()))
            print(f"  {c.name:<18}{'':>7}{'':>10}{auc[c.name].mean():>9.3f}{g.mean():>+8.3f}{g.min():>+8.3f}..{g.max():+.3f}"
                  f"{int((g > 0).sum()):>11}/{len(starts)}", flush=True)
    print(f"mean gain over clips {np.mean(gains):+.3f}; worst clip {min(gains):+.3f}")
    for name, values in also_gains.items():
        print(f"{name}: mean gain over clips {np.mean(values):+.3f}; worst clip {min(values):+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
