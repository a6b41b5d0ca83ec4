"""How a checkpoint's box regression and score respond to scale (docs/MODEL.md, "Scale").

For frame pairs of OTB-format sequences (template on the first annotated frame, search on
later annotated frames), the tracker's state is put on the true centre with the size set to
k x the true size, and one frame is tracked with no penalty, window or smoothing. Prints,
per k, the median predicted/true size (ideal 1.0; a regression blind to scale gives ~k) and
the mean best score (a scale-aware score peaks at k = 1).

    python probes/scale_response.py --checkpoint models/cyclesiam_default.safetensors \
        --dataset outputs/quality/dev_sequences outputs/eval_sequences/otb
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cyclesiam.config import Config
from cyclesiam.build import build_tracker
from cyclesiam_train.eval.datasets import load_otb, read_image

SCALES = (0.7, 0.85, 1.0, 1.2, 1.4)


def frame_pairs(boxes: np.ndarray, per_sequence: int) -> list[tuple[int, int]]:
    """(template, search) frame indices: the first annotated frame with itself and with
    `per_sequence` later annotated frames spread over the sequence."""
    keys = np.flatnonzero(np.isfinite(boxes).all(axis=1)).tolist()
    later = keys[1:][:: max(1, (len(keys) - 1) // per_sequence)]
    return [(keys[0], keys[0])] + [(keys[0], k) for k in later]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--dataset", nargs="+", required=True, help="OTB-format folders of sequences")
    ap.add_argument("--pairs", type=int, default=5, help="search frames per sequence (plus the template frame)")
    ap.add_argument("--max-sequences", type=int, default=4, help="per dataset folder")
    args = ap.parse_args()

    cfg = Config()
    cfg.runtime.device = "cpu"
    cfg.tracker.penalty_k, cfg.tracker.window_influence, cfg.tracker.lr = 0.0, 0.0, 1.0
    cfg.tracker.scale_steps, cfg.tracker.mask_enabled = 1, False
    tracker = build_tracker(cfg, args.checkpoint)
    work = []
    for root in args.dataset:
        for seq in load_otb(Path(root))[: args.max_sequences]:
            paths = seq.frames.paths
            for a, b in frame_pairs(seq.boxes, args.pairs):  # decoded once, reused for every k
                work.append((read_image(paths[a]), seq.boxes[a], read_image(paths[b]), seq.boxes[b]))
    print(f"{len(work)} frame pairs; k = state size / true size")
    print("k      predicted/true (median)   best score (mean)")
    for k in SCALES:
        ratios, scores = [], []
        for image_a, box_a, image_b, box_b in work:
            tracker.clear()
            target_id = tracker.add_target(image_a, tuple(box_a))
            x, y, w, h = box_b
            tracker.set_box(target_id, (x + w * (1 - k) / 2, y + h * (1 - k) / 2, w * k, h * k))  # k x, same centre
            (result,) = tracker.track(image_b)
            ratios.append(np.sqrt(result.bbox[2] * result.bbox[3] / (w * h)))
            scores.append(result.score)
        print(f"{k:<6} {np.median(ratios):>10.2f} {np.mean(scores):>26.3f}")


if __name__ == "__main__":
    main()
