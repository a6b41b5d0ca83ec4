"""Adapt on the first half of a real val clip, evaluate base and adapted on the second half (issue 21).

Split rule (docs/MODEL.md, "Label-free check against annotated AUC"): H = the first present box
keyframe at or after 50 % of the clip's frames. `cyclesiam-adapt` sees only frames [0, H) (written
as a PNG folder, unlabeled); the one-pass run starts at keyframe H with its annotated box and is
scored on the present keyframes after H (rows before H are blanked). Per clip it prints the AUC of
the base and the adapted model, the adapt run's own label-free verdict (on the held-out tail of the
first half) and a label-free verdict on the second half (same round trips for both models).

    python probes/adapt_time_split.py --clips mbt_cube mire2 --out /tmp/split [--minutes 6] [--threads 1] [--check-trips 8]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from label_free_vs_auc import Candidate, build, load_clip, one_pass_auc  # noqa: E402

from cyclesiam.default_model import resolve_checkpoint  # noqa: E402
from cyclesiam_train.adapt import adapt  # noqa: E402
from cyclesiam_train.eval.datasets import Sequence as Clip  # noqa: E402
from cyclesiam_train.eval.metrics import annotated  # noqa: E402
from cyclesiam_train.label_free_check import compare, plan_trips, run_trips, seed_config  # noqa: E402


def split_frame(clip: Clip) -> int:
    """The first present box keyframe at or after half the clip."""
    present = np.nonzero(annotated(clip.boxes[:len(clip)]))[0]
    later = present[present >= len(clip) // 2]
    if not later.size:
        raise SystemExit(f"{clip.name}: no present keyframe in the second half")
    return int(later[0])


def second_half(clip: Clip, h: int) -> Clip:
    boxes = clip.boxes.copy()
    boxes[:h] = np.nan
    absent = None if clip.absent is None else np.where(np.arange(len(clip.absent)) < h, False, clip.absent)
    return dataclasses.replace(clip, boxes=boxes, absent=absent, masks={})


def write_folder(frames: list[np.ndarray], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i:05d}.png"), frame)
    return folder


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=6.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--check-trips", type=int, default=8, help="round trips of the adapt run's own check")
    ap.add_argument("--trips", type=int, default=12, help="second-half round trips per clip")
    ap.add_argument("--length", type=int, default=20)
    args = ap.parse_args(argv)
    out = Path(args.out)
    rows = []
    for name in args.clips:
        clip, frames = load_clip(name)
        h = split_frame(clip)
        head = write_folder([frames.frame(i) for i in range(h)], out / name / "first_half")
        res = adapt([str(head)], out / name / "adapt", minutes=args.minutes, threads=args.threads, device="cpu", trips=args.check_trips,
                    progress=False, log=lambda m: print(f"[{name}] {m}", flush=True))
        base = Candidate("base", str(resolve_checkpoint(None)), {})
        adapted = Candidate("adapted", str(res.extra.get("adapted_path", out / name / "adapt" / "train" / "model.safetensors")), {})
        tail = second_half(clip, h)
        plan = plan_trips([frames], [(h, len(frames))], args.trips, args.length, np.random.default_rng(0), seed_config())
        aucs, trips = {}, {}
        for c in (base, adapted):
            tracker, cfg = build(c, "onnxruntime", args.threads)
            aucs[c.name] = one_pass_auc(tracker, tail, cfg)
            trips[c.name] = run_trips(tracker._tracker, [frames], plan)
        v2 = compare(trips["base"], trips["adapted"])
        v1 = res.verdict
        row = {"clip": name, "frames": len(clip), "split": h, "steps": res.steps, "train_s": res.train_seconds,
               "auc_base": aucs["base"], "auc_adapted": aucs["adapted"],
               "adapt_check": None if v1 is None else dataclasses.asdict(v1),
               "second_half_check": dataclasses.asdict(v2)}
        rows.append(row)
        print(f"[{name}] split at {h}/{len(clip)}; {res.steps} steps in {res.train_seconds:.0f} s; AUC base "
              f"{aucs['base']:.3f} adapted {aucs['adapted']:.3f}; adapt's check (first-half tail): "
              f"{'-' if v1 is None else f'{v1.base:.3f}->{v1.candidate:.3f} better={v1.better}'}; second-half check: "
              f"{v2.base:.3f}->{v2.candidate:.3f} gain {v2.gain:+.3f} se {v2.stderr:.3f} better={v2.better}", flush=True)
    print(f"\n{'clip':<20}{'split':>7}{'steps':>7}{'AUC base':>10}{'adapted':>9}{'check (adapt)':>15}{'check (2nd half)':>18}")
    for r in rows:
        a = r["adapt_check"]
        print(f"{r['clip']:<20}{r['split']:>7}{r['steps']:>7}{r['auc_base']:>10.3f}{r['auc_adapted']:>9.3f}"
              f"{('-' if a is None else ('better' if a['better'] else 'not better')):>15}"
              f"{('better' if r['second_half_check']['better'] else 'not better'):>18}")
    if rows:
        gain = np.mean([r["auc_adapted"] - r["auc_base"] for r in rows])
        print(f"mean AUC gain {gain:+.3f}; worst clip {min(r['auc_adapted'] - r['auc_base'] for r in rows):+.3f}")
    (out / "results.json").write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
