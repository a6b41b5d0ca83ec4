"""Base against adapted on the second halves, one pass from several starts (issue 21).

`probes/adapt_time_split.py` scores each model by one pass from keyframe H. On a long second half
one drift event decides that figure, so a gap of 0.05 between two close models can be chance. This
probe re-scores the models of a finished time-split run from up to `--starts` present keyframes
at or after H (evenly spread), each pass scored on the present keyframes after its start, and
prints the mean AUC gain and its spread over the starts per clip.

    python probes/adapt_multistart.py --run /work/runs/split_A [--starts 8] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adapt_time_split import second_half  # noqa: E402
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
    args = ap.parse_args(argv)
    run = Path(args.run)
    rows = json.loads((run / "results.json").read_text())
    base = Candidate("base", str(resolve_checkpoint(None)), {})
    print(f"{'clip':<20}{'starts':>7}{'AUC base':>10}{'adapted':>9}{'gain':>8}{'gain min..max':>16}{'adapted ahead':>15}")
    gains = []
    for row in rows:
        clip, _frames = load_clip(row["clip"])
        adapted = Candidate("adapted", str(run / row["clip"] / "adapt" / "train" / "model.safetensors"), {})
        starts = starts_after(clip, int(row["split"]), args.starts)
        auc = {}
        for c in (base, adapted):
            tracker, cfg = build(c, "onnxruntime", args.threads)
            auc[c.name] = np.array([one_pass_auc(tracker, second_half(clip, s), cfg) for s in starts])
        gain = auc["adapted"] - auc["base"]
        gains.append(float(gain.mean()))
        print(f"{row['clip']:<20}{len(starts):>7}{auc['base'].mean():>10.3f}{auc['adapted'].mean():>9.3f}"
              f"{gain.mean():>+8.3f}{gain.min():>+8.3f}..{gain.max():+.3f}{int((gain > 0).sum()):>11}/{len(starts)}",
              flush=True)
    print(f"mean gain over clips {np.mean(gains):+.3f}; worst clip {min(gains):+.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
