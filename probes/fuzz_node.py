"""Seeded, bounded fuzz of the tracker node over real DDS (benchmark, not a test; issue 25).

Two nodes in their own processes (raw input, then compressed input), both with a reliable image
subscription so that every message sent is accounted for. Phases:
  raw       bad sensor_msgs/Image of random size / encoding / step / data length (and valid ones);
            an independent oracle (the Image definition + the documented encodings + the pixel
            limit) says which must be refused; the node's counters must agree exactly
  size      a clean run of the clip against one with 1x1 / 7x13 frames (and bad images) between
            the frames: the target's boxes must be identical
  calls     bad ~/set_target and ~/remove_target calls (ids, boxes, stamps, frame ids, masks),
            each judged by the same kind of oracle; bad ~/target detections
  compressed truncated / bit-flipped / random / bomb PNG and JPEG (header declaring more pixels
            than max_image_pixels) / other formats
  memory    at the default max_image_pixels: 36 PNGs of 62 KB that decode to 64 MB (refused) and 36
            that decode to 48 MiB (accepted; the history keeps at most history_max_mb of them)
and prints, per phase: crashes, silent acceptances (refusable input accepted), wrong refusals,
unaccounted messages, log lines, decoder lines that reached stderr, and the node's RSS.

    .venv/bin/python probes/fuzz_node.py [--seed 0] [--count 300]
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

BOX = (110.0, 60.0, 60.0, 70.0)  # the tree in tree.avi
MAX_PIXELS = 640 * 480  # the nodes run with this limit so that over-limit images stay cheap to send
# the oracle: sensor_msgs/Image encodings the README documents, with their bytes per pixel
DOCUMENTED = {"mono8": 1, "mono16": 2, "bgr8": 3, "rgb8": 3, "bgra8": 4, "rgba8": 4, "8UC1": 1, "8UC3": 3,
              "bayer_rggb8": 1, "bayer_bggr8": 1, "bayer_gbrg8": 1, "bayer_grbg8": 1}
UNDOCUMENTED = ["32FC1", "bgr16", "yuv422", "", "BGR8", "mono8 ", "x" * 20000, "bgr8\n[ERROR] forged", "ñ\u2028"]
LOG_LINE = re.compile(r"^\[(DEBUG|INFO|WARN|ERROR|FATAL)\] ")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Node:
    """A tracker node process and a session talking to it, with a reliable image publisher."""

    def __init__(self, rclpy, name: str, compressed: bool, tmp: Path) -> None:
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

        from cyclesiam_ros.session import TrackerSession, start_tracker_node

        self.log = tmp / f"{name}.log"
        params = ["runtime.device:=cpu", "image_reliability:=reliable", "image_qos_depth:=100",
                  f"max_image_pixels:={MAX_PIXELS}", "diagnostics_period:=0.2",
                  f"input_transport:={'compressed' if compressed else 'raw'}"]
        self.proc = start_tracker_node(f"/{name}", f"/{name}/image", self.log, REPO / "config" / "tracker.yaml", params)
        self.session = TrackerSession(rclpy, f"/{name}", f"/{name}/image", compressed=compressed)
        topic = f"/{name}/image" + ("/compressed" if compressed else "")
        msg_type = self.session.CompressedImage if compressed else self.session.Image
        qos = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE)
        self.session.node.destroy_publisher(self.session.image_pub)  # best effort: the node's is reliable here
        self.pub = self.session.image_pub = self.session.node.create_publisher(msg_type, topic, qos)
        try:
            self.session.wait_ready(180)
        except TimeoutError:
            self.close()
            raise

    def close(self) -> int:
        from cyclesiam_ros.session import stop_process

        self.session.close()
        return stop_process(self.proc)

    def counters(self) -> dict[str, int]:
        self.session.received.diagnostics.clear()
        self.session.spin_until(lambda: self.session.received.diagnostics, 5)
        values = {kv.key: kv.value for kv in self.session.received.diagnostics[-1].status[0].values}
        return {"received": int(values["frames_received"]), "bad": int(values["bad_images"])}

    def settle(self, expected_total: int, timeout: float = 30.0) -> dict[str, int]:
        """Counters once received + bad reach `expected_total` (every message handled) or time is up."""
        deadline = time.monotonic() + timeout
        while True:
            counts = self.counters()
            if counts["received"] + counts["bad"] >= expected_total or time.monotonic() > deadline:
                return counts

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def alive(self) -> bool:
        return self.proc.poll() is None


def random_raw(rng: np.random.Generator, node: Node, stamp: int):
    """A random Image and whether the oracle says the node must accept it."""
    encoding = str(rng.choice(list(DOCUMENTED) + UNDOCUMENTED))
    bpp = DOCUMENTED.get(encoding, 3)
    width = int(rng.choice([0, 1, 2, 7, int(rng.integers(1, 700)), 800, 70000]))
    height = int(rng.choice([0, 1, 3, 13, int(rng.integers(1, 500)), 600, 70000]))
    row = width * bpp
    step = int(rng.choice([row, row + int(rng.integers(1, 65)), max(0, row - 1), 0, 2**31]))
    length = step * height
    if length > 4_000_000 or rng.random() < 0.2:
        length = int(rng.integers(0, 1000)) if length > 4_000_000 else max(0, length + int(rng.integers(-50, 50)))
    msg = node.session.Image(width=width, height=height, encoding=encoding, step=step, is_bigendian=int(rng.integers(0, 2)))
    msg.data = rng.integers(0, 256, length, dtype=np.uint8).tobytes()
    msg.header.frame_id = str(rng.choice(["camera", "", "x" * 5000, "cam\nera"]))
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp, 1_000_000_000)
    valid = (encoding in DOCUMENTED and width > 0 and height > 0 and width * height <= MAX_PIXELS
             and step >= row and length == step * height)
    return msg, valid


def phase_raw(node: Node, rng, count: int, frames) -> dict:
    base = node.counters()
    valid_sent = 0
    for index in range(count):
        msg, valid = random_raw(rng, node, node.session.next_stamp())
        node.pub.publish(msg)
        valid_sent += valid
        node.session.spin(0.01)
    got = node.settle(base["received"] + base["bad"] + count)
    accepted, refused = got["received"] - base["received"], got["bad"] - base["bad"]
    return {"sent": count, "valid": valid_sent, "accepted": accepted, "refused": refused,
            "silent_acceptances": max(0, accepted - valid_sent), "wrong_refusals": max(0, refused - (count - valid_sent)),
            "unaccounted": count - accepted - refused}


def track_clip(node: Node, frames, target_id: str, odd: list | None = None) -> list:
    """Boxes of `target_id` on frames 1.. (each frame waited for); `odd` messages after frame 30."""
    from cyclesiam_ros.messages import stamp_ns

    session = node.session
    first = session.next_stamp()
    node.pub.publish(session.image_msg(frames[0], first))
    session.spin_until(lambda: any(stamp_ns(s.header) == first for s in session.received.status), 10)
    reply = session.set_target(BOX, target_id=target_id, stamp=first)
    assert reply.success, reply.message
    boxes = []
    for index, frame in enumerate(frames[1:], start=1):
        if index == 31:
            for msg in odd or []:
                msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(session.next_stamp(), 1_000_000_000)
                node.pub.publish(msg)
                session.spin(0.1)
        stamp = session.next_stamp()
        node.pub.publish(session.image_msg(frame, stamp))
        seen = lambda: [t for s in session.received.status if stamp_ns(s.header) == stamp for t in s.targets]  # noqa: E731
        session.spin_until(seen, 10)
        found = [t.bbox for t in seen() if t.id == target_id]
        boxes.append(None if not found else (found[0].center.position.x, found[0].center.position.y,
                                             found[0].size_x, found[0].size_y))
    session.remove_target("")
    return boxes


def phase_size(node: Node, rng, frames) -> dict:
    from cyclesiam.bbox import iou

    clean = track_clip(node, frames, "clean")
    session = node.session
    odd = []
    for width, height in [(1, 1), (7, 13), (320, 239), (640, 480)]:
        odd.append(session.image_msg(np.full((height, width, 3), 128, np.uint8), session.next_stamp()))
    odd.append(random_raw(rng, node, session.next_stamp())[0])
    fuzzed = track_clip(node, frames, "fuzz", odd)
    ious = [float(iou(a, b, fmt="cxcywh")) if a and b else 0.0 for a, b in zip(clean, fuzzed)]
    return {"frames": len(ious), "min_iou_vs_clean": round(min(ious), 4), "identical": sum(a == b for a, b in zip(clean, fuzzed))}


def pick(rng, good: list, bad: list, p_good: float = 0.75):
    """A random value of `good` with probability `p_good`, else one of `bad`."""
    values = good if rng.random() < p_good else bad
    return values[int(rng.integers(0, len(values)))]


def random_call(rng, stamps: list[int]):
    """(box, id, stamp, frame_id, mask, whether the oracle says it must be accepted)."""
    width, height = 320, 240
    sane = [float(rng.uniform(-20, 250)), float(rng.uniform(-20, 180)), float(rng.uniform(2, 120)), float(rng.uniform(2, 120))]
    odd_sizes = [0.0, -5.0, 1e-9, 0.5, 1e308, 2000.0, math.nan, math.inf]
    box = pick(rng, [sane], [sane[:2] + [float(rng.choice(odd_sizes)), sane[3]], [math.nan, 0.0, 10.0, 10.0],
                             [float(rng.uniform(330, 1e6)), 10.0, 10.0, 10.0], sane[:3] + [float(rng.choice(odd_sizes))]])
    target_id = pick(rng, ["", "cup", "x" * 64, "ñandú"], ["x" * 65, "x" * 100000, "a\nb", "tab\t", "\x1b[31m"])
    stamp = pick(rng, [0, stamps[-1], stamps[len(stamps) // 2]], [stamps[-1] + 10**9, 5])
    frame_id = pick(rng, ["", "camera"], ["other", "camera\n"], 0.8)
    mask_shape = pick(rng, [None, (height, width)], [(10, 10), (width, height)], 0.8)
    mask = None if mask_shape is None else (rng.random(mask_shape) > 0.5).astype(np.uint8) * 255
    x, y, w, h = box
    finite = all(math.isfinite(v) for v in box) and w > 0 and h > 0
    clipped_w = min(x + w, width) - max(x, 0.0) if finite else 0.0
    clipped_h = min(y + h, height) - max(y, 0.0) if finite else 0.0
    valid = (len(target_id) <= 64 and target_id.isprintable() and finite and clipped_w >= 1 and clipped_h >= 1
             and w <= 4 * width and h <= 4 * height and (stamp == 0 or stamp in stamps)
             and frame_id in ("", "camera") and mask_shape in (None, (height, width)))
    return box, target_id, stamp, frame_id, mask, valid


def phase_calls(node: Node, rng, count: int, frames) -> dict:
    from vision_msgs.msg import Detection2D, ObjectHypothesisWithPose

    session = node.session
    stamps = []
    for frame in frames[:5]:
        stamps.append(session.next_stamp())
        node.pub.publish(session.image_msg(frame, stamps[-1]))
        session.spin(0.1)
    silent, wrong, no_reason, timeouts, accepted = 0, 0, 0, 0, 0
    for _ in range(count):
        box, target_id, stamp, frame_id, mask, valid = random_call(rng, stamps)
        try:
            reply = session.set_target(box, target_id, stamp, frame_id, mask)
        except TimeoutError:
            timeouts += 1
            continue
        silent += reply.success and not valid
        wrong += valid and not reply.success
        no_reason += not reply.success and not reply.message
        if reply.success:
            accepted += 1
            session.remove_target("")
        if rng.random() < 0.2:
            reply = session.remove_target(str(rng.choice(["nope", "x" * 100000, "a\n[ERROR] b"])))
            silent += reply.success
    for score in [math.nan, math.inf, -1.0, 2.0] * 5:  # detections to refuse: none may add a target
        det = Detection2D()
        det.bbox.center.position.x, det.bbox.center.position.y, det.bbox.size_x, det.bbox.size_y = 150.0, 100.0, 40.0, 40.0
        hyp = ObjectHypothesisWithPose()
        hyp.hypothesis.score = score
        det.results = [hyp]
        session.target_pub.publish(det)
        session.spin(0.02)
    session.clear_received()
    node.pub.publish(session.image_msg(frames[6], session.next_stamp()))
    session.spin_until(lambda: session.received.status, 10)
    detections_added = len(session.received.status[-1].targets) if session.received.status else -1
    return {"calls": count, "accepted": accepted, "silent_acceptances": silent, "wrong_refusals": wrong, "refused_without_reason": no_reason,
            "timeouts": timeouts, "bad_detections_added_targets": detections_added}


def corrupt(rng, data: bytes) -> bytes:
    kind = rng.integers(0, 4)
    if kind == 0:
        return data[: int(rng.integers(0, len(data)))]
    if kind == 1:
        out = bytearray(data)
        for index in rng.integers(0, len(out), int(rng.integers(1, 40))):
            out[index] = int(rng.integers(0, 256))
        return bytes(out)
    if kind == 2:
        return rng.integers(0, 256, int(rng.integers(0, 5000)), dtype=np.uint8).tobytes()
    return data[:2] + rng.integers(0, 256, 200, dtype=np.uint8).tobytes() + data[202:]


def huge_jpeg(frame) -> bytes:
    """A real JPEG whose frame header (SOF) is patched to 60000x60000: 10 GB of pixels if decoded."""
    data = bytearray(cv2.imencode(".jpg", frame)[1].tobytes())
    index = data.index(b"\xff\xc0")
    data[index + 5 : index + 9] = (60000).to_bytes(2, "big") * 2
    return bytes(data)


def phase_compressed(node: Node, rng, count: int, frames) -> dict:
    session = node.session
    encoded = [cv2.imencode(ext, frames[i % len(frames)])[1].tobytes() for i, ext in enumerate([".jpg", ".png"] * 4)]
    bombs = [cv2.imencode(".png", np.zeros((1000, 1000, 3), np.uint8))[1].tobytes(), huge_jpeg(frames[0])]
    others = [cv2.imencode(".bmp", frames[0])[1].tobytes(), cv2.imencode(".webp", frames[0])[1].tobytes()]

    def send(data: bytes) -> None:
        msg = session.CompressedImage(format=str(rng.choice(["jpeg", "png", "", "x" * 3000])))
        msg.data = data
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(session.next_stamp(), 1_000_000_000)
        node.pub.publish(msg)
        session.spin(0.01)

    base = node.counters()
    for index in range(20):
        send(bombs[index % 2] if index % 4 else others[index // 4 % 2])
    got = node.settle(base["received"] + base["bad"] + 20)
    bombs_accepted = got["received"] - base["received"]
    base, intact = got, 0
    for index in range(count):
        keep = rng.random() >= 0.8
        intact += keep
        send(encoded[index % len(encoded)] if keep else corrupt(rng, encoded[index % len(encoded)]))
    got = node.settle(base["received"] + base["bad"] + count)
    accepted, refused = got["received"] - base["received"], got["bad"] - base["bad"]
    # a corrupt JPEG that libjpeg still decodes is accepted with a (throttled) decoder warning
    return {"sent": count + 20, "bombs_or_other_formats_accepted": bombs_accepted, "intact": intact,
            "accepted": accepted, "refused": refused, "unaccounted": count - accepted - refused}


def set_parameter(node: Node, name: str, value: int) -> bool:
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    srv = node.session.node.create_client(SetParameters, f"{node.session.ns}/cyclesiam_tracker/set_parameters")
    srv.wait_for_service(timeout_sec=10)
    value = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    return node.session.call(srv, SetParameters.Request(parameters=[Parameter(name=name, value=value)])).results[0].successful


def phase_memory(node: Node, count: int = 36) -> dict:
    """The issue's PNGs that decode to 64 MB, and ones just under the default limit (4096x4096,
    48 MiB decoded) that the history must hold within history_max_mb, at the default limit."""
    assert set_parameter(node, "max_image_pixels", 1 << 24)
    over = cv2.imencode(".png", np.zeros((4620, 4620, 3), np.uint8))[1].tobytes()
    under = cv2.imencode(".png", np.zeros((4096, 4096, 3), np.uint8))[1].tobytes()
    base = node.counters()
    for data in [over] * count + [under] * count:
        msg = node.session.CompressedImage(format="png")
        msg.data = data
        msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(node.session.next_stamp(), 1_000_000_000)
        node.pub.publish(msg)
        node.session.spin(0.05)
    got = node.settle(base["received"] + base["bad"] + 2 * count, timeout=60)
    return {"sent": 2 * count, "png_kb": f"{len(over) // 1024}/{len(under) // 1024}",
            "accepted": got["received"] - base["received"], "refused": got["bad"] - base["bad"],
            "unaccounted": 2 * count - (got["received"] - base["received"]) - (got["bad"] - base["bad"])}


def report(name: str, node: Node, result: dict, rss_before: float, lines_before: int) -> int:
    lines = node.log_lines()
    new = lines[lines_before:]
    foreign = [line for line in new if line.strip() and not LOG_LINE.match(line)]
    crashed = not node.alive() or any("Traceback" in line for line in new)
    result.update(crashes=int(crashed), log_lines=len(new), stderr_not_log_lines=len(foreign),
                  longest_log_line=max((len(line) for line in new), default=0),
                  rss_mb_before=round(rss_before, 1), rss_mb_after=round(rss_mb(node.proc.pid), 1) if node.alive() else -1)
    print(f"{name:11s} " + "  ".join(f"{k}={v}" for k, v in result.items()), flush=True)
    for line in foreign[:3]:
        print(f"            stderr: {line[:160]}")
    return len(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--count", type=int, default=300, help="messages / calls per phase")
    args = ap.parse_args()
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 + os.getpid() % 50))
    os.environ.setdefault("ROS_HOME", tempfile.mkdtemp(prefix="cyclesiam_fuzz_"))
    from cyclesiam_ros.session import use_large_frame_profile

    use_large_frame_profile(REPO / "config" / "fastdds_large_frames.xml")
    import rclpy

    cap = cv2.VideoCapture(str(REPO / "data" / "tree.avi"))
    frames = [cap.read()[1] for _ in range(51)]
    if any(f is None for f in frames):
        raise SystemExit("data/tree.avi missing: run scripts/fetch_data.sh")
    rng = np.random.default_rng(args.seed)
    tmp = Path(tempfile.mkdtemp(prefix="cyclesiam_fuzz_"))
    rclpy.init()
    failures = 0
    for name, compressed in (("fuzz_raw", False), ("fuzz_comp", True)):
        node = Node(rclpy, name, compressed, tmp)
        try:
            lines, rss = 0, rss_mb(node.proc.pid)
            phases = [("compressed", lambda: phase_compressed(node, rng, args.count, frames)),
                      ("memory", lambda: phase_memory(node))] if compressed else [
                ("raw", lambda: phase_raw(node, rng, args.count, frames)), ("size", lambda: phase_size(node, rng, frames)),
                ("calls", lambda: phase_calls(node, rng, args.count, frames))]
            for phase, run in phases:
                result = run()
                failures += sum(result.get(k, 0) for k in ("silent_acceptances", "wrong_refusals", "unaccounted",
                                                              "bombs_or_other_formats_accepted", "timeouts",
                                                              "bad_detections_added_targets", "refused_without_reason"))
                lines = report(phase, node, result, rss, lines)
                failures += int(not node.alive())
                rss = rss_mb(node.proc.pid) if node.alive() else -1
        finally:
            code = node.close()
            print(f"{name}: exit code {code} (log {node.log})")
            failures += int(code != 0)
    rclpy.shutdown()
    print("FAIL" if failures else "OK: 0 crashes, 0 silent acceptances, 0 unaccounted")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
