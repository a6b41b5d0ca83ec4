"""Boxes, polygons and masks of two source trees on the dev clips, compared frame by frame (an
exactness check for changes meant to keep outputs identical; scripts/compare_tracks.py compares
boxes only, and with masks off).

    .venv/bin/python probes/mask_identity.py --old /work/wt/speed2_base [--new .] [--frames N]
                                             [--set key=value ...]

Each tree runs in its own interpreter (PYTHONPATH = the tree) with today's defaults, onnxruntime,
masks on, the shipped model, on data/mbt_cube and data/mire2 from the first box of
annotations/dev/*/groundtruth_rect.txt. Prints per clip the largest box and polygon difference
(pixels), the number of frames whose mask differs in any pixel, and exits 1 when anything differs
beyond --tol.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
CLIPS = ("mbt_cube", "mire2")


def worker(spec: dict) -> dict:
    from cyclesiam.build import build_tracker
    from cyclesiam.config import load_config, parse_dotted
    from cyclesiam.sources import ImageFolderSource

    cfg = load_config(None, parse_dotted(["runtime.backend=onnxruntime", "runtime.device=cpu",
                                          "tracker.mask_enabled=true", *spec["overrides"]]))
    out = {}
    for clip in CLIPS:
        line = (ROOT / "annotations" / "dev" / clip / "groundtruth_rect.txt").read_text().splitlines()[0]
        box = [float(v) for v in line.replace("\t", ",").split(",")]
        tracker = build_tracker(cfg, checkpoint=spec["checkpoint"])
        source = ImageFolderSource(str(ROOT / "data" / clip))
        n = len(source) if spec["frames"] <= 0 else min(len(source), spec["frames"])
        tid = tracker.add_target(source.frame(0), box)
        boxes, polygons, masks = [], [], []
        for i in range(1, n):
            (r,) = tracker.track(source.frame(i))
            boxes.append(list(r.bbox))
            polygons.append(np.asarray(r.polygon, dtype=np.float64).reshape(-1).tolist())
            masks.append("" if r.mask is None else hashlib.sha1(np.ascontiguousarray(r.mask).tobytes()).hexdigest())
        source.close()
        out[clip] = {"boxes": boxes, "polygons": polygons, "masks": masks, "tid": tid}
    return out


def run_tree(tree: Path, spec: dict, tmp: Path, label: str) -> dict:
    spec_path, out_path = tmp / f"{label}.spec.json", tmp / f"{label}.json"
    spec_path.write_text(json.dumps(spec))
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, str(Path(__file__).resolve()), "--worker", str(spec_path), str(out_path)],
                   env=env, check=True, cwd=str(tree))
    return json.loads(out_path.read_text())


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--old", type=Path, required=False)
    p.add_argument("--new", type=Path, default=ROOT)
    p.add_argument("--frames", type=int, default=0)
    p.add_argument("--tol", type=float, default=1e-6)
    p.add_argument("--set", dest="overrides", action="append", default=[])
    p.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        Path(args.worker[1]).write_text(json.dumps(worker(json.loads(Path(args.worker[0]).read_text()))))
        return 0
    if args.old is None:
        p.error("--old is required")
    spec = {"checkpoint": str(ROOT / "models" / "cyclesiam_default.safetensors"), "frames": args.frames,
            "overrides": args.overrides}
    with tempfile.TemporaryDirectory(prefix="mask_identity_") as tmp:
        old = run_tree(args.old.resolve(), spec, Path(tmp), "old")
        new = run_tree(args.new.resolve(), spec, Path(tmp), "new")
    worst = 0.0
    print(f"{'clip':<10} {'frames':>6} {'max box diff px':>16} {'max polygon diff px':>20} {'masks differing':>16}")
    for clip in CLIPS:
        a, b = old[clip], new[clip]
        box = float(np.abs(np.asarray(a["boxes"]) - np.asarray(b["boxes"])).max())
        poly = max((float(np.abs(np.asarray(x) - np.asarray(y)).max()) if len(x) == len(y) else float("inf"))
                   for x, y in zip(a["polygons"], b["polygons"]))
        masks = sum(x != y for x, y in zip(a["masks"], b["masks"]))
        worst = max(worst, box, poly, float(masks))
        print(f"{clip:<10} {len(a['boxes']):>6} {box:>16.3g} {poly:>20.3g} {masks:>16}")
    return 0 if worst <= args.tol else 1


if __name__ == "__main__":
    sys.exit(main())
