"""Process CPU time per stage of the tracker node's per-frame path (benchmark, not a test).

    source scripts/ros_env.sh
    PYTHONPATH=TREE .venv/bin/python probes/node_cpu_profile.py [--frames 120] [--debug] [--trees A B --repeats 3]

A real `TrackerNode` (config/tracker.yaml, CPU, the shipped model) runs in this process over real
Fast DDS; a subscriber in a second process takes ~/detections, ~/detection, ~/mask and ~/status
(and ~/debug_image with --debug), so the node builds and sends every output as it does at run
time. Each 640x480 bgr8 data/mbt_cube frame is serialised once up front; per frame the probe
deserialises it (what rclpy's take does before the callback), calls the node's image callback
`on_image` and then `process` on this thread (the worker thread is swapped for a synchronous one,
so the order of work is the node's and nothing else runs meanwhile). One target (the cube), masks on.

The node's functions are wrapped here by their public names (the node is not changed), with
process CPU time; a stage's time excludes the wrapped stages it calls. "other" is the frame's
total minus the wrapped stages (the node's glue, frame history, stats, lock). Printed: p50 per
stage over the frames, and with --trees, each tree run as a child process alternately
(A B A B ...) with the p50s and their range over the repeats.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BOX = (314.0, 203.0, 132.0, 148.0)  # the cube in data/mbt_cube frame 0
NS = "/prof"
OUTPUTS = ("detections", "detection", "mask", "status")
SPENT: dict[str, float] = defaultdict(float)
_STACK: list[list[float]] = []  # [start, time spent in wrapped callees] per open stage


def timed(stage: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` adding its process CPU time, minus that of wrapped stages it calls, to SPENT[stage]."""
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _STACK.append([time.process_time(), 0.0])
        try:
            return fn(*args, **kwargs)
        finally:
            start, inner = _STACK.pop()
            spent = time.process_time() - start
            SPENT[stage] += spent - inner
            if _STACK:
                _STACK[-1][1] += spent
    return wrapper


class SyncWorker:
    """Stands in for NewestFrameWorker: keeps the submitted frame for the probe to process."""

    def __init__(self) -> None:
        self.frame = None

    def submit(self, frame) -> bool:
        self.frame = frame
        return False

    def take_dropped(self) -> int:
        return 0

    def stop(self, timeout: float = 5.0) -> None:
        pass


def instrument(node) -> None:
    from cyclesiam_ros import messages, tracker_node

    if hasattr(tracker_node, "image_to_bgr"):
        tracker_node.image_to_bgr = timed("image msg -> ndarray", tracker_node.image_to_bgr)
    names = {"detections_msg": "build Detection2DArray", "detection_msg": "build Detection2D",
             "status_msg": "build TrackStatusArray", "union_mask": "union mask (ndarray)",
             "mono8_msg": "build mask Image", "bgr8_msg": "build debug Image"}
    for name, stage in names.items():
        if hasattr(messages, name):
            setattr(messages, name, timed(stage, getattr(messages, name)))
    if hasattr(tracker_node, "draw_results"):
        tracker_node.draw_results = timed("draw overlay", tracker_node.draw_results)
    node.tracker.track = timed("track()", node.tracker.track)
    for attr in ("pub_detections", "pub_detection", "pub_mask", "pub_debug", "pub_status"):
        pub = getattr(node, attr)
        pub.publish = timed(f"publish {attr[4:]}", pub.publish)
    node.depth3d.publish = timed("depth3d (inactive)", node.depth3d.publish)


def image_messages(paths: list[str]) -> list[bytes]:
    import cv2
    from rclpy.serialization import serialize_message
    from sensor_msgs.msg import Image

    out = []
    for i, path in enumerate(paths):
        frame = cv2.imread(path)
        msg = Image(height=frame.shape[0], width=frame.shape[1], encoding="bgr8", step=frame.shape[1] * 3)
        msg.data = frame.tobytes()
        msg.header.frame_id = "camera"
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1 + i // 30, (i % 30) * 33_333_333
        out.append(serialize_message(msg))
    return out


def run_node(frames: int, debug: bool) -> dict[str, list[float]]:
    """Per-stage CPU ms of each profiled frame."""
    import rclpy
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import Image

    from cyclesiam_ros import messages
    from cyclesiam_ros.tracker_node import TrackerNode

    paths = sorted(glob.glob(str(REPO / "data" / "mbt_cube" / "*.pgm")))
    if not paths:
        raise SystemExit("no frames: run scripts/fetch_data.sh")
    wire = image_messages(paths)
    rclpy.init(args=["--ros-args", "--params-file", str(REPO / "config" / "tracker.yaml"),
                     "-p", "runtime.device:=cpu", "-r", f"__ns:={NS}"])
    node = TrackerNode()
    sub = subscriber_process(debug)
    try:
        assert node.start(), "the node did not start"
        node._worker.stop()
        node._worker = SyncWorker()
        wanted = [node.pub_detections, node.pub_detection, node.pub_mask, node.pub_status]
        wanted += [node.pub_debug] if debug else []
        deadline = time.monotonic() + 60
        while not all(p.get_subscription_count() for p in wanted):
            if time.monotonic() > deadline or sub.poll() is not None:
                raise SystemExit("the subscriber process never matched the node's publishers")
            time.sleep(0.1)
        first = deserialize_message(wire[0], Image)
        node.on_image(first)
        node._set_target(first.header, messages.bbox_msg(*BOX), "cube", None, "")
        instrument(node)
        deser = timed("deserialize (rclpy take)", deserialize_message)
        rows: dict[str, list[float]] = defaultdict(list)
        for i in range(1, frames + 11):
            SPENT.clear()
            c0 = time.process_time()
            msg = deser(wire[i % len(wire)], Image)
            node.on_image(msg)
            node.process(node._worker.frame)
            total = (time.process_time() - c0) * 1e3
            if i <= 10:  # warm-up
                continue
            per = {k: v * 1e3 for k, v in SPENT.items()}
            per["other"] = total - sum(per.values())
            per["total"] = total
            per["total - track()"] = total - per.get("track()", 0.0)
            for k, v in per.items():
                rows[k].append(v)
        return dict(rows)
    finally:
        sub.terminate()
        sub.wait(timeout=10)
        node.release()
        node.destroy_node()
        rclpy.shutdown()


def run_live(seconds: float, rate: float) -> dict[str, Any]:
    """The node as it runs (executor thread + worker thread) fed at `rate` Hz by a player process:
    per processed frame, wall ms of the wait for the worker, process(), track() and the rest."""
    import threading

    import rclpy
    from rclpy.executors import SingleThreadedExecutor

    from cyclesiam_ros.tracker_node import TrackerNode

    rclpy.init(args=["--ros-args", "--params-file", str(REPO / "config" / "tracker.yaml"),
                     "-p", "runtime.device:=cpu", "-r", f"__ns:={NS}", "-r", f"image:={NS}/image"])
    node = TrackerNode()
    rows: dict[str, list[float]] = defaultdict(list)
    assert node.start(), "the node did not start"
    process, track = node.process, node.tracker.track

    def timed_process(frame) -> None:
        start = time.monotonic()
        rows["wait for the worker"].append((start - frame.received) * 1e3)
        SPENT.clear()
        process(frame)
        if "track()" in SPENT:
            rows["process() wall"].append((time.monotonic() - start) * 1e3)
            rows["track() wall"].append(SPENT["track()"] * 1e3)
            rows["process() - track() wall"].append(rows["process() wall"][-1] - rows["track() wall"][-1])
            rows["received -> published"].append((time.monotonic() - frame.received) * 1e3)
        else:
            rows["wait for the worker"].pop()  # before the target was set

    def wall_track(*args, **kwargs):
        start = time.monotonic()
        try:
            return track(*args, **kwargs)
        finally:
            SPENT["track()"] = time.monotonic() - start

    node.tracker.track = wall_track
    node._worker.stop()
    from cyclesiam_ros.worker import NewestFrameWorker
    node._worker = NewestFrameWorker(timed_process, node._on_process_error)
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    c0, w0 = time.process_time(), time.monotonic()
    try:
        player = subprocess.run([sys.executable, __file__, "--play", str(seconds), "--rate", str(rate)],
                                capture_output=True, text=True, timeout=seconds + 120)
        cpu_share = (time.process_time() - c0) / (time.monotonic() - w0)
        if player.returncode != 0:
            raise SystemExit(f"player failed: {player.stderr[-2000:]}")
        played = json.loads(player.stdout.strip().splitlines()[-1])
    finally:
        executor.shutdown(timeout_sec=5)
        node.release()
        node.destroy_node()
        rclpy.shutdown()
    return {"rows": dict(rows), "player": played, "node_cpu_share": cpu_share}


def play(seconds: float, rate: float) -> None:
    """The player process: frames at `rate` Hz to the node, one target, ~/mask subscribed;
    prints JSON: frames sent, frames with a status, end-to-end ms (publish -> ~/status)."""
    import cv2
    import rclpy

    from cyclesiam_ros.messages import stamp_ns
    from cyclesiam_ros.session import TrackerSession

    frames = [cv2.imread(p) for p in sorted(glob.glob(str(REPO / "data" / "mbt_cube" / "*.pgm")))]
    rclpy.init()
    session = TrackerSession(rclpy, NS, f"{NS}/image")
    session.wait_ready(120)
    first = session.publish_until_seen(frames[0])
    assert session.set_target(BOX, target_id="cube", stamp=first).success
    session.clear_received()
    count = int(rate * seconds)
    stamps = session.play([frames[(i + 1) % len(frames)] for i in range(count)], rate, step_ns=int(1e9 / rate))
    session.spin(2.0)
    status = [s for s in session.received.status if stamp_ns(s.header) in set(stamps) and s.targets]
    e2e = [(session.received.arrival[("status", stamp_ns(s.header))] - session.sent_at[stamp_ns(s.header)]) * 1e3
           for s in status]
    session.close()
    rclpy.shutdown()
    print(json.dumps({"sent": count, "processed": len(status), "e2e": e2e}))


def print_live(out: dict[str, Any], rate: float) -> None:
    rows, played = out["rows"], out["player"]
    e2e = played["e2e"]
    print(f"live at {rate:.0f} Hz: {played['processed']}/{played['sent']} frames processed; this process used "
          f"{out['node_cpu_share']:.2f} CPU-s per s")
    print("| wall ms per processed frame | p50 | p95 |")
    rows = dict(rows, **{"end-to-end (player publish -> ~/status)": e2e})
    for k, v in rows.items():
        print(f"| {k} | {np.percentile(v, 50):.1f} | {np.percentile(v, 95):.1f} |")


def subscriber_process(debug: bool) -> subprocess.Popen:
    args = [sys.executable, __file__, "--subscribe"] + (["--debug"] if debug else [])
    return subprocess.Popen(args, stdout=subprocess.DEVNULL)


def subscribe(debug: bool) -> None:
    """The other process: takes the node's outputs until terminated."""
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy, HistoryPolicy
    from sensor_msgs.msg import Image
    from vision_msgs.msg import Detection2D, Detection2DArray

    from cyclesiam_ros.msg import TrackStatusArray

    rclpy.init()
    node = rclpy.create_node("node_cpu_profile_subscriber")
    qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=5, reliability=ReliabilityPolicy.RELIABLE)
    base = f"{NS}/cyclesiam_tracker"
    topics = [(Detection2DArray, "detections"), (Detection2D, "detection"), (Image, "mask"),
              (TrackStatusArray, "status")] + ([(Image, "debug_image")] if debug else [])
    for kind, name in topics:
        node.create_subscription(kind, f"{base}/{name}", lambda msg: None, qos)
    try:
        rclpy.spin(node)
    except BaseException:
        pass


def set_environment() -> None:
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    os.environ.setdefault("ROS_HOME", tempfile.mkdtemp(prefix="cyclesiam_prof_"))
    for name in ("FASTRTPS_DEFAULT_PROFILES_FILE", "FASTDDS_DEFAULT_PROFILES_FILE"):
        os.environ.setdefault(name, str(REPO / "config" / "fastdds_large_frames.xml"))


def print_single(rows: dict[str, list[float]]) -> None:
    frames = len(rows["total"])
    print(f"CPU ms per frame, p50 [p10-p90] over {frames} frames")
    for k in ordered(rows):
        v = rows[k]
        print(f"| {k:<28} | {np.median(v):7.2f} | {np.percentile(v, 10):6.2f}-{np.percentile(v, 90):.2f} |")


def ordered(rows: dict[str, list[float]]) -> list[str]:
    last = ("other", "total - track()", "total")
    keys = sorted((k for k in rows if k not in last), key=lambda k: -float(np.median(rows[k])))
    return keys + [k for k in last if k in rows]


def compare(trees: list[str], repeats: int, frames: int, debug: bool) -> None:
    """Each tree's p50 per stage, trees alternated (A B A B ...), the p50 over repeats and its range."""
    runs: dict[str, list[dict[str, float]]] = {t: [] for t in trees}
    for r in range(repeats):
        for tree in trees:
            env = dict(os.environ, PYTHONPATH=tree)
            env["ROS_DOMAIN_ID"] = str(150 + (os.getpid() + r) % 50)
            cmd = [sys.executable, __file__, "--frames", str(frames), "--json"] + (["--debug"] if debug else [])
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
            rows = json.loads(out.strip().splitlines()[-1])
            runs[tree].append({k: float(np.median(v)) for k, v in rows.items()})
            print(f"repeat {r + 1} {tree}: total {runs[tree][-1]['total']:.2f} ms", file=sys.stderr, flush=True)
    keys = ordered({k: [run[k] for run in runs[trees[0]] if k in run] for k in runs[trees[0]][0]})
    keys += sorted({k for t in trees for run in runs[t] for k in run} - set(keys))
    print(f"CPU ms per frame: p50 over {frames} frames, then the median [min-max] of that over {repeats} "
          f"alternated runs")
    print("| stage | " + " | ".join(trees) + " |")
    for k in keys:
        cells = []
        for t in trees:
            v = [run.get(k, 0.0) for run in runs[t]]
            cells.append(f"{np.median(v):.2f} [{min(v):.2f}-{max(v):.2f}]")
        print(f"| {k} | " + " | ".join(cells) + " |")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--debug", action="store_true", help="also subscribe to ~/debug_image (overlay built)")
    ap.add_argument("--trees", nargs="+", default=[], help="source trees to compare (PYTHONPATH of each child)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--live", type=float, default=0.0, metavar="S",
                    help="run the node as deployed for S seconds fed by a player process (wall breakdown)")
    ap.add_argument("--rate", type=float, default=30.0, help="--live input rate (Hz)")
    ap.add_argument("--play", type=float, default=0.0, help=argparse.SUPPRESS)
    ap.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--subscribe", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    set_environment()
    if args.subscribe:
        subscribe(args.debug)
        return 0
    if args.play:
        play(args.play, args.rate)
        return 0
    if args.live:
        print_live(run_live(args.live, args.rate), args.rate)
        return 0
    if args.trees:
        compare(args.trees, args.repeats, args.frames, args.debug)
        return 0
    rows = run_node(args.frames, args.debug)
    if args.json:
        print(json.dumps(rows))
    else:
        print_single(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
