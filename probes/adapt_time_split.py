"""Adapt on the first half of a real val clip, evaluate base and adapted on the second half (issue 21).

Split rule (docs/MODEL.md, "Label-free check against annotated AUC"): H = the first present box
keyframe at or after 50 % of the clip's frames. `cyclesiam-adapt` sees only frames [0, H) (written
as a PNG folder, unlabeled); the one-pass run starts at keyframe H with its annotated box and is
scored on the present keyframes after H (rows before H are blanked). Per clip it prints the AUC of
the base and the adapted model, the adapt run's own label-free verdict (on the held-out tail of the
first half) and a label-free verdict on the second half (same round trips for both models).

    python probes/adapt_time_split.py --clips mbt_cube mire2 --out /tmp/split [--minutes 10] [--threads 1] [--check-trips 8]
        [--own-track-seeds K]   (seeds from BASE's own track of the first half, as a recording node has them)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from label_free_vs_auc import Candidate, build, load_clip, one_pass_auc  # noqa: E402

from cyclesiam.default_model import resolve_checkpoint  # noqa: E402
from cyclesiam_train.eval.datasets import Sequence as Clip  # noqa: E402
from cyclesiam_train.eval.metrics import annotated  # noqa: E402
from cyclesiam_train.label_free_check import compare, plan_trips, run_trips, seed_config  # noqa: E402
from cyclesiam_train.seeds import write_seed_file  # noqa: E402


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


def own_track(clip: Clip, frames, stop: int, threads: int) -> dict[int, tuple[float, ...]]:
    """BASE's one-pass track of frames [1, stop) from the clip's first (annotated) box, as a node tracking
    the target would publish it: frame -> box, for the frames it reported TRACKING."""
    tracker, _cfg = build(Candidate("base", str(resolve_checkpoint(None)), {}), "onnxruntime", threads)
    tracker.init(frames.frame(0), tuple(float(v) for v in clip.boxes[0]))
    boxes = {}
    for i in range(1, stop):
        box, _score, _mask = tracker.update(frames.frame(i))
        if box is not None and not tracker.lost:
            boxes[i] = tuple(float(v) for v in box)
    return boxes


def own_track_seeds(clip: Clip, frames, h: int, head_folder: Path, holdout: float, every: int,
                    threads: int) -> list[dict[str, object]]:
    """Seeds from BASE's own track of [0, H) (`own_track`): frame 0 with its given box, then every
    `every`-th TRACKING frame; with `holdout` 0 over all of [0, H) (cyclesiam-adapt trains on those in its
    first 80 % and starts its check's round trips from those in the held-out rest), else only inside
    the trained part (the 16:51 runs)."""
    from cyclesiam_train.trainer import head_frames

    train_end = head_frames(h, holdout) if holdout else h
    bag = str(head_folder.resolve())
    seeds = [{"bag": bag, "frame": 0, "box": [float(v) for v in clip.boxes[0]]}]
    seeds += [{"bag": bag, "frame": i, "box": [round(v, 1) for v in box]}
              for i, box in own_track(clip, frames, train_end, threads).items() if i % every == 0]
    return seeds


def adapted_model(adapt_dir: Path) -> Path:
    """The adapted model of a `cyclesiam-adapt` run: the blend since 2026-12-03 21:47, the fine-tuned
    model itself before (or with --blend 1)."""
    blended = adapt_dir / "adapted.safetensors"
    return blended if blended.is_file() else adapt_dir / "train" / "model.safetensors"


def run_adapt(head: Path, run_dir: Path, minutes: float, threads: int, check_trips: int,
              overrides: list[str]) -> dict[str, object]:
    """`cyclesiam-adapt` in its own process, as a user runs it; its report's verdict and step count."""
    command = [sys.executable, "-m", "cyclesiam_train.adapt", "--data", str(head), "--out", str(run_dir),
               "--minutes", str(minutes), "--threads", str(threads), "--trips", str(check_trips), "--device", "cpu",
               "--no-progress"] + (["--set", *overrides] if overrides else [])
    print(" ".join(command), flush=True)
    proc = subprocess.run(command, timeout=minutes * 60 + 300, capture_output=True, text=True)
    report = run_dir / "report.md"
    text = report.read_text() if report.is_file() else ""
    verdict = re.search(r"Paired IoU gain ([-+0-9.]+) \(standard error ([0-9.]+)\): ([a-z ]+)\.", text)
    steps = re.search(r"Training: (\d+) steps", text)
    return {"exit": proc.returncode, "stderr_tail": proc.stderr[-400:], "adapted": adapted_model(run_dir),
            "check": verdict.group(0) if verdict else "-", "better": bool(verdict and verdict.group(3) == "better"),
            "steps": int(steps.group(1)) if steps else 0}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--check-trips", type=int, default=8, help="round trips of the adapt run's own check")
    ap.add_argument("--trips", type=int, default=12, help="second-half round trips per clip")
    ap.add_argument("--length", type=int, default=20)
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="passed to cyclesiam-adapt --set")
    ap.add_argument("--own-track-seeds", type=int, default=0, metavar="K",
                    help="seeds from BASE's own track of the first half (every K-th TRACKING frame; "
                         "train.seeds.source=file) instead of random boxes; 0 = random")
    ap.add_argument("--seeds-in-tail", action="store_true",
                    help="with --own-track-seeds: also the held-out tail's seeds (the check starts from them)")
    args = ap.parse_args(argv)
    out = Path(args.out)
    rows = []
    for name in args.clips:
        clip, frames = load_clip(name)
        h = split_frame(clip)
        head = write_folder([frames.frame(i) for i in range(h)], out / name / "first_half")
        overrides = list(args.set)
        if args.own_track_seeds:
            seeds = own_track_seeds(clip, frames, h, head, 0.0 if args.seeds_in_tail else 0.2, args.own_track_seeds,
                                    args.threads)
            seed_file = write_seed_file(out / name / "seeds.yaml", seeds)
            overrides += ["train.seeds.source=file", f"train.seeds.file={seed_file}"]
            print(f"[{name}] {len(seeds)} seeds from BASE's own track of frames 0..{h - 1}", flush=True)
        res = run_adapt(head, out / name / "adapt", args.minutes, args.threads, args.check_trips, overrides)
        print(f"[{name}] adapt: exit {res['exit']}, {res['steps']} steps; {res['check']}", flush=True)
        if not Path(res["adapted"]).is_file():
            print(f"[{name}] no adapted model: {res['stderr_tail']}", flush=True)
            continue
        base = Candidate("base", str(resolve_checkpoint(None)), {})
        adapted = Candidate("adapted", str(res["adapted"]), {})
        tail = second_half(clip, h)
        plan = plan_trips([frames], [(h, len(frames))], args.trips, args.length, np.random.default_rng(0), seed_config())
        aucs, trips = {}, {}
        for c in (base, adapted):
            tracker, cfg = build(c, "onnxruntime", args.threads)
            aucs[c.name] = one_pass_auc(tracker, tail, cfg)
            trips[c.name] = run_trips(tracker._tracker, [frames], plan)
        v2 = compare(trips["base"], trips["adapted"])
        row = {"clip": name, "frames": len(clip), "split": h, "steps": res["steps"], "auc_base": aucs["base"],
               "auc_adapted": aucs["adapted"],
               "auc_chosen": aucs["adapted"] if res["better"] else aucs["base"], "adapt_check": res["check"], "adapt_better": res["better"],
               "second_half_check": dataclasses.asdict(v2)}
        rows.append(row)
        print(f"[{name}] split at {h}/{len(clip)}; {res['steps']} steps; AUC base "
              f"{aucs['base']:.3f} adapted {aucs['adapted']:.3f}; second-half check: "
              f"{v2.base:.3f}->{v2.candidate:.3f} gain {v2.gain:+.3f} se {v2.stderr:.3f} better={v2.better}", flush=True)
    print(f"\n{'clip':<20}{'split':>7}{'steps':>7}{'AUC base':>10}{'adapted':>9}{'check (adapt)':>15}{'check (2nd half)':>18}")
    for r in rows:
        print(f"{r['clip']:<20}{r['split']:>7}{r['steps']:>7}{r['auc_base']:>10.3f}{r['auc_adapted']:>9.3f}"
              f"{('better' if r['adapt_better'] else 'not better'):>15}"
              f"{('better' if r['second_half_check']['better'] else 'not better'):>18}")
    if rows:
        gain = np.mean([r["auc_adapted"] - r["auc_base"] for r in rows])
        print(f"mean AUC gain {gain:+.3f}; worst clip {min(r['auc_adapted'] - r['auc_base'] for r in rows):+.3f}")
        chosen = [r["auc_chosen"] - r["auc_base"] for r in rows]
        print(f"the model each run chose (model.safetensors): mean gain {np.mean(chosen):+.3f}; worst clip {min(chosen):+.3f}")
    (out / "results.json").write_text(json.dumps(rows, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
