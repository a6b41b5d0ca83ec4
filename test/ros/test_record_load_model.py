"""On the robot, over real DDS: a node tracking a real clip records a bag through ~/record (the frames and
its own tracked boxes), a short training run on that bag seeded by those boxes makes a model, and
~/load_model swaps it in while frames flow. Tracking goes on with the same ids; every frame's ~/status
names exactly one model, and no frame tracked by the new model is followed by one tracked by the old;
a corrupt checkpoint and a second load during a load are refused with the old model still running; a
recording left open is closed cleanly when the node shuts down."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest

from cyclesiam.model_swap import model_identity
from cyclesiam.sources import open_source
from cyclesiam_ros.messages import stamp_ns
from cyclesiam_ros.session import TrackerSession, tracker_node_command
from cyclesiam_train.seeds import read_detection_topic
from ros_helpers import REPO, ChildProcess

pytestmark = pytest.mark.ros

NS = "/robot"
IMAGE_TOPIC = f"{NS}/camera/image_raw"
BOX = (110.0, 60.0, 60.0, 70.0)  # the tree in tree.avi (x, y, w, h)


def call(client: TrackerSession, service, request, timeout: float = 60.0):
    return client.call(service, request, timeout)


def play_until(client: TrackerSession, frames, done, timeout: float, rate_hz: float = 10.0) -> None:
    """Publish the clip in a loop at `rate_hz` (new stamps) until `done()` or `timeout`."""
    deadline = time.monotonic() + timeout
    i = 0
    while not done():
        assert time.monotonic() < deadline, "timed out while frames flowed"
        client.publish_frame(frames[i % len(frames)])
        client.spin(1.0 / rate_hz)
        i += 1


def models_by_stamp(client: TrackerSession) -> list[tuple[int, str, tuple[str, ...]]]:
    return sorted((stamp_ns(m.header), m.model, tuple(t.id for t in m.targets)) for m in client.received.status)


def test_record_adapt_and_swap_the_model_while_tracking(rclpy_context, tmp_path, shipped_checkpoint, tree_video,
                                                        read_frames):
    from cyclesiam_ros.srv import LoadModel, Record

    frames = read_frames(tree_video, 68)
    cmd = tracker_node_command(NS, IMAGE_TOPIC, REPO / "config" / "tracker.yaml",
                               [f"checkpoint:={shipped_checkpoint}", "runtime.device:=cpu",
                                f"record_dir:={tmp_path / 'rec'}"])
    proc = ChildProcess(cmd[1:], tmp_path / "node.log")
    client = TrackerSession(rclpy_context, NS, IMAGE_TOPIC)
    base = f"{NS}/cyclesiam_tracker"
    record = client.node.create_client(Record, f"{base}/record")
    load = client.node.create_client(LoadModel, f"{base}/load_model")
    try:
        client.wait_ready(90)
        assert load.wait_for_service(timeout_sec=20) and record.wait_for_service(timeout_sec=20)
        client.publish_until_seen(frames[0])
        assert client.set_target(BOX, target_id="tree").success
        old_model = model_identity(shipped_checkpoint)

        # ---- record: every 2nd frame, at most 24 frames (it stops by itself)
        bag = tmp_path / "bag"
        resp = call(client, record, Record.Request(start=True, path=str(bag), max_frames=24, every_nth=2))
        assert resp.success, resp.message
        again = call(client, record, Record.Request(start=True))
        assert not again.success and "already recording" in again.message
        client.play(frames[1:], rate_hz=10.0)
        stop = call(client, record, Record.Request(start=False))
        assert stop.path == str(bag) and stop.frames_written == 24, stop.message
        source = open_source(bag, IMAGE_TOPIC)
        assert len(source) == 24
        assert set(source.stamps.tolist()) <= set(client.published)  # the original stamps
        assert source.frame(0).shape == frames[0].shape
        # beside the frames, the node's own tracked boxes of the recorded frames: the seeds of adapt
        assert f"tracked boxes ({base}/detections)" in resp.message, resp.message
        seeds = read_detection_topic(bag, f"{base}/detections", IMAGE_TOPIC)
        assert len(seeds) >= 12, f"{len(seeds)} tracked boxes recorded for 24 frames: {stop.message}"
        assert {s.stamp_ns for s in seeds} <= set(source.stamps.tolist())
        assert all(abs(s.box[0] - BOX[0]) < 60 and abs(s.box[1] - BOX[1]) < 60 for s in seeds)  # on the tree

        # ---- a model trained on the recording from the running one: cyclesiam-adapt's training with one
        # step (its label-free before/after check alone takes minutes here; the README flow runs it)
        run = tmp_path / "run"
        train = subprocess.run([sys.executable, "-m", "cyclesiam_train.cli", "--init-from", str(shipped_checkpoint),
                                "--data",
                                str(bag), "--topic", IMAGE_TOPIC, "--seed-topic", f"{base}/detections",
                                "--out", str(run), "--device", "cpu", "--no-progress",
                                "--set", "train.steps=1", "train.batch_size=2", "train.warmup_steps=1",
                                "train.checkpoint_every=1", "train.workers=0"],
                               cwd=REPO, capture_output=True, text=True, timeout=300)
        assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
        adapted = run / "model.safetensors"
        assert "1 stream(s), 24 frames" in train.stdout, train.stdout[-2000:]
        assert f"seeds: {len(seeds)} from topic {base}/detections" in train.stdout, train.stdout[-2000:]
        new_model = model_identity(adapted)
        assert new_model != old_model

        # ---- a corrupt checkpoint is refused; the old model keeps tracking
        corrupt = tmp_path / "corrupt.safetensors"
        corrupt.write_bytes(adapted.read_bytes()[: adapted.stat().st_size // 2])
        bad = call(client, load, LoadModel.Request(path=str(corrupt)))
        assert not bad.success and "corrupt.safetensors" in bad.message and old_model in bad.message, bad.message
        client.clear_received()
        play_until(client, frames, lambda: len(client.received.status) >= 3, timeout=60)
        assert {m for _, m, _ in models_by_stamp(client)} == {old_model}

        # ---- swap while frames flow; a second request during the load is refused
        client.clear_received()
        first = load.call_async(LoadModel.Request(path=str(adapted)))
        second = load.call_async(LoadModel.Request(path=str(adapted)))
        play_until(client, frames, lambda: first.done() and second.done(), timeout=120)
        answers = sorted([first.result(), second.result()], key=lambda r: not r.success)
        assert answers[0].success and new_model in answers[0].message, answers[0].message
        assert not answers[1].success and "still loading" in answers[1].message, answers[1].message
        swapped_at = len(client.received.status)
        play_until(client, frames, lambda: len(client.received.status) >= swapped_at + 10, timeout=60)

        seen = models_by_stamp(client)
        models = [m for _, m, _ in seen]
        assert set(models) == {old_model, new_model}, set(models)
        first_new = models.index(new_model)
        assert first_new > 0, "no frame was tracked while the model loaded"
        assert all(m == new_model for m in models[first_new:]), "a frame tracked by the old model after the swap"
        assert all(ids == ("tree",) for _, _, ids in seen), "the target's id changed"
        last = max(client.received.status, key=lambda m: stamp_ns(m.header))
        assert math.isfinite(last.targets[0].score) and last.targets[0].bbox.size_x > 0  # tracked on by the new model

        # ---- a recording still open at shutdown is closed cleanly
        open_bag = tmp_path / "open_bag"
        assert call(client, record, Record.Request(start=True, path=str(open_bag), every_nth=1)).success
        client.play(frames[:6], rate_hz=10.0)
        client.spin(0.5)
    finally:
        client.close()
        code = proc.stop(timeout=60)  # a loaded 2-core machine: the exit alone took 12-14 s
    assert code == 0, proc.output()[-3000:]
    assert len(open_source(open_bag, IMAGE_TOPIC)) >= 1
    assert "stopped (shutdown)" in proc.output()
