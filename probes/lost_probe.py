"""What the LOST rule's two signals look like for a checkpoint on your footage (docs/MODEL.md, "LOST").

The rule: a frame is low when score < tracker.lost_threshold AND template similarity <
tracker.lost_similarity. config/tracker.yaml's values were read off the shipped model; a model
you trained yourself may need others. This tracks FRAMES from BOX (the target must stay in
view), then shows the first frame again with the target painted out (inpainted) for
--vanish frames, and prints both signals' percentiles and thresholds that separate the two.

    python probes/lost_probe.py --checkpoint runs/mine/model.safetensors \
        --frames data/mbt_cube --box 315,205,129,145 [--limit 120] [--vanish 8] [--topic T]
"""

from __future__ import annotations

import argparse
import dataclasses
import math

import cv2
import numpy as np

from cyclesiam.config import Config
from cyclesiam.sources import SourceError, open_source
from cyclesiam.build import build_tracker


def painted_out(frame: np.ndarray, box: tuple[float, float, float, float], margin: int = 10) -> np.ndarray:
    """The frame with the box (plus a margin) inpainted from its surroundings."""
    x, y, w, h = (int(round(v)) for v in box)
    hole = np.zeros(frame.shape[:2], np.uint8)
    hole[max(0, y - margin):y + h + margin, max(0, x - margin):x + w + margin] = 255
    return cv2.inpaint(frame, hole, 5, cv2.INPAINT_TELEA)


def signals(tracker, first: np.ndarray, box, frames: list[np.ndarray]) -> np.ndarray:
    """[n, 2] (score, similarity) of each frame, tracking from `box` on `first`."""
    tracker.clear()
    tracker.add_target(first, box)
    return np.array([(r.score, r.similarity) for r in (tracker.track(f)[0] for f in frames)], dtype=np.float64)


def separating_threshold(tracked: np.ndarray, vanished: np.ndarray, percentile: float) -> float:
    """Midway between the vanished target's highest value and the tracked one's `percentile`
    (NaN when they overlap: that signal alone does not separate them on this footage)."""
    low_tracked = float(np.nanpercentile(tracked, percentile))
    high_vanished = float(np.nanmax(vanished))
    return (low_tracked + high_vanished) / 2 if high_vanished < low_tracked else math.nan


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--frames", required=True, help="video, image folder or rosbag2; the target stays in view")
    ap.add_argument("--topic", help="image topic, for a bag with several")
    ap.add_argument("--box", required=True, help="x,y,w,h of the target on the first frame")
    ap.add_argument("--limit", type=int, default=120, help="frames of the clip to track")
    ap.add_argument("--vanish", type=int, default=8, help="frames with the target painted out")
    ap.add_argument("--percentile", type=float, default=1.0, help="tracked frames allowed below a threshold, %%")
    args = ap.parse_args(argv)

    box = tuple(float(v) for v in args.box.split(","))
    if len(box) != 4:
        ap.error("--box needs x,y,w,h")
    try:
        with open_source(args.frames, args.topic) as source:
            clip = [frame for _, (_index, _stamp, frame) in zip(range(args.limit + 1), source)]
    except SourceError as exc:
        print(f"error: {exc}")
        return 2
    if len(clip) < 2:
        ap.error(f"{args.frames}: fewer than 2 frames")
    cfg = Config()
    cfg.runtime.device = "cpu"
    # the score rule off: the probe must follow the target whatever the thresholds say
    # scale_from template: the similarity on every frame (pooled, the default, measures it only on the frames
    # the LOST rule reads it, i.e. never with the rule off as here)
    cfg.tracker = dataclasses.replace(cfg.tracker, mask_enabled=False, lost_threshold=0.0, lost_similarity=0.0,
                                      recover_similarity=0.0, lost_hold=False, scale_from="template")
    tracker = build_tracker(cfg, args.checkpoint)
    tracked = signals(tracker, clip[0], box, clip[1:])
    vanished = signals(tracker, clip[0], box, [painted_out(clip[0], box)] * args.vanish)

    print(f"{'':<22}{'score':>24}{'similarity':>24}")
    for name, values, pct in (("tracked (p1/p5/p50)", tracked, (1, 5, 50)),
                              ("vanished (p50/p95/max)", vanished, (50, 95, 100))):
        cols = ["/".join(f"{np.nanpercentile(values[:, k], p):.2f}" for p in pct) for k in (0, 1)]
        print(f"{name:<22}{cols[0]:>24}{cols[1]:>24}")
    score_cut = separating_threshold(tracked[:, 0], vanished[:, 0], args.percentile)
    similarity_cut = separating_threshold(tracked[:, 1], vanished[:, 1], args.percentile)
    shown = {k: "no separation" if math.isnan(v) else f"{v:.2f}"
             for k, v in (("lost_threshold", score_cut), ("lost_similarity", similarity_cut))}
    print(f"separating (tracked p{args.percentile:g} vs vanished max): tracker.lost_threshold {shown['lost_threshold']}, "
          f"tracker.lost_similarity {shown['lost_similarity']}; keep recover_threshold / recover_similarity above them")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
