"""How long the on-robot flow takes here: ~/record -> cyclesiam-adapt -> ~/load_model (a probe, not a test).

A tracker_node in its own process tracks data/tree.avi played at 10 Hz over DDS (localhost). It
records `--frames` frames (and its tracked boxes) through ~/record, `cyclesiam-adapt --seed-topic` runs
on the bag (`--minutes`), and ~/load_model loads the result `--loads` times, alternating with the
shipped model, while frames flow. Prints: the record start/stop answer times, the adapt wall time,
per load the answer time (what the node reports as prepared / switch) and how many frames the old
model tracked meanwhile.

    .venv/bin/python probes/record_adapt_swap.py [--frames 60] [--minutes 1] [--loads 4] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
BOX = (110.0, 60.0, 60.0, 70.0)  # the tree in tree.avi


def timed(fn):
    t0 = time.monotonic()
    out = fn()
    return out, time.monotonic() - t0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--minutes", type=float, default=1.0)
    p.add_argument("--loads", type=int, default=4)
    p.add_argument("--out", default="")
    args = p.parse_args()
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    import cv2
    import rclpy

    from cyclesiam.default_model import default_checkpoint
    from cyclesiam_ros.session import TrackerSession, start_tracker_node, stop_process
    from cyclesiam_ros.srv import LoadModel, Record

    out = Path(args.out or tempfile.mkdtemp(prefix="record_adapt_swap_"))
    out.mkdir(parents=True, exist_ok=True)
    cap = cv2.VideoCapture(str(REPO / "data" / "tree.avi"))
    frames = []
    while True:
        ok, f = cap.read()
        if not ok:
            break
        frames.append(f)
    shipped = default_checkpoint()
    node = start_tracker_node("/probe", "/probe/camera/image_raw", out / "node.log", REPO / "config" / "tracker.yaml",
                              [f"checkpoint:={shipped}"])
    rclpy.init()
    client = TrackerSession(rclpy, "/probe", "/probe/camera/image_raw")
    record = client.node.create_client(Record, "/probe/cyclesiam_tracker/record")
    load = client.node.create_client(LoadModel, "/probe/cyclesiam_tracker/load_model")
    try:
        client.wait_ready(180)
        client.publish_until_seen(frames[0], 60)
        assert client.set_target(BOX, target_id="tree").success
        bag = out / "bag"
        r, t_start = timed(lambda: client.call(record, Record.Request(start=True, path=str(bag), every_nth=1,
                                                                      max_frames=args.frames), 60))
        assert r.success, r.message
        client.play([frames[k % len(frames)] for k in range(args.frames)], rate_hz=10.0)
        i = args.frames
        r, t_stop = timed(lambda: client.call(record, Record.Request(start=False), 60))
        print(f"record: start answered in {t_start * 1000:.0f} ms; {r.frames_written} frames "
              f"({r.message.split(':', 1)[-1].strip()[:80]}); stop answered in {t_stop * 1000:.0f} ms")
        run = out / "run"
        # the README's flow: seeded by the node's own tracked boxes, which ~/record wrote beside the frames
        adapt = [sys.executable, "-m", "cyclesiam_train.adapt", "--data", str(bag), "--topic", "/probe/camera/image_raw",
                 "--seed-topic", "/probe/cyclesiam_tracker/detections", "--out", str(run),
                 "--minutes", str(args.minutes), "--no-progress"]
        res, t_adapt = timed(lambda: subprocess.run(adapt, cwd=REPO, capture_output=True, text=True))
        print(f"cyclesiam-adapt --minutes {args.minutes:g} on {r.frames_written} frames: {t_adapt:.0f} s wall, exit "
              f"{res.returncode}; {res.stdout.strip().splitlines()[-1][:200] if res.stdout.strip() else res.stderr[-300:]}")
        models = [run / "adapted.safetensors", shipped]
        for n in range(args.loads):
            path = models[n % 2]
            client.clear_received()
            future = load.call_async(LoadModel.Request(path=str(path)))
            t0 = time.monotonic()
            while not future.done():
                client.publish_frame(frames[i % len(frames)])
                client.spin(0.1)
                i += 1
            answer = future.result()
            during = len(client.received.status)
            print(f"load_model #{n + 1} {path.parent.name}/{path.name}: answered in {time.monotonic() - t0:.1f} s, "
                  f"{during} frames tracked meanwhile; {answer.message.split('; ', 2)[-1][:160]}")
    finally:
        client.close()
        stop_process(node, 60)
        rclpy.shutdown()
    print(f"outputs in {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
