"""How precise the tracker's new centre is, one frame at a time (docs/MODEL.md, "Centre").

For OTB-format sequences with a box on every frame, the template is taken on the first frame;
then, every `--step` frames, the tracker's state is put on the true box of the previous frame
and one frame is tracked with the shipped settings. Prints, per sequence and per
`tracker.center_from` mode, the mean centre error as a fraction of the true size
(sqrt(w h)), beside "stay" (the previous true centre: what no motion estimate at all gives).

    python probes/center_precision.py --checkpoint models/cyclesiam_default.safetensors \
        --dataset outputs/tuning/sequences/otb
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from cyclesiam.build import build_tracker
from cyclesiam.config import Config, TrackerConfig, field_info
from cyclesiam_train.eval.datasets import load_otb, read_image

CENTER_SOURCES = field_info(TrackerConfig, "center_from").choices


def centre(box: np.ndarray) -> np.ndarray:
    return np.array([box[0] + box[2] / 2, box[1] + box[3] / 2])


def one_step_errors(tracker, paths: list, boxes: np.ndarray, step: int) -> tuple[list[float], list[float]]:
    """(tracker errors, stay errors) over frames step, 2 step, ... whose box and previous box are known."""
    tracker.clear()
    target_id = tracker.add_target(read_image(paths[0]), tuple(boxes[0]))
    errors, stay = [], []
    for t in range(step, len(boxes), step):
        before, now = boxes[t - 1], boxes[t]
        if not (np.isfinite(before).all() and np.isfinite(now).all()):
            continue
        tracker.set_box(target_id, before)
        (result,) = tracker.track(read_image(paths[t]))
        norm = float(np.sqrt(now[2] * now[3]))
        errors.append(float(np.linalg.norm(centre(np.asarray(result.bbox)) - centre(now))) / norm)
        stay.append(float(np.linalg.norm(centre(before) - centre(now))) / norm)
    return errors, stay


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--dataset", nargs="+", required=True, help="OTB-format folders of densely annotated sequences")
    ap.add_argument("--step", type=int, default=3, help="evaluate every step-th frame")
    args = ap.parse_args()

    trackers = {}
    for mode in CENTER_SOURCES:
        cfg = Config()
        cfg.runtime.device = "cpu"
        cfg.tracker.center_from, cfg.tracker.mask_enabled = mode, False
        trackers[mode] = build_tracker(cfg, args.checkpoint)
    header = f"{'sequence':<24}" + "".join(f"{m:>12}" for m in CENTER_SOURCES) + f"{'stay':>12}"
    print("mean centre error / true size, one frame from the true state")
    print(header)
    totals: dict[str, list[float]] = {m: [] for m in (*CENTER_SOURCES, "stay")}
    for root in args.dataset:
        for seq in load_otb(Path(root)):
            row = {}
            for mode, tracker in trackers.items():
                errors, stay = one_step_errors(tracker, seq.frames.paths, seq.boxes, args.step)
                row[mode], row["stay"] = float(np.mean(errors)), float(np.mean(stay))
            for key, value in row.items():
                totals[key].append(value)
            print(f"{seq.name:<24}" + "".join(f"{row[k]:>12.3f}" for k in totals))
    print(f"{'mean':<24}" + "".join(f"{np.mean(v):>12.3f}" for v in totals.values()))


if __name__ == "__main__":
    main()
