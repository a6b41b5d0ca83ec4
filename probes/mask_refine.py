"""Mask refinements on the real validation set's mask keyframes (docs/MODEL.md, "tracker.mask_refine").

The mask never feeds back into tracking, so each clip is tracked ONCE (the eval harness's one-pass
run, shipped model, default settings); at every mask keyframe the mask head's probabilities on
the image, the box and the frame are kept, and every refinement in MASK_REFINERS is applied to
the same inputs. Prints per clip and variant: mean J, own-box J (the tracker's box filled in), and
the cost of the masks stage after the network (refinement + largest component + polygon + paste)
in ms per target, timed interleaved over `--repeats` passes: p50 and the range of per-pass p50s.

    PYTHONPATH=$PWD .venv/bin/python probes/mask_refine.py --out /tmp/mask_refine.json
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cyclesiam.config import load_config
from cyclesiam.default_model import default_checkpoint
from cyclesiam.tracking.mask_refine import MASK_REFINERS, MaskRefiner, RefineInput
from cyclesiam.tracking.masks import refined_mask
from cyclesiam_train.config import EvalConfig
from cyclesiam_train.eval import metrics as M
from cyclesiam_train.eval.baselines import SiamTrackerAdapter
from cyclesiam_train.eval.datasets import load_real
from cyclesiam_train.eval.runner import run_ope, score_masks

MASK_CLIPS = ("bikes", "city", "idtrackerai_test_A", "mbt_cube", "mire2", "visp_line")  # val clips with masks
RECORD = "_record"


@dataclass
class Keyframe:
    index: int
    inp: RefineInput
    gt: np.ndarray  # bool HxW


class Recorder(MaskRefiner):
    """Keeps every input it is given and returns the raw mask (the `none` refinement)."""

    seen: list[RefineInput] = []

    def refine(self, inp: RefineInput) -> np.ndarray:
        Recorder.seen.append(RefineInput(inp.bgr.copy(), inp.prob.copy(), inp.roi, inp.box, inp.threshold))
        return inp.raw()


class Counting:
    """The harness tracker, noting which frame each recorded input belongs to."""

    def __init__(self, inner: SiamTrackerAdapter, start: int) -> None:
        self.inner, self.frame, self.by_frame = inner, start, {}

    @property
    def lost(self) -> bool:
        return self.inner.lost

    def init(self, frame, box, mask=None) -> None:
        self.inner.init(frame, box, mask)

    def update(self, frame):
        self.frame += 1
        before = len(Recorder.seen)
        out = self.inner.update(frame)
        if len(Recorder.seen) == before + 1:
            self.by_frame[self.frame] = Recorder.seen[-1]
        return out


def record_clip(root: Path, clip: str, backend: str) -> tuple[list[Keyframe], dict]:
    (seq,) = load_real(root / clip)
    cfg = load_config(overrides={"runtime": {"backend": backend}})
    adapter = SiamTrackerAdapter(default_checkpoint(), cfg)
    MASK_REFINERS[RECORD] = Recorder
    adapter._tracker.cfg.mask_refine = RECORD  # a probe-only entry; the config refuses unknown names
    Recorder.seen = []
    counting = Counting(adapter, 0)
    run = run_ope(counting, seq)
    del MASK_REFINERS[RECORD]
    harness = score_masks(run, seq, EvalConfig())
    keys = [Keyframe(i, counting.by_frame[i], seq.mask(i) > 0) for i in sorted(run.masks) if i in counting.by_frame]
    return keys, {"harness_J": harness["J"]["mean"], "harness_J_box": harness["J_box"], "frames": harness["frames"]}


def evaluate(keys: list[Keyframe], names: list[str], repeats: int) -> dict[str, dict]:
    refiners = {n: MASK_REFINERS[n]() for n in names}
    js = {n: [] for n in names}
    box_js = []
    per_pass = {n: [[] for _ in range(repeats)] for n in names}
    for k in keys:
        inp = k.inp
        box_js.append(M.region_similarity(M.box_to_mask(inp.box, k.gt.shape), k.gt))
        for n in names:
            res = refined_mask(refiners[n], inp.bgr, inp.prob, inp.roi, inp.box, inp.threshold)
            js[n].append(M.region_similarity(res.mask > 0, k.gt))
        for r in range(repeats):
            order = list(names)
            random.shuffle(order)
            for n in order:
                t0 = time.perf_counter()
                refined_mask(refiners[n], inp.bgr, inp.prob, inp.roi, inp.box, inp.threshold)
                per_pass[n][r].append((time.perf_counter() - t0) * 1e3)
    out = {}
    for n in names:
        p50s = [statistics.median(v) for v in per_pass[n]]
        out[n] = {"J": float(np.mean(js[n])), "J_box": float(np.mean(box_js)),
                  "ms_p50": statistics.median([x for v in per_pass[n] for x in v]),
                  "ms_range": [min(p50s), max(p50s)], "J_frames": [float(v) for v in js[n]]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path("annotations/real"))
    ap.add_argument("--clips", nargs="*", default=list(MASK_CLIPS))
    ap.add_argument("--variants", nargs="*", default=[n for n in MASK_REFINERS])
    ap.add_argument("--backend", default="onnxruntime")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    random.seed(0)
    report = {}
    for clip in args.clips:
        keys, harness = record_clip(args.root, clip, args.backend)
        report[clip] = {"harness": harness, "variants": evaluate(keys, args.variants, args.repeats),
                        "size": list(keys[0].inp.bgr.shape[:2]) if keys else None}
        v = report[clip]["variants"]
        print(f"{clip:20s} n={len(keys):3d} box J {v[args.variants[0]]['J_box']:.3f} (harness mask J "
              f"{harness['harness_J']:.3f} box {harness['harness_J_box']:.3f}) "
              + "  ".join(f"{n} {v[n]['J']:.3f}/{v[n]['ms_p50']:.2f}ms" for n in args.variants), flush=True)
    print(f"{'mean':20s} box J {np.mean([report[c]['variants'][args.variants[0]]['J_box'] for c in args.clips]):.3f} "
          + "  ".join(f"{n} {np.mean([report[c]['variants'][n]['J'] for c in args.clips]):.3f}" for n in args.variants))
    if args.out:
        args.out.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
