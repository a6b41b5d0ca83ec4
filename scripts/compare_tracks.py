#!/usr/bin/env python3
"""Per-frame boxes of two versions of the tracker on the same clips: behaviour-identity check.

    .venv/bin/python scripts/compare_tracks.py [--old /work/wt/_base] [--backends torch onnxruntime]
                                               [--generated 2] [--frames N]

Each version runs in its own subprocess with PYTHONPATH set to its source tree (the old one first,
then this checkout), with today's defaults (`Config()`, device cpu), the shipped model
(models/cyclesiam_default.safetensors, copied once per version so each exports its own ONNX files),
on the dev clips (data/mbt_cube, data/mire2, started from the first box of
annotations/dev/*/groundtruth_rect.txt) and optionally a few generated sequences (seed 0).
Prints, per clip and backend, the largest per-frame box difference in pixels (max |dx|, |dy|, |dw|,
|dh|), the largest score difference and the frames whose state differs; exits 1 above --tol.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEV_CLIPS = ("mbt_cube", "mire2")


def first_box(name: str) -> list[float]:
    line = (ROOT / "annotations" / "dev" / name / "groundtruth_rect.txt").read_text().splitlines()[0]
    return [float(v) for v in line.replace("\t", ",").split(",")]


def generated_clips(out: Path, count: int) -> list[dict]:
    """`count` generated sequences (seed 0) as OTB folders under `out`."""
    from cyclesiam_train.config import SyntheticConfig
    from cyclesiam_train.eval.generate import generate

    specs = generate(out, SyntheticConfig(seed=0, num_sequences=count), bag=False)
    clips = []
    for spec in specs:
        folder = out / "otb" / spec.name
        box = (folder / "groundtruth_rect.txt").read_text().splitlines()[0]
        clips.append({"name": f"gen/{spec.name}", "frames": str(folder / "img"),
                      "box": [float(v) for v in box.replace("\t", ",").split(",")]})
    return clips


def run_version(code: Path, checkpoint: Path, backend: str, clips: list[dict], frames: int, out: Path) -> None:
    """Run the worker under `code` (its own interpreter process)."""
    spec = out.with_suffix(".json")
    spec.write_text(json.dumps({"checkpoint": str(checkpoint), "backend": backend, "clips": clips, "frames": frames}))
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(spec), str(out)],
                   env=env, check=True, cwd=str(code))


def worker(spec_path: str, out_path: str) -> None:
    """Track every clip of the spec with the cyclesiam found on PYTHONPATH; save boxes/scores/states."""
    import cyclesiam
    from cyclesiam.config import Config
    from cyclesiam.sources import ImageFolderSource

    try:
        from cyclesiam.build import build_tracker
    except ImportError:  # the code before cyclesiam/build.py
        from cyclesiam.tracker import build_tracker
    spec = json.loads(Path(spec_path).read_text())
    cfg = Config()
    cfg.runtime.device, cfg.runtime.backend, cfg.runtime.threads = "cpu", spec["backend"], 1
    result = {}
    for clip in spec["clips"]:
        tracker = build_tracker(cfg, checkpoint=spec["checkpoint"])
        source = ImageFolderSource(clip["frames"])
        n = len(source) if spec["frames"] <= 0 else min(len(source), spec["frames"])
        tid = tracker.add_target(source.frame(0), clip["box"])
        boxes, scores, states = [tracker.result(tid).bbox], [1.0], ["tracking"]
        for i in range(1, n):
            (r,) = tracker.track(source.frame(i))
            boxes.append(r.bbox)
            scores.append(r.score)
            states.append(str(getattr(r.state, "value", r.state)))
        source.close()
        result[clip["name"]] = {"boxes": np.asarray(boxes).tolist(), "scores": scores, "states": states}
    print(f"  {cyclesiam.__file__}: {spec['backend']} done", file=sys.stderr)
    Path(out_path).write_text(json.dumps(result))


def compare(old: dict, new: dict) -> list[tuple[str, int, float, float, int]]:
    rows = []
    for name in old:
        a, b = np.asarray(old[name]["boxes"]), np.asarray(new[name]["boxes"])
        box_diff = float(np.abs(a - b).max())
        score_diff = float(np.abs(np.asarray(old[name]["scores"]) - np.asarray(new[name]["scores"])).max())
        states = sum(x != y for x, y in zip(old[name]["states"], new[name]["states"]))
        rows.append((name, len(a), box_diff, score_diff, states))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", type=Path, default=Path("/work/wt/_base"), help="source tree of the old code")
    parser.add_argument("--new", type=Path, default=ROOT, help="source tree of the new code")
    parser.add_argument("--backends", nargs="+", default=["torch", "onnxruntime"])
    parser.add_argument("--checkpoint", type=Path, default=ROOT / "models" / "cyclesiam_default.safetensors")
    parser.add_argument("--generated", type=int, default=0, help="also this many generated sequences (seed 0)")
    parser.add_argument("--frames", type=int, default=0, help="at most this many frames per clip (0 = all)")
    parser.add_argument("--tol", type=float, default=1e-4, help="largest allowed box difference, pixels")
    parser.add_argument("--worker", nargs=2, metavar=("SPEC", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return 0
    clips = [{"name": c, "frames": str(ROOT / "data" / c), "box": first_box(c)} for c in DEV_CLIPS]
    with tempfile.TemporaryDirectory(prefix="compare_tracks_") as tmp:
        work = Path(tmp)
        if args.generated > 0:
            clips += generated_clips(work / "generated", args.generated)
        worst = 0.0
        print(f"{'clip':<28} {'backend':<12} {'frames':>6} {'max box diff px':>16} {'max score diff':>15} "
              f"{'state diffs':>11}")
        for backend in args.backends:
            results = []
            for label, code in (("old", args.old), ("new", args.new)):
                ckpt_dir = work / f"{label}_{backend}"
                ckpt_dir.mkdir()
                checkpoint = ckpt_dir / args.checkpoint.name
                shutil.copy2(args.checkpoint, checkpoint)
                out = ckpt_dir / "tracks.json"
                run_version(code.resolve(), checkpoint, backend, clips, args.frames, out)
                results.append(json.loads(out.read_text()))
            for name, n, box_diff, score_diff, states in compare(*results):
                worst = max(worst, box_diff)
                print(f"{name:<28} {backend:<12} {n:>6} {box_diff:>16.3g} {score_diff:>15.3g} {states:>11}")
        print(f"largest per-frame box difference: {worst:.3g} px (tolerance {args.tol:g})")
    return 0 if worst <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
