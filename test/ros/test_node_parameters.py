"""The node's parameters and /diagnostics over real DDS: ranges from the config metadata,
run-time changes refused with a reason outside them, diagnostics_period applied at run time,
and /diagnostics levels for a dead camera and failing frames (issue 25, items 6 and 9)."""

from __future__ import annotations

import time

import pytest
from diagnostic_msgs.msg import DiagnosticStatus
from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import DescribeParameters, GetParameters, SetParameters

from cyclesiam_ros.parameters import FIELDS
from cyclesiam_ros.session import TrackerSession
from test_tracker_node import start_node

pytestmark = pytest.mark.ros

NS, IMAGE = "/p1", "/p1/camera/image_raw"
NODE = f"{NS}/cyclesiam_tracker"


@pytest.fixture(scope="module")
def frames(tree_video, read_frames):
    return read_frames(tree_video, 20)


@pytest.fixture(scope="module")
def session(rclpy_context, tmp_path_factory, node_checkpoint):
    tmp = tmp_path_factory.mktemp("params")
    proc = start_node(tmp, node_checkpoint, NS, IMAGE, "diagnostics_stale_after:=0.6")
    client = TrackerSession(rclpy_context, NS, IMAGE)
    try:
        client.wait_ready(90)
    except TimeoutError:
        proc.stop()
        raise AssertionError("node did not come up:\n" + proc.output())
    yield client
    client.close()
    assert proc.stop() == 0, proc.output()[-3000:]


def _value(value) -> ParameterValue:
    if isinstance(value, bool):
        return ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=value)
    if isinstance(value, float):
        return ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=value)
    if isinstance(value, int):
        return ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=value)
    return ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value)


def set_param(session: TrackerSession, name: str, value):
    client = session.node.create_client(SetParameters, f"{NODE}/set_parameters")
    assert client.wait_for_service(timeout_sec=10)
    request = SetParameters.Request(parameters=[Parameter(name=name, value=_value(value))])
    result = session.call(client, request).results[0]
    session.node.destroy_client(client)
    return result


def get_param(session: TrackerSession, name: str):
    client = session.node.create_client(GetParameters, f"{NODE}/get_parameters")
    assert client.wait_for_service(timeout_sec=10)
    value = session.call(client, GetParameters.Request(names=[name]), resend_every=5.0).values[0]
    session.node.destroy_client(client)
    return {ParameterType.PARAMETER_DOUBLE: value.double_value, ParameterType.PARAMETER_INTEGER: value.integer_value,
            ParameterType.PARAMETER_BOOL: value.bool_value}.get(value.type, value.string_value)


# every value the fuzz harness of issue 25 (item 6) got accepted, and the like
BAD_VALUES = [
    ("tracker.lr", 1e308), ("tracker.lr", -1.0), ("tracker.penalty_k", -1e308), ("tracker.scale_step", 1e308),
    ("tracker.scale_step", 1.0), ("tracker.min_size", 1e308), ("tracker.scale_steps", 2**63 - 1),
    ("tracker.scale_steps", 17), ("tracker.scale_steps", 4), ("tracker.lost_frames", 0), ("tracker.lost_frames", -5),
    ("tracker.lost_search_size", 0), ("tracker.lost_search_size", -1), ("tracker.recover_threshold", 100.0),
    ("tracker.recover_threshold", 0.5), ("tracker.window_influence", float("nan")), ("tracker.center_from", "mask"),
    ("tracker.template_update", "sometimes"), ("tracker.mask_refine", "snake"), ("max_targets", 256), ("max_targets", 0),
    ("diagnostics_period", 0.0), ("history_size", 0), ("runtime.device", "cuda"),
]


@pytest.mark.parametrize("name, value", BAD_VALUES)
def test_out_of_range_values_are_refused_with_a_reason(session, name, value) -> None:
    before = get_param(session, name)
    result = set_param(session, name, value)
    assert not result.successful, f"{name}={value} accepted"
    assert name.split(".")[-1] in result.reason, result.reason
    assert get_param(session, name) == before


def test_in_range_values_change_at_run_time(session) -> None:
    assert set_param(session, "tracker.lr", 0.25).successful
    assert get_param(session, "tracker.lr") == 0.25
    assert set_param(session, "max_targets", 64).successful
    assert set_param(session, "tracker.scale_steps", 15).successful
    assert set_param(session, "tracker.scale_steps", 5).successful
    assert set_param(session, "tracker.mask_refine", "grabcut").successful
    assert get_param(session, "tracker.mask_refine") == "grabcut"
    assert set_param(session, "tracker.mask_refine", "colour").successful


def test_descriptors_come_from_the_config_metadata(session) -> None:
    names = ["tracker.lr", "tracker.scale_steps", "max_targets", "runtime.device", "tracker.center_from"]
    client = session.node.create_client(DescribeParameters, f"{NODE}/describe_parameters")
    assert client.wait_for_service(timeout_sec=10)
    described = {d.name: d for d in session.call(client, DescribeParameters.Request(names=names), resend_every=5.0).descriptors}
    lr = described["tracker.lr"]
    assert lr.description == FIELDS["tracker.lr"].description
    assert (lr.floating_point_range[0].from_value, lr.floating_point_range[0].to_value) == (0.0, 1.0)
    steps = described["tracker.scale_steps"]
    assert (steps.integer_range[0].from_value, steps.integer_range[0].to_value) == (1, 15)
    assert "odd" in steps.additional_constraints
    assert described["max_targets"].integer_range[0].to_value == 64
    assert "restart" in described["runtime.device"].description
    assert "'peak'" in described["tracker.center_from"].additional_constraints


def _statuses(session: TrackerSession) -> list[DiagnosticStatus]:
    return [s for d in session.received.diagnostics for s in d.status if s.hardware_id == IMAGE]


def test_diagnostics_period_takes_effect_at_run_time(session) -> None:
    assert set_param(session, "diagnostics_period", 0.2).successful
    session.spin(0.5)
    session.clear_received()
    session.spin(2.0)
    fast = len(_statuses(session))
    assert set_param(session, "diagnostics_period", 1.0).successful
    session.spin(1.2)
    session.clear_received()
    session.spin(2.0)
    slow = len(_statuses(session))
    assert fast >= 7 and slow <= 3, (fast, slow)


def _levels_while(session: TrackerSession, action, seconds: float) -> list[tuple[bytes, str]]:
    session.clear_received()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        action()
        session.spin(0.1)
    return [(s.level, s.message) for s in _statuses(session)]


def test_diagnostics_warn_when_the_camera_stops(session, frames) -> None:
    assert set_param(session, "diagnostics_period", 0.2).successful
    feeding = _levels_while(session, lambda: session.publish_frame(frames[0]), 1.5)
    assert feeding and feeding[-1][0] == DiagnosticStatus.OK, feeding
    silent = _levels_while(session, lambda: None, 1.5)
    assert silent[-1][0] == DiagnosticStatus.WARN and "no image" in silent[-1][1], silent


def test_diagnostics_error_when_every_frame_fails_and_warn_when_some_do(session, frames) -> None:
    assert set_param(session, "diagnostics_period", 0.2).successful

    def bad() -> None:
        session.image_pub.publish(session.image_msg(frames[0], session.next_stamp(), encoding="32FC1"))

    failing = _levels_while(session, bad, 1.5)
    error = DiagnosticStatus.ERROR
    assert any(level == error and "failed" in message for level, message in failing[1:]), failing
    def bad_then_good() -> None:  # spaced: the image subscription keeps only the newest frame
        bad()
        session.spin(0.05)
        session.publish_frame(frames[0])

    mixed = _levels_while(session, bad_then_good, 2.0)
    assert any(level == DiagnosticStatus.WARN and "bad image" in message for level, message in mixed[1:]), mixed
    assert all(level != error for level, _ in mixed[2:]), mixed


@pytest.mark.parametrize("param, words", [("tracker.lr:=5.0", "tracker.lr"),
                                          ("tracker.recover_threshold:=0.1", "recover_threshold must be >=")])
def test_a_start_up_value_outside_its_range_stops_the_node_with_a_clear_message(tmp_path, node_checkpoint,
                                                                                 param, words) -> None:
    proc = start_node(tmp_path, node_checkpoint, "/p2", "/p2/cam", param)
    proc.proc.wait(timeout=60)
    proc.stop()
    assert proc.proc.returncode == 2, proc.output()[-2000:]
    assert words in proc.output() and "Traceback" not in proc.output(), proc.output()[-2000:]
