"""The one-command demo: the real tracker node on a real clip, over DDS.

Starts `tracker_node` in its own process, plays a real clip as sensor_msgs/Image at camera
rate, sets the target through `~/set_target`, records what the node publishes and writes:

    OUT/annotated.mp4      every frame with the box/mask the node published for it
    OUT/contact_sheet.png  a grid of annotated frames across the clip
    OUT/summary.json       frames, fps, latency p50/p95, dropped frames, lost/recovered events

    ros2 run cyclesiam_ros demo [--clip DIR|VIDEO] [--box x,y,w,h] [--out DIR] [--rate HZ]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from cyclesiam.sources import open_source
from cyclesiam.visualize import contact_sheet, draw_results, draw_text_lines
from cyclesiam_ros.session import use_large_frame_profile

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CYCLESIAM_DATA", REPO / "data"))
# A held-out development clip (never used for training): a textured cube on a desk, a
# moving hand-held camera and a hand passing in front. Box of the cube in frame 0.
DEFAULT_CLIP = DATA / "mbt_cube"
DEFAULT_BOX = (314.0, 203.0, 132.0, 148.0)
FASTDDS_PROFILE = REPO / "config" / "fastdds_large_frames.xml"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="cyclesiam-demo", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clip", type=Path, default=DEFAULT_CLIP, help="video file or image folder (default: %(default)s)")
    p.add_argument("--box", default=",".join(f"{v:g}" for v in DEFAULT_BOX), help="x,y,w,h of the target in frame 0")
    p.add_argument("--out", type=Path, default=REPO / "outputs" / "demo", help="output folder (default: %(default)s)")
    p.add_argument("--rate", type=float, default=30.0, help="playback rate in Hz (default: %(default)s)")
    p.add_argument("--max-frames", type=int, default=0, help="play only the first N frames (0 = all)")
    p.add_argument("--checkpoint", default="", help="checkpoint for the node (default: the shipped model)")
    p.add_argument("--params-file", type=Path, default=REPO / "config" / "tracker.yaml")
    p.add_argument("--device", default="auto")
    p.add_argument("--set", dest="params", action="append", default=[], help="extra node parameter NAME:=VALUE")
    return p.parse_args(argv)


def load_clip(path: Path, max_frames: int) -> list[np.ndarray]:
    frames = []
    with open_source(path) as source:
        for _index, _stamp, frame in source:
            frames.append(frame)
            if max_frames and len(frames) >= max_frames:
                break
    if not frames:
        raise SystemExit(f"no frames in {path}")
    return frames


def node_params(args: argparse.Namespace) -> list[str]:
    params = [f"runtime.device:={args.device}"] + list(args.params)
    if args.checkpoint:
        params.append(f"checkpoint:={args.checkpoint}")
    return params


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    box = tuple(float(v) for v in args.box.split(","))
    if len(box) != 4:
        raise SystemExit("--box needs x,y,w,h")
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))
    use_large_frame_profile(FASTDDS_PROFILE)
    os.environ.setdefault("ROS_HOME", tempfile.mkdtemp(prefix="cyclesiam_demo_"))
    args.out.mkdir(parents=True, exist_ok=True)
    frames = load_clip(args.clip, args.max_frames)
    print(f"[demo] {len(frames)} frames {frames[0].shape[1]}x{frames[0].shape[0]} from {args.clip}", flush=True)

    import rclpy

    from cyclesiam_ros.messages import stamp_ns
    from cyclesiam_ros.session import TrackerSession, start_tracker_node, stop_process

    node = start_tracker_node("/demo", "/demo/camera/image_raw", args.out / "node.log", args.params_file, node_params(args))
    rclpy.init()
    session = TrackerSession(rclpy, "/demo", "/demo/camera/image_raw")
    try:
        try:
            session.wait_ready(120)
        except TimeoutError as exc:
            raise SystemExit(f"[demo] tracker node did not start: {exc}; see {args.out / 'node.log'}")
        first = session.publish_until_seen(frames[0])
        reply = session.set_target(box, target_id="target", stamp=first)
        if not reply.success:
            raise SystemExit(f"[demo] set_target failed: {reply.message}")
        print(f"[demo] node says: {reply.message}", flush=True)
        start = time.monotonic()
        stamps = [first] + session.play(frames[1:], args.rate)
        session.spin(1.5)
        wall = time.monotonic() - start
        status_by_stamp = {stamp_ns(s.header): s for s in session.received.status}
        summary = summarise(session.received, status_by_stamp, stamps, session.sent_at, wall, box)
        write_outputs(args.out, frames, stamps, session.received, status_by_stamp, summary, box, stamp_ns)
    finally:
        session.close()
        rclpy.shutdown()
        stop_process(node)
    print(json.dumps({k: summary[k] for k in ("frames_played", "frames_processed", "processed_fps",
                                               "latency_ms", "dropped_frames", "events")}, indent=1))
    print(f"[demo] outputs in {args.out}: annotated.mp4, contact_sheet.png, summary.json, node.log", flush=True)
    return 0


def summarise(received, status_by_stamp, stamps, sent_at, wall, box) -> dict:
    processed = [s for s in stamps if s in status_by_stamp]
    e2e = [
        (received.arrival[("status", s)] - sent_at[s]) * 1000.0
        for s in processed
        if ("status", s) in received.arrival and s in sent_at
    ]
    node_latency = [t.latency * 1000.0 for s in processed for t in status_by_stamp[s].targets]
    events, state = [], "tracking"
    for index, s in enumerate(stamps):
        if s not in status_by_stamp or not status_by_stamp[s].targets:
            continue
        new = "lost" if status_by_stamp[s].targets[0].state == 1 else "tracking"
        if new != state:
            events.append({"frame": index, "event": "lost" if new == "lost" else "recovered"})
            state = new
    pct = lambda xs, q: round(float(np.percentile(xs, q)), 1) if xs else None  # noqa: E731
    return {
        "frames_played": len(stamps),
        "frames_processed": len(processed),
        "processed_fps": round(len(processed) / wall, 1),
        "latency_ms": {"end_to_end_p50": pct(e2e, 50), "end_to_end_p95": pct(e2e, 95),
                       "node_p50": pct(node_latency, 50), "node_p95": pct(node_latency, 95)},
        "dropped_frames": len(stamps) - len(processed),
        "dropped_reported_by_node": int(sum(s.dropped_frames for s in received.status)),
        "events": events,
        "initial_box": list(box),
    }


def write_outputs(out: Path, frames, stamps, received, status_by_stamp, summary: dict, box, stamp_ns) -> None:
    from cyclesiam.tracker import TrackResult

    masks_by_stamp = {stamp_ns(m.header): m for m in received.masks}
    annotated, per_frame = [], []
    last = None
    for index, (frame, stamp) in enumerate(zip(frames, stamps)):
        results = []
        status = status_by_stamp.get(stamp)
        if index == 0:
            results = [TrackResult("target", tuple(box), 1.0, "tracking", [], None)]
        elif status is not None and status.targets:
            t = status.targets[0]
            w, h = t.bbox.size_x, t.bbox.size_y
            bbox = (t.bbox.center.position.x - w / 2, t.bbox.center.position.y - h / 2, w, h)
            mask_msg = masks_by_stamp.get(stamp)
            mask = None
            if mask_msg is not None:
                mask = np.frombuffer(bytes(mask_msg.data), np.uint8).reshape(mask_msg.height, mask_msg.step)[:, : mask_msg.width]
            results = [TrackResult(t.id, bbox, float(t.score), "lost" if t.state == 1 else "tracking", [], mask)]
            last = results
        elif last is not None:
            results = last  # frame dropped by the node: show its last output, marked below
        image = draw_results(frame, results)
        draw_text_lines(image, [f"frame {index}" + ("" if status is not None or index == 0 else " (dropped)")])
        annotated.append(image)
        if results:
            r = results[0]
            per_frame.append({"index": index, "processed": status is not None, "bbox": [round(v, 1) for v in r.bbox],
                              "score": round(r.score, 3), "state": r.state})
    summary["frames"] = per_frame
    height, width = annotated[0].shape[:2]
    writer = cv2.VideoWriter(str(out / "annotated.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, (width, height))
    for image in annotated:
        writer.write(image)
    writer.release()
    picks = np.linspace(0, len(annotated) - 1, num=min(12, len(annotated))).round().astype(int)
    cv2.imwrite(str(out / "contact_sheet.png"), contact_sheet([annotated[i] for i in picks], columns=4, width=320))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    raise SystemExit(main())
