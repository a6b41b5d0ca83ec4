"""The label-free check of a finished time-split adapt run, for other models (issue 21).

For every clip of a `probes/adapt_time_split.py` run: the same held-out trips that its `cyclesiam-adapt`
planned (data RUN/<clip>/first_half, seeds RUN/<clip>/seeds.yaml, --trips, --seed 0), measured for
BASE and for each named model (RUN/<clip>/adapt/FILE), with the verdict `cyclesiam-adapt` would give.

    python probes/check_models_again.py --run /work/runs/split10_T --trips 8 \
        --model adapted=train/model.safetensors --model blend=blend50.safetensors
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cyclesiam.default_model import resolve_checkpoint  # noqa: E402
from cyclesiam_train import label_free_check as check  # noqa: E402
from cyclesiam_train.adapt import held_out_trips  # noqa: E402
from cyclesiam_train.config import Config, merge  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", required=True)
    ap.add_argument("--trips", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--model", action="append", required=True, metavar="NAME=FILE")
    args = ap.parse_args(argv)
    run, models = Path(args.run), dict(item.split("=", 1) for item in args.model)
    base = resolve_checkpoint(None)
    eval_cfg = check.eval_config({"runtime": {"threads": args.threads}}, device="cpu")
    for row in json.loads((run / "results.json").read_text()):
        clip = run / row["clip"]
        seeds = merge(Config(), {"train": {"seeds": {"source": "file", "file": str(clip / "seeds.yaml")}}}).train.seeds
        streams, plan = held_out_trips([str(clip / "first_half")], [], 0.2, args.trips, 20, 0, seeds)
        sources = [s.source for s in streams]
        base_results = check.measure(base, sources, plan, eval_cfg)
        line = f"{row['clip']:<20} trips {len(plan):>2}  base {check.summary(base_results)['iou']:.3f}"
        for name, file in models.items():
            verdict = check.compare(base_results, check.measure(clip / "adapt" / file, sources, plan, eval_cfg))
            line += (f"  {name} {verdict.candidate:.3f} ({verdict.gain:+.3f} se {verdict.stderr:.3f}: "
                     f"{'better' if verdict.better else 'not better'})")
        print(line, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
