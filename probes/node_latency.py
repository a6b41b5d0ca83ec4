"""End-to-end latency of the ROS 2 tracker node (benchmark, not a test).

Plays real 640x480 frames (data/mbt_cube) as sensor_msgs/Image over DDS (localhost, large
shared-memory segments) to a tracker_node in its own process at 30 Hz and 60 Hz, with one
target, and prints per rate:
  end-to-end latency (publish -> ~/status received) p50/p95,
  node latency (image received -> outputs published) p50/p95,
  core tracker time p50 (tracker.track() inside the node), and the node's overhead over it
  (node p50 - core p50: mostly the wait for the worker to finish the frame before, whenever
  track() is slower than the input; probes/node_cpu_profile.py --live splits it),
  processed fps, dropped frames, and whether latency grew over the run (queueing).

    .venv/bin/python probes/node_latency.py [--checkpoint F] [--rates 30 60] [--seconds 8] [--mask]
"""

from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BOX = (314.0, 203.0, 132.0, 148.0)  # the cube in data/mbt_cube frame 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default="")
    ap.add_argument("--rates", type=float, nargs="+", default=[30.0, 60.0])
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--mask", action="store_true", help="also subscribe to ~/mask (masks computed and published)")
    ap.add_argument("--set", dest="params", action="append", default=[], help="node parameter NAME:=VALUE")
    args = ap.parse_args()
    from cyclesiam_ros.session import use_large_frame_profile

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    use_large_frame_profile(REPO / "config" / "fastdds_large_frames.xml")
    os.environ.setdefault("ROS_HOME", tempfile.mkdtemp(prefix="cyclesiam_bench_"))

    import rclpy

    from cyclesiam_ros.messages import stamp_ns
    from cyclesiam_ros.session import TrackerSession, start_tracker_node, stop_process

    frames = [cv2.imread(p) for p in sorted(glob.glob(str(REPO / "data" / "mbt_cube" / "*.pgm")))]
    if not frames:
        raise SystemExit("no frames: run scripts/fetch_data.sh")
    params = ["runtime.device:=cpu"] + list(args.params)
    if args.checkpoint:
        params.append(f"checkpoint:={args.checkpoint}")
    log = Path(tempfile.mkdtemp()) / "node.log"
    node = start_tracker_node("/bench", "/bench/image", log, REPO / "config" / "tracker.yaml", params)
    rclpy.init()
    session = TrackerSession(rclpy, "/bench", "/bench/image")
    if not args.mask:
        session.node.destroy_subscription(next(s for s in session.node.subscriptions if s.topic_name.endswith("/mask")))
    rows = []
    try:
        session.wait_ready(120)
        for rate in args.rates:
            first = session.publish_until_seen(frames[0])
            reply = session.set_target(BOX, target_id="cube", stamp=first)
            assert reply.success, reply.message
            session.clear_received()
            count = int(rate * args.seconds)
            start = time.monotonic()
            burst = [frames[(i + 1) % len(frames)] for i in range(count)]
            stamps = session.play(burst, rate, step_ns=int(1e9 / rate))
            sent = {s: session.sent_at[s] for s in stamps}
            session.spin(2.5)
            rows.append(measure(rate, count, sent, session.received, time.monotonic() - start - 2.5, stamp_ns))
            session.remove_target("")
            session.spin(0.5)
    finally:
        session.close()
        rclpy.shutdown()
        stop_process(node)
    print_table(rows)
    return 0


def measure(rate, count, sent, received, wall, stamp_ns) -> dict:
    status = [s for s in received.status if stamp_ns(s.header) in sent and s.targets]
    e2e = np.array([(received.arrival[("status", stamp_ns(s.header))] - sent[stamp_ns(s.header)]) * 1e3 for s in status])
    node = np.array([s.targets[0].latency * 1e3 for s in status])
    diag = [d for d in received.diagnostics for st in d.status]
    values = {kv.key: kv.value for kv in diag[-1].status[0].values} if diag else {}
    core = float(values.get("core_tracker_p50_ms", "nan"))
    third = max(1, len(node) // 3)
    return {
        "rate": rate,
        "sent": count,
        "processed": len(status),
        "fps": len(status) / wall,
        "e2e_p50": np.percentile(e2e, 50), "e2e_p95": np.percentile(e2e, 95),
        "node_p50": np.percentile(node, 50), "node_p95": np.percentile(node, 95),
        "core_p50": core,
        "overhead_p50": np.percentile(node, 50) - core,
        "dropped": count - len(status),
        "node_received": values.get("frames_received", "?"),
        "node_dropped": values.get("frames_dropped", "?"),
        "growth": np.median(node[-third:]) - np.median(node[:third]),
    }


def print_table(rows) -> None:
    head = ("input Hz", "sent", "processed", "fps", "e2e p50", "e2e p95", "node p50", "node p95",
            "core p50", "overhead", "not processed", "node rx/dropped (cumulative)", "latency growth")
    print(" | ".join(head))
    for r in rows:
        print(" | ".join([
            f"{r['rate']:.0f}", str(r["sent"]), str(r["processed"]), f"{r['fps']:.1f}",
            f"{r['e2e_p50']:.1f} ms", f"{r['e2e_p95']:.1f} ms", f"{r['node_p50']:.1f} ms", f"{r['node_p95']:.1f} ms",
            f"{r['core_p50']:.1f} ms", f"{r['overhead_p50']:.1f} ms", str(r["dropped"]),
            f"{r['node_received']}/{r['node_dropped']}", f"{r['growth']:+.1f} ms",
        ]))


if __name__ == "__main__":
    raise SystemExit(main())
