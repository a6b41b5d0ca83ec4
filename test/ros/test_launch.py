"""launch/tracker.launch.py, run for real: the Jazzy `launch`/`launch_ros` with `LaunchService`, a real
tracker node, an rclpy probe over real DDS, and the real `ros2` CLI (issue 26). Statically too (its
arguments and the parameters it sets exist on the node), which needs no `launch`."""

from __future__ import annotations

import ast
import textwrap
import time
from pathlib import Path

import pytest
import yaml
from launch_helpers import (
    HAVE_LAUNCH,
    LAUNCH_FILE,
    NEED_LAUNCH,
    get_parameters,
    kill_leftovers,
    processes_of_node,
    ros2_cli,
    start_launch,
    wait_exit,
    wait_for_service,
)
from ros_helpers import REPO, spin_until

needs_launch = pytest.mark.skipif(not HAVE_LAUNCH, reason=NEED_LAUNCH)
READ_AT_START = ["checkpoint", "input_transport", "image_reliability", "runtime.device", "runtime.backend"]
NODE_START_S = 90.0  # torch import + model load (+ the ONNX export on a cold cache) on 2 busy cores


def _launch_arguments() -> dict:
    tree = ast.parse(LAUNCH_FILE.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ARGUMENTS":
            return ast.literal_eval(node.value)
    raise AssertionError("ARGUMENTS table not found in the launch file")


def _yaml_keys_of_arguments() -> dict:
    tree = ast.parse(LAUNCH_FILE.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "YAML_KEYS":
            return ast.literal_eval(node.value)
    raise AssertionError("YAML_KEYS table not found in the launch file")


def _node_parameter_names() -> set[str]:
    import rclpy
    from rclpy.context import Context

    from cyclesiam_ros.tracker_node import declare_parameters

    context = Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("param_probe", context=context)
        declare_parameters(node)
        names = set(node._parameters)
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)
    return names


def _shipped_parameters() -> dict:
    def flatten(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flatten(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}", v

    return dict(flatten(yaml.safe_load((REPO / "config" / "tracker.yaml").read_text())["/**"]["ros__parameters"]))


def test_launch_arguments_cover_the_documented_set():
    args = _launch_arguments()
    assert {"image", "params_file", "checkpoint", "device", "namespace", "input_transport"} <= set(args)
    assert all(isinstance(v, tuple) and len(v) == 2 and v[1] for v in args.values()), "every argument has a description"


def test_arguments_with_a_yaml_key_default_to_the_yaml():
    yaml_keys = _yaml_keys_of_arguments()
    args = _launch_arguments()
    assert set(yaml_keys) <= set(args)
    assert all(args[name][0] == "" for name in yaml_keys), "an argument with a YAML key must not override the YAML by default"


def test_parameters_set_by_launch_and_yaml_exist_on_the_node():
    declared = _node_parameter_names()
    assert set(_yaml_keys_of_arguments().values()) <= declared
    shipped = set(_shipped_parameters())
    assert shipped <= declared
    assert shipped >= {n for n in declared if n.startswith("tracker.")}, "YAML documents every tracker.* parameter"


@needs_launch
def test_launch_description_loads_with_launch():
    from launch import LaunchContext
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    source = PythonLaunchDescriptionSource(str(LAUNCH_FILE))
    description = source.get_launch_description(LaunchContext())
    names = {a.name for a in description.get_launch_arguments()}
    assert set(_launch_arguments()) == names


# ------------------------------------------------------------------ the real launch


@pytest.fixture(scope="module")
def probe(rclpy_context):
    node = rclpy_context.create_node("launch_test_probe")
    yield node
    node.destroy_node()


@pytest.fixture
def launched(tmp_path):
    """`launched(node_name, *args)`: a running launch with arguments `args`; stopped with SIGINT (Ctrl-C)
    at the end, and whatever it left running for `node_name` killed so that one failure does not spoil
    the next tests."""
    started = []

    def start(node_name: str, *args: str, extra_prefixes=()):
        child = start_launch(tmp_path, *args, extra_prefixes=extra_prefixes)
        started.append((child, node_name))
        return child

    yield start
    for child, node_name in started:
        child.stop(timeout=20)
        kill_leftovers(node_name)


def _assert_up(probe, child, fqn: str) -> None:
    up = wait_for_service(probe, f"{fqn}/set_target", NODE_START_S)
    assert up, f"{fqn}/set_target never appeared; launch output:\n{child.output()[-3000:]}"


def _assert_stops_cleanly(child, node_name: str) -> None:
    code = child.stop(timeout=20)
    assert code == 0, f"Ctrl-C should end the launch with 0, got {code}:\n{child.output()[-3000:]}"
    assert not processes_of_node(node_name), "the tracker outlived its launch"


def _assert_fails_without_node(child, node_name: str, expect: str) -> str:
    code = wait_exit(child, 60)
    out = child.output()
    assert code not in (None, 0), f"launch should fail (exit code {code}):\n{out[-3000:]}"
    assert expect in out, out[-3000:]
    time.sleep(0.5)
    assert not processes_of_node(node_name), f"a process of {node_name} was left running:\n{out[-3000:]}"
    return out


@needs_launch
@pytest.mark.slow
def test_defaults_take_the_shipped_yaml(probe, launched):
    child = launched("cyclesiam_tracker")  # no arguments at all
    _assert_up(probe, child, "/cyclesiam_tracker")
    params = get_parameters(probe, "/cyclesiam_tracker", READ_AT_START)
    shipped = _shipped_parameters()
    assert params == {k: shipped[k] for k in READ_AT_START}
    _assert_stops_cleanly(child, "cyclesiam_tracker")


@needs_launch
@pytest.mark.slow
def test_user_yaml_reaches_the_node_and_arguments_given_override_it(probe, launched, tmp_path):
    """Defect 1: the launch passed its arguments' defaults after the YAML, so these keys never arrived."""
    params_file = tmp_path / "user.yaml"
    params_file.write_text(textwrap.dedent("""\
        /**:
          ros__parameters:
            input_transport: compressed
            image_reliability: reliable
            runtime:
              device: cpu
              backend: torch
        """))
    child = launched("yaml_tracker", "node_name:=yaml_tracker", f"params_file:={params_file}", "image_reliability:=best_effort")
    _assert_up(probe, child, "/yaml_tracker")
    params = get_parameters(probe, "/yaml_tracker", READ_AT_START)
    assert params == {
        "checkpoint": "",
        "input_transport": "compressed",
        "image_reliability": "best_effort",  # given on the command line: wins over the YAML
        "runtime.device": "cpu",
        "runtime.backend": "torch",
    }
    _assert_stops_cleanly(child, "yaml_tracker")


def _one_frame(read_frames, tree_video):
    from sensor_msgs.msg import Image

    frame = read_frames(tree_video, 1)[0]
    msg = Image(height=frame.shape[0], width=frame.shape[1], encoding="bgr8", step=frame.shape[1] * 3)
    msg.header.frame_id = "camera"
    msg.data = frame.tobytes()
    return msg


@needs_launch
@pytest.mark.slow
def test_namespace_node_name_and_the_readme_cli_round_trip(probe, launched, read_frames, tree_video):
    """`ros2 param dump`, `ros2 node info` and the README's `ros2 service call .../set_target` through
    the real CLI (with its daemon, stopped at the end in this test's domain)."""
    from vision_msgs.msg import Detection2DArray

    from cyclesiam_ros.msg import TrackStatusArray

    fqn = "/arm_cam/cli_tracker"
    child = launched("cli_tracker", "node_name:=cli_tracker", "namespace:=arm_cam", "image:=camera/image_raw")
    try:
        _assert_up(probe, child, fqn)
        frame = _one_frame(read_frames, tree_video)
        image_pub = probe.create_publisher(type(frame), "/arm_cam/camera/image_raw", 1)
        statuses, detections = [], []
        subs = [probe.create_subscription(TrackStatusArray, f"{fqn}/status", statuses.append, 5),
                probe.create_subscription(Detection2DArray, f"{fqn}/detections", detections.append, 5)]

        def fed(received: list):
            def check() -> bool:
                image_pub.publish(frame)
                return bool(received)
            return check

        assert spin_until(probe, fed(statuses), 30), "the node never answered a frame on the remapped, namespaced image topic"

        assert _cli_sees_node(fqn, 30), "`ros2 node list` never listed the node"
        dump = _ros2_once_found(30, "param", "dump", fqn)
        assert dump.returncode == 0, dump.stderr
        dumped = yaml.safe_load(dump.stdout)[fqn]["ros__parameters"]
        assert dumped["input_transport"] == "raw" and dumped["tracker"]["context_amount"] == _shipped_parameters()["tracker.context_amount"]

        info = _ros2_once_found(30, "node", "info", fqn)
        assert info.returncode == 0, info.stderr
        for line in (f"{fqn}/set_target: cyclesiam_ros/srv/SetTarget", "/arm_cam/camera/image_raw: sensor_msgs/msg/Image",
                     f"{fqn}/detections: vision_msgs/msg/Detection2DArray"):
            assert line in info.stdout, info.stdout

        call = ros2_cli("service", "call", f"{fqn}/set_target", "cyclesiam_ros/srv/SetTarget",
                        "{bbox: {center: {position: {x: 160, y: 120}}, size_x: 60, size_y: 80}}")
        assert call.returncode == 0, call.stderr
        assert "success=True" in call.stdout and "id='1'" in call.stdout, call.stdout
        assert spin_until(probe, fed(detections), 30), "no detection after set_target"
        assert detections[-1].detections[0].id == "1"
        for sub in subs:
            probe.destroy_subscription(sub)
        probe.destroy_publisher(image_pub)
    finally:
        stop = ros2_cli("daemon", "stop")
        assert stop.returncode == 0, stop.stderr
    _assert_stops_cleanly(child, "cli_tracker")


def _ros2_once_found(timeout: float, *args: str):
    """A `ros2` call about one node, repeated while it answers "Node not found": `node list` (the
    daemon's graph) can list the node before the call's own discovery has it (CI, under load)."""
    deadline = time.monotonic() + timeout
    while True:
        result = ros2_cli(*args)
        if result.returncode == 0 or "Node not found" not in result.stderr + result.stdout or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


def _cli_sees_node(fqn: str, timeout: float) -> bool:
    """The daemon the first `ros2` call starts needs a moment to discover the graph."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if fqn in ros2_cli("node", "list").stdout.split():
            return True
        time.sleep(0.5)
    return False


@needs_launch
@pytest.mark.slow
def test_autostart_false_is_a_managed_start_driven_by_the_readme_calls(probe, launched):
    """`autostart:=false`: the node waits unconfigured; the README's ChangeState calls through the
    real `ros2 service call` configure and activate it; its `shutdown` ends the launch with 0."""
    fqn = "/managed_tracker"
    child = launched("managed_tracker", "node_name:=managed_tracker", "autostart:=false")
    assert wait_for_service(probe, f"{fqn}/get_state", NODE_START_S), child.output()[-3000:]
    assert f"{fqn}/set_target" not in dict(probe.get_service_names_and_types()), "unconfigured: no model, no services"
    for label in ("configure", "activate"):
        call = ros2_cli("service", "call", f"{fqn}/change_state", "lifecycle_msgs/srv/ChangeState",
                        f"{{transition: {{label: {label}}}}}", timeout=120)
        assert call.returncode == 0 and "success=True" in call.stdout, (label, call.stdout, call.stderr)
    state = ros2_cli("service", "call", f"{fqn}/get_state", "lifecycle_msgs/srv/GetState")
    assert "label='active'" in state.stdout, state.stdout
    _assert_up(probe, child, fqn)
    assert get_parameters(probe, fqn, ["autostart"]) == {"autostart": False}, "the argument's string became a bool"
    call = ros2_cli("service", "call", f"{fqn}/change_state", "lifecycle_msgs/srv/ChangeState",
                    "{transition: {label: shutdown}}")
    assert "success=True" in call.stdout, (call.stdout, call.stderr)
    assert wait_exit(child, 30) == 0, child.output()[-3000:]
    assert not processes_of_node("managed_tracker"), "the tracker outlived its shutdown"


@needs_launch
def test_rviz_without_rviz2_fails_cleanly_and_starts_nothing(launched):
    """Defect 2: the launch exited 1 and left the tracker running as an orphan."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix("rviz2")
        pytest.skip("rviz2 is installed here")
    except (PackageNotFoundError, OSError):
        pass
    child = launched("rviz_tracker", "node_name:=rviz_tracker", "rviz:=true")
    _assert_fails_without_node(child, "rviz_tracker", "rviz2")


# An RViz 2 stand-in where RViz (a GUI) is not installed: a package `rviz2` in the ament index whose
# `rviz2` keeps a copy of the config it is started with, as launch_ros starts the real one.
_RVIZ_STANDIN = """#!/usr/bin/env python3
import shutil, signal, sys, time
shutil.copy(sys.argv[sys.argv.index("-d") + 1], sys.argv[0] + ".config")
open(sys.argv[0] + ".args", "w").write(" ".join(sys.argv[1:]))
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
while True:
    time.sleep(0.1)
"""


def _rviz_standin(prefix: Path) -> Path:
    (prefix / "share" / "ament_index" / "resource_index" / "packages").mkdir(parents=True)
    (prefix / "share" / "ament_index" / "resource_index" / "packages" / "rviz2").write_text("")
    (prefix / "share" / "rviz2").mkdir()
    exe = prefix / "lib" / "rviz2" / "rviz2"
    exe.parent.mkdir(parents=True)
    exe.write_text(_RVIZ_STANDIN)
    exe.chmod(0o755)
    return Path(str(exe) + ".config")


def _display_topics(config: Path) -> dict:
    displays = yaml.safe_load(config.read_text())["Visualization Manager"]["Displays"]
    return {d["Name"]: d["Topic"]["Value"] for d in displays if "Topic" in d}


@needs_launch
def test_rviz_topics_follow_namespace_and_node_name(launched, tmp_path):
    """Defect 3: config/tracker.rviz named /cyclesiam_tracker/... literally."""
    config_copy = _rviz_standin(tmp_path / "rviz_prefix")
    child = launched("rviz_ns_tracker", "node_name:=rviz_ns_tracker", "namespace:=arm_cam", "image:=/arm_cam/color/image_raw", "rviz:=true",
                     extra_prefixes=[tmp_path / "rviz_prefix"])
    assert _wait_file(config_copy, 30), child.output()[-3000:]
    topics = set(_display_topics(config_copy).values())
    assert topics == {"/arm_cam/rviz_ns_tracker/debug_image", "/arm_cam/rviz_ns_tracker/mask", "/arm_cam/color/image_raw",
                      "/arm_cam/rviz_ns_tracker/markers"}
    rviz_args = Path(str(config_copy)[: -len(".config")] + ".args").read_text().split()
    generated = Path(rviz_args[rviz_args.index("-d") + 1])
    assert generated.is_file()
    assert child.stop(timeout=20) == 0, child.output()[-3000:]
    assert not generated.exists(), "the generated RViz config outlived the launch"


def _wait_file(path: Path, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not path.exists():
        time.sleep(0.1)
    return path.exists()


@needs_launch
@pytest.mark.slow
def test_a_node_that_dies_ends_the_launch_with_a_non_zero_code(launched, tmp_path):
    """Defect 5: `ros2 launch` exited 0 when the node died (here: a checkpoint that does not exist)."""
    child = launched("dying_tracker", "node_name:=dying_tracker", f"checkpoint:={tmp_path / 'missing.safetensors'}")
    out = _assert_fails_without_node(child, "dying_tracker", "missing.safetensors")
    assert "Traceback" not in out, out


@needs_launch
def test_a_missing_params_file_is_an_error(launched, tmp_path):
    """Defect 5: a missing params_file only warned and the node ran on built-in defaults."""
    missing = tmp_path / "no_such_params.yaml"
    child = launched("params_tracker", "node_name:=params_tracker", f"params_file:={missing}")
    _assert_fails_without_node(child, "params_tracker", str(missing))


@needs_launch
@pytest.mark.slow
def test_cuda_without_cuda_is_a_one_line_error(launched):
    """Defect 5: `device:=cuda` without CUDA printed a full traceback."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    child = launched("cuda_tracker", "node_name:=cuda_tracker", "device:=cuda")
    out = _assert_fails_without_node(child, "cuda_tracker", "CUDA is not available")
    assert "Traceback" not in out, out


@needs_launch
def test_depth_and_camera_info_remaps():
    """depth:= only when given (no depth publisher: exactly the 2D node); camera_info:= defaults to
    the image's sibling (camera driver convention)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tracker_launch", LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    remaps = module.depth_remappings
    assert remaps({"depth": "", "camera_info": ""}, "/camera/color/image_raw") == [
        ("camera_info", "/camera/color/camera_info")]
    assert remaps({"depth": "/cam/aligned_depth", "camera_info": "/cam/info"}, "image_raw") == [
        ("depth", "/cam/aligned_depth"), ("camera_info", "/cam/info")]
    assert remaps({"depth": "", "camera_info": ""}, "image_raw") == [("camera_info", "camera_info")]
