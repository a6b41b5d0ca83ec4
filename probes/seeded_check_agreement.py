"""Does the label-free check agree with the annotated result when its round trips start from the
adaptation's own seeds? (issue 21, rule 3; docs/MODEL.md 2026-12-03 16:51 and after)

For each clip of a finished `probes/adapt_time_split.py` run: BASE tracks [0, H) one pass from the
clip's first box (as `--own-track-seeds` did); its TRACKING boxes on the held-out tail of the first
half (the last 20 % of [0, H), which cyclesiam-adapt never trains on) seed the round trips
(`label_free_check.plan_seeded_trips`); BASE and the run's adapted model are measured on the same
trips and compared. Prints each clip's verdict, to set beside the annotated gains of
`probes/adapt_multistart.py`.

    python probes/adapt_time_split.py ... --out RUN; python probes/seeded_check_agreement.py --run RUN [--trips 8]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from adapt_time_split import own_track, split_frame  # noqa: E402
from label_free_vs_auc import load_clip  # noqa: E402

from cyclesiam.default_model import resolve_checkpoint  # noqa: E402
from cyclesiam_train import label_free_check as check  # noqa: E402
from cyclesiam_train.trainer import head_frames  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--trips", type=int, default=8)
    ap.add_argument("--length", type=int, default=20)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    run = Path(args.run)
    rows = []
    for result in json.loads((run / "results.json").read_text()):
        name = result["clip"]
        clip, frames = load_clip(name)
        h = split_frame(clip)
        lo = head_frames(h, 0.2)
        boxes = own_track(clip, frames, h, args.threads)
        seeds = [(0, f, b) for f, b in boxes.items() if f >= lo]
        plan = check.plan_seeded_trips([frames], [(lo, h)], seeds, args.trips, args.length, np.random.default_rng(0),
                                       check.seed_config())
        cfg = check.eval_config({"runtime": {"threads": args.threads}})
        base = check.measure(resolve_checkpoint(None), [frames], plan, cfg)
        adapted = check.measure(run / name / "adapt" / "train" / "model.safetensors", [frames], plan, cfg)
        v = check.compare(base, adapted)
        rows.append({"clip": name, "tail": [lo, h], "seeds": len(seeds), "trips": len(plan), "base": v.base,
                     "adapted": v.candidate, "gain": v.gain, "stderr": v.stderr, "better": v.better})
        print(f"{name:<20} tail {lo}-{h} seeds {len(seeds):>3} trips {len(plan)}: round-trip IoU {v.base:.3f} -> "
              f"{v.candidate:.3f}, gain {v.gain:+.3f} (se {v.stderr:.3f}): {'better' if v.better else 'not better'}",
              flush=True)
    (run / "seeded_check.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
