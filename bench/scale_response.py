"""How a checkpoint's box regression and score respond to scale (docs/MODEL.md, "Scale").

For frame pairs of OTB-format sequences (template on the first annotated frame, search on
later annotated frames), the tracker's state is put on the true centre with the size set to
k x the true size, and one frame is tracked with no penalty, window or smoothing. Prints,
per k, the median predicted/true size (ideal 1.0; a regression blind to scale gives ~k) and
the mean best score (a scale-aware score peaks at k = 1).

    python bench/scale_response.py --checkpoint models/cyclesiam_default.safetensors \
        --dataset outputs/quality/dev_sequences outputs/eval_sequences/otb
"""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np

from cyclesiam.config import Config
from cyclesiam.tracker import build_tracker

SCALES = (0.7, 0.85, 1.0, 1.2, 1.4)


def annotated_frames(sequence: Path) -> tuple[list[Path], dict[int, np.ndarray]]:
    images = sorted(p for p in (sequence / "img").iterdir() if p.is_file())
    boxes = {}
    for i, line in enumerate((sequence / "groundtruth_rect.txt").read_text().splitlines()):
        values = [float(v) for v in line.replace("\t", ",").split(",")]
        if np.isfinite(values).all():
            boxes[i] = np.array(values)
    return images, boxes


def frame_pairs(boxes: dict[int, np.ndarray], per_sequence: int) -> list[tuple[int, int]]:
    keys = sorted(boxes)
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
        for seq in sorted(p for p in Path(root).iterdir() if (p / "groundtruth_rect.txt").is_file())[: args.max_sequences]:
            images, boxes = annotated_frames(seq)
            work += [(images[a], boxes[a], images[b], boxes[b]) for a, b in frame_pairs(boxes, args.pairs)]
    print(f"{len(work)} frame pairs; k = state size / true size")
    print("k      predicted/true (median)   best score (mean)")
    for k in SCALES:
        ratios, scores = [], []
        for img_a, box_a, img_b, box_b in work:
            tracker.clear()
            tracker.add_target(cv2.imread(str(img_a)), tuple(box_a))
            target = tracker._targets[tracker.target_ids[0]]
            x, y, w, h = box_b
            target.center, target.size = np.array([x + w / 2, y + h / 2]), np.array([w * k, h * k])
            (result,) = tracker.track(cv2.imread(str(img_b)))
            ratios.append(np.sqrt(result.bbox[2] * result.bbox[3] / (w * h)))
            scores.append(result.score)
        print(f"{k:<6} {np.median(ratios):>10.2f} {np.mean(scores):>26.3f}")


if __name__ == "__main__":
    main()
