"""The tracker node as a managed (lifecycle) node, over real DDS with real video (issue 23).

One node process started with `autostart:=false`, driven through its transitions by
lifecycle_msgs/srv/ChangeState as a bringup's lifecycle manager would; the tests run in file
order and each checks one state. `autostart:=true` (today's behaviour) is what every other
node test runs. The model being freed at cleanup is checked in-process (a weak reference).
"""

from __future__ import annotations

import gc
import weakref

import pytest
from lifecycle_msgs.msg import State, Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters

from cyclesiam_ros.messages import stamp_ns
from cyclesiam_ros.session import TrackerSession
from test_tracker_node import BOX, frames, start_node  # noqa: F401 (fixtures)

pytestmark = pytest.mark.ros

NS = "/lc"
NODE = f"{NS}/cyclesiam_tracker"
IMAGE = f"{NS}/camera/image_raw"


class Managed:
    """The node process and a client session with its lifecycle services."""

    def __init__(self, proc, session: TrackerSession):
        self.proc, self.session = proc, session
        self.change = session.node.create_client(ChangeState, f"{NODE}/change_state")
        self.get = session.node.create_client(GetState, f"{NODE}/get_state")

    def transition(self, transition_id: int) -> bool:
        request = ChangeState.Request(transition=Transition(id=transition_id))
        return self.session.call(self.change, request, timeout=120).success

    def state(self) -> int:
        return self.session.call(self.get, GetState.Request(), resend_every=5.0).current_state.id

    def set_param(self, name: str, value: str | int):
        client = self.session.node.create_client(SetParameters, f"{NODE}/set_parameters")
        assert client.wait_for_service(timeout_sec=10)
        if isinstance(value, int):
            value_msg = ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
        else:
            value_msg = ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)
        request = SetParameters.Request(parameters=[Parameter(name=name, value=value_msg)])
        result = self.session.call(client, request).results[0]
        self.session.node.destroy_client(client)
        return result

    def outputs(self) -> int:
        """Publishers of the node's outputs plus subscribers of its image input."""
        node = self.session.node
        return (node.count_publishers(f"{NODE}/detections") + node.count_publishers(f"{NODE}/status")
                + node.count_subscribers(IMAGE))

    def wait_outputs(self, predicate, timeout: float = 10.0) -> bool:
        return self.session.spin_until(lambda: predicate(self.outputs()), timeout)

    def detection_ids(self) -> set[str]:
        return {d.id for m in self.session.received.detections for d in m.detections}

    def track(self, clip) -> list:
        """Play `clip` at 30 Hz and wait for the node's status on its last frame (the newest
        frame is never dropped, so this does not depend on how fast this machine is)."""
        last = self.session.play(clip, 30)[-1]
        status_of_last = lambda: any(stamp_ns(m.header) == last for m in self.session.received.status)  # noqa: E731
        assert self.session.spin_until(status_of_last, 60), "the last frame was never processed"
        self.session.spin(0.2)
        return [m for m in self.session.received.detections if m.detections]


@pytest.fixture(scope="module")
def managed(rclpy_context, tmp_path_factory, shipped_checkpoint):  # noqa: F811 (fixture)
    proc = start_node(tmp_path_factory.mktemp("lifecycle"), shipped_checkpoint, NS, IMAGE, "autostart:=false")
    session = TrackerSession(rclpy_context, NS, IMAGE)
    node = Managed(proc, session)
    if not node.get.wait_for_service(timeout_sec=90):
        proc.stop()
        raise AssertionError("lifecycle services never appeared:\n" + proc.output())
    yield node
    session.close()
    if proc.proc.poll() is None:
        proc.stop()


@pytest.fixture
def node(managed):
    managed.session.clear_received()
    yield managed
    assert managed.proc.proc.poll() is None, "node died:\n" + managed.proc.output()[-3000:]


def test_unconfigured_has_no_model_no_services_no_topics(node, frames):  # noqa: F811
    assert node.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert not node.session.set_client.wait_for_service(timeout_sec=1.0)
    node.session.play(frames[:5], 30)
    node.session.spin(0.5)
    assert node.outputs() == 0 and not node.session.received.status
    assert "configured:" not in node.proc.output()
    # restart-only parameters are read at configure, so they may change now
    assert node.set_param("image_qos_depth", 2).successful


def test_a_failed_configure_logs_why_and_stays_unconfigured(node, tmp_path):
    missing = tmp_path / "missing.safetensors"
    assert node.set_param("checkpoint", str(missing)).successful
    assert not node.transition(Transition.TRANSITION_CONFIGURE)
    assert node.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert node.proc.wait_for_output(f"configure failed: checkpoint not found: {missing}", 5), node.proc.output()
    assert "Traceback" not in node.proc.output()
    assert node.set_param("checkpoint", "").successful


def test_configure_loads_the_model_but_outputs_nothing(node, frames):  # noqa: F811
    assert node.transition(Transition.TRANSITION_CONFIGURE)
    assert node.state() == State.PRIMARY_STATE_INACTIVE
    assert node.proc.wait_for_output("configured: checkpoint", 5), node.proc.output()
    assert node.session.set_client.wait_for_service(timeout_sec=10), "set_target is made at configure"
    node.session.play(frames[:5], 30)
    node.session.spin(0.5)
    assert node.outputs() == 0 and not node.session.received.status
    refused = node.session.set_target(BOX)
    assert not refused.success and "inactive" in refused.message
    changed = node.set_param("image_qos_depth", 1)
    assert not changed.successful and "configure" in changed.reason


def test_activate_tracks_a_real_clip(node, frames):  # noqa: F811
    assert node.transition(Transition.TRANSITION_ACTIVATE)
    assert node.state() == State.PRIMARY_STATE_ACTIVE
    assert node.wait_outputs(lambda n: n == 3), "activate makes the image subscription and the publishers"
    node.session.publish_until_seen(frames[0])
    response = node.session.set_target(BOX)
    assert response.success and response.id == "1", response.message
    detections = node.track(frames[1:25])
    assert detections and node.detection_ids() == {"1"}
    last = detections[-1].detections[0]
    assert abs(last.bbox.center.position.x - (BOX[0] + BOX[2] / 2)) < 60, "the box stays on the tree"


def test_deactivate_stops_output_and_keeps_the_target(node, frames):  # noqa: F811
    assert node.transition(Transition.TRANSITION_DEACTIVATE)
    assert node.state() == State.PRIMARY_STATE_INACTIVE
    assert node.wait_outputs(lambda n: n == 0), "deactivate destroys the subscription and the publishers"
    node.session.clear_received()
    node.session.play(frames[25:40], 30)
    node.session.spin(1.0)
    assert not node.session.received.detections and not node.session.received.status
    unknown = node.session.remove_target("no_such_id")
    assert not unknown.success and "['1']" in unknown.message, unknown.message
    assert node.proc.wait_for_output("inactive: 1 target(s) kept", 5)


def test_activate_again_resumes_the_same_target(node, frames):  # noqa: F811
    assert node.transition(Transition.TRANSITION_ACTIVATE)
    assert node.wait_outputs(lambda n: n == 3)
    node.session.publish_until_seen(frames[40])
    assert node.track(frames[41:60]), "no detections after activate"
    assert node.detection_ids() == {"1"}, "tracking resumes with the target set before deactivate"


def test_cleanup_frees_the_model_and_the_targets(node):
    assert node.transition(Transition.TRANSITION_DEACTIVATE)
    assert node.transition(Transition.TRANSITION_CLEANUP)
    assert node.state() == State.PRIMARY_STATE_UNCONFIGURED
    assert node.proc.wait_for_output("unconfigured: model and 1 target(s) freed", 5)
    assert node.session.spin_until(lambda: not node.session.set_client.service_is_ready(), 10)
    assert node.outputs() == 0


def test_configure_again_then_shutdown_ends_the_process(managed):
    assert managed.transition(Transition.TRANSITION_CONFIGURE)
    assert managed.transition(Transition.TRANSITION_ACTIVATE)
    unknown = managed.session.remove_target("1")
    assert not unknown.success and "known: []" in unknown.message, "cleanup dropped the targets"
    assert managed.transition(Transition.TRANSITION_ACTIVE_SHUTDOWN)
    managed.proc.proc.wait(timeout=20)
    assert managed.proc.stop() == 0, managed.proc.output()[-3000:]


def _in_process_node(namespace: str, checkpoint, device: str):
    from rclpy.parameter import Parameter as Param

    from cyclesiam_ros.tracker_node import TrackerNode

    return TrackerNode(namespace=namespace, parameter_overrides=[
        Param("autostart", value=False), Param("checkpoint", value=str(checkpoint)),
        Param("runtime.device", value=device), Param("runtime.backend", value="torch")])


def test_cleanup_releases_the_model_object(rclpy_context, node_checkpoint):
    """In-process: no reference to the tracker (network, sessions, targets) survives cleanup."""
    from cyclesiam_ros.tracker_node import SUCCESS

    tracker_node = _in_process_node("/lc_inproc", node_checkpoint, "cpu")
    try:
        assert tracker_node.tracker is None
        assert tracker_node.trigger_configure() == SUCCESS
        model = weakref.ref(tracker_node.tracker)
        assert tracker_node.trigger_activate() == SUCCESS
        assert tracker_node.trigger_deactivate() == SUCCESS
        assert tracker_node.trigger_cleanup() == SUCCESS
        gc.collect()
        assert model() is None and tracker_node.tracker is None
    finally:
        tracker_node.shutdown()
        tracker_node.destroy_node()


def test_cleanup_gives_the_gpu_memory_back(rclpy_context, node_checkpoint):
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device on this machine")
    from cyclesiam_ros.tracker_node import SUCCESS

    before = torch.cuda.memory_allocated()
    tracker_node = _in_process_node("/lc_cuda", node_checkpoint, "cuda")
    try:
        assert tracker_node.trigger_configure() == SUCCESS
        loaded = torch.cuda.memory_allocated()
        assert loaded > before, "the model is on the GPU after configure"
        assert tracker_node.trigger_cleanup() == SUCCESS
        assert torch.cuda.memory_allocated() == before, "cleanup left tensors on the GPU"
    finally:
        tracker_node.shutdown()
        tracker_node.destroy_node()


def test_ctrl_c_twice_still_exits_cleanly(tmp_path, shipped_checkpoint):
    """In a terminal, Ctrl-C under `ros2 launch` reaches the node twice (its process group, then
    launch forwarding it): the second SIGINT must not break the clean-up (exit 0, no traceback)."""
    import signal
    import time

    proc = start_node(tmp_path, shipped_checkpoint, "/ctrl_c_twice", "/ctrl_c_twice/camera/image_raw")
    assert proc.wait_for_output("active:", 120), proc.output()
    time.sleep(0.5)
    proc.proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    if proc.proc.poll() is None:
        proc.proc.send_signal(signal.SIGINT)
    code = proc.stop(timeout=60)
    assert code == 0 and "Traceback" not in proc.output(), proc.output()[-3000:]
