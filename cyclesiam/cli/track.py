"""`cyclesiam-track`: track one box through a video, image folder or bag; write JSON and/or a video.

    cyclesiam-track INPUT --box x,y,w,h [--checkpoint F|random] [--topic T] [--config YAML]
                    [--set key=value ...] [--out annotated.mp4] [--json result.json] [--device D]

JSON: {"frames": [{"index": i, "bbox": [x, y, w, h], "score": s, "state": "tracking"|"lost",
"polygon": [[x, y], ...]}]}, one entry per input frame; frame 0 is the given box.
Without --checkpoint the shipped default model runs (named on stderr); `--checkpoint random`
runs an untrained, randomly initialised network (only for debugging).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from cyclesiam.config import ConfigError, load_config, parse_dotted
from cyclesiam.default_model import RANDOM_INIT, cli_checkpoint, describe_model
from cyclesiam.sources import FrameSource, SourceError, VideoSource, open_source
from cyclesiam.build import build_tracker
from cyclesiam.tracker import LOST, TrackResult
from cyclesiam.visualize import draw_results

def parse_box(text: str) -> tuple[float, float, float, float]:
    """'x,y,w,h' -> 4 floats (argparse type)."""
    parts = [p for p in text.replace(" ", "").split(",") if p]
    try:
        values = tuple(float(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"box must be x,y,w,h numbers, got '{text}'") from None
    if len(values) != 4:
        raise argparse.ArgumentTypeError(f"box must be 4 numbers x,y,w,h, got {len(values)} in '{text}'")
    return values  # type: ignore[return-value]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="cyclesiam-track", description=__doc__.split("\n\n")[0])
    p.add_argument("input", help="video file, image folder, rosbag2 directory / .mcap / .db3, or ROS 1 .bag")
    p.add_argument("--box", required=True, type=parse_box, help="initial box x,y,w,h in pixels (top-left, size)")
    p.add_argument("--checkpoint", help=f"model checkpoint (.safetensors); default: the shipped model; "
                                        f"'{RANDOM_INIT}' = an untrained random-init network")
    p.add_argument("--topic", help="image topic of a bag (needed when the bag has several)")
    p.add_argument("--config", help="YAML config merged over the defaults")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="config override, e.g. tracker.penalty_k=0.05 (repeatable)")
    p.add_argument("--out", help="annotated video to write (.mp4/.avi)")
    p.add_argument("--json", dest="json_path", help="results JSON to write")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N (overrides runtime.device)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def result_entry(index: int, result: TrackResult) -> dict:
    """One JSON frame entry."""
    return {
        "index": int(index),
        "bbox": [round(float(v), 3) for v in result.bbox],
        "score": round(float(result.score), 6),
        "state": result.state,
        "polygon": [[round(float(x), 3), round(float(y), 3)] for x, y in result.polygon],
    }


def _fps(source: FrameSource) -> float:
    if isinstance(source, VideoSource):
        cap = cv2.VideoCapture(str(source.path))
        fps = cap.get(cv2.CAP_PROP_FPS)
        cap.release()
        if fps and math.isfinite(fps) and 1.0 <= fps <= 240.0:
            return float(fps)
    stamps = getattr(source, "stamps", None)
    if stamps is not None and len(stamps) > 1:
        span = (int(stamps[-1]) - int(stamps[0])) / 1e9
        if span > 0:
            return float(min(max((len(stamps) - 1) / span, 1.0), 240.0))
    return 30.0


def run(args: argparse.Namespace) -> dict:
    """Track and return the JSON document (also written / rendered as asked)."""
    overrides = parse_dotted(args.overrides)
    if args.device:
        overrides.setdefault("runtime", {})["device"] = args.device
    cfg = load_config(args.config, overrides)
    checkpoint = cli_checkpoint(args.checkpoint)
    source = open_source(args.input, args.topic)
    print(f"cyclesiam-track: {describe_model(args.checkpoint, checkpoint)}", file=sys.stderr)
    tracker = build_tracker(cfg, checkpoint=checkpoint)
    writer = None
    frames: list[dict] = []
    try:
        total = len(source)
        progress = _progress(total, args.no_progress)
        target = None
        for index, _stamp, frame in source:
            if target is None:
                target = tracker.add_target(frame, args.box)
                results = [tracker.result(target)]
            else:
                results = tracker.track(frame)
            frames.append(result_entry(index, results[0]))
            if args.out:
                if writer is None:
                    writer = _open_writer(args.out, frame.shape, _fps(source))
                writer.write(draw_results(frame, results))
            progress.update(1)
            progress.set_postfix(ms=f"{tracker.timing.get('total', 0.0):.0f}", refresh=False)
        progress.close()
    finally:
        if writer is not None:
            writer.release()
        source.close()
    doc = {"frames": frames}
    if args.json_path:
        path = Path(args.json_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc))
    return doc


def _progress(total: int, disabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", disable=disabled, file=sys.stderr, dynamic_ncols=True)


def _open_writer(path: str, shape: Sequence[int], fps: float) -> cv2.VideoWriter:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fourcc = cv2.VideoWriter_fourcc(*("MJPG" if out.suffix.lower() == ".avi" else "mp4v"))
    writer = cv2.VideoWriter(str(out), fourcc, fps, (int(shape[1]), int(shape[0])))
    if not writer.isOpened():
        raise SourceError(f"{out}: cannot open a video writer (unsupported extension/codec?)")
    return writer


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.json_path and not args.out:
        print("cyclesiam-track: note: neither --json nor --out given; printing JSON to stdout", file=sys.stderr)
    try:
        doc = run(args)
    except (SourceError, ConfigError, ValueError, RuntimeError, FileNotFoundError) as exc:
        print(f"cyclesiam-track: error: {exc}", file=sys.stderr)
        return 2
    if not args.json_path and not args.out:
        print(json.dumps(doc))
    lost = sum(f["state"] == LOST for f in doc["frames"])
    print(f"cyclesiam-track: {len(doc['frames'])} frames, {lost} lost", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
