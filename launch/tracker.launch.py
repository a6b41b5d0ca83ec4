"""Start the CycleSiam tracker node.

    ros2 launch cyclesiam_ros tracker.launch.py image:=/camera/color/image_raw
    ros2 launch cyclesiam_ros tracker.launch.py image:=/camera/image_raw input_transport:=compressed \
        checkpoint:=/path/to/model.safetensors device:=cuda namespace:=arm_cam rviz:=true
    ros2 launch cyclesiam_ros tracker.launch.py image:=/camera/color/image_raw \
        depth:=/camera/aligned_depth_to_color/image_raw camera_info:=/camera/color/camera_info

Arguments with a key in params_file (YAML_KEYS) are passed to the node only when given, so
by default the YAML decides. The launch ends when the node ends: with a non-zero code when it
failed. A missing params_file, or rviz:=true without RViz 2, is an error before anything starts.
With autostart:=false the node waits unconfigured for a lifecycle manager (or `ros2 lifecycle
set`); its `shutdown` transition ends the node, and so the launch, with 0.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from launch import LaunchContext, LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, RegisterEventHandler, Shutdown
from launch.conditions import evaluate_condition_expression
from launch.event_handlers import OnProcessExit, OnShutdown
from launch.events.process import ProcessExited
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

PACKAGE = "cyclesiam_ros"
# share/cyclesiam_ros when installed, the repository root in a source checkout
SHARE = Path(__file__).resolve().parents[1]

ARGUMENTS = {
    "image": ("/camera/image_raw", "camera image topic (raw); '<image>/compressed' is used for compressed input"),
    "params_file": ("", "node parameters YAML; empty = config/tracker.yaml of this package"),
    "checkpoint": ("", "safetensors checkpoint; empty = params_file's (the shipped default model)"),
    "device": ("", "auto | cpu | cuda | cuda:N; empty = params_file's runtime.device"),
    "backend": ("", "auto | torch | onnxruntime; empty = params_file's runtime.backend"),
    "input_transport": ("", "raw | compressed; empty = params_file's"),
    "image_reliability": ("", "best_effort | reliable (match your camera driver); empty = params_file's"),
    "autostart": ("", "true: configure + activate at start | false: stay unconfigured for a lifecycle manager; "
                      "empty = params_file's (true)"),
    "namespace": ("", "namespace of the node (and its ~/ topics)"),
    "node_name": ("cyclesiam_tracker", "node name"),
    "log_level": ("info", "debug | info | warn | error"),
    "rviz": ("false", "also start RViz 2 with config/tracker.rviz, topics set for this node"),
    "depth": ("", "depth aligned to the image (16UC1 mm / 32FC1 m) for the 3D outputs; empty = none (no 3D output)"),
    "camera_info": ("", "CameraInfo of the image (for the 3D outputs); empty = <image's folder>/camera_info"),
}
# launch argument -> node parameter it overrides when given
YAML_KEYS = {
    "checkpoint": "checkpoint",
    "device": "runtime.device",
    "backend": "runtime.backend",
    "input_transport": "input_transport",
    "image_reliability": "image_reliability",
    "autostart": "autostart",
}
RVIZ_TEMPLATE_NODE = "/cyclesiam_tracker"  # the node config/tracker.rviz names
RVIZ_TEMPLATE_IMAGE = "/camera/image_raw"


def generate_launch_description() -> LaunchDescription:
    args = [DeclareLaunchArgument(name, default_value=value, description=text) for name, (value, text) in ARGUMENTS.items()]
    return LaunchDescription(args + [OpaqueFunction(function=launch_setup)])


def launch_setup(context: LaunchContext) -> list:
    """The node (and RViz), built once the arguments are known; errors raised here start nothing."""
    cfg = {name: LaunchConfiguration(name).perform(context) for name in ARGUMENTS}
    params_file = params_file_path(cfg["params_file"])
    with_rviz = evaluate_condition_expression(context, [LaunchConfiguration("rviz")])
    if with_rviz:
        require_package("rviz2", "rviz:=true needs RViz 2 (apt install ros-$ROS_DISTRO-rviz2), or leave rviz out")
    overrides = {key: cfg[name] for name, key in YAML_KEYS.items() if cfg[name]}
    if cfg["autostart"]:  # a bool parameter: the string "false" would not match its type
        overrides["autostart"] = evaluate_condition_expression(context, [LaunchConfiguration("autostart")])
    image = cfg["image"]
    tracker = Node(
        package=PACKAGE,
        executable="tracker_node",
        name=cfg["node_name"],
        namespace=cfg["namespace"],
        output="screen",
        emulate_tty=True,
        arguments=["--ros-args", "--log-level", cfg["log_level"]],
        parameters=[str(params_file)] + ([overrides] if overrides else []),
        remappings=[("image", image), ("image/compressed", image + "/compressed"),
                    *depth_remappings(cfg, image)],
    )
    actions = [tracker, RegisterEventHandler(OnProcessExit(target_action=tracker, on_exit=end_with_node))]
    if with_rviz:
        fqn = node_fqn(cfg["namespace"], cfg["node_name"])
        config = write_rviz_config(fqn, resolve_topic(image, cfg["namespace"], fqn))
        actions += [
            Node(package="rviz2", executable="rviz2", arguments=["-d", config], output="screen"),
            RegisterEventHandler(OnShutdown(on_shutdown=lambda *_: Path(config).unlink(missing_ok=True))),
        ]
    return actions


def depth_remappings(cfg: dict, image: str) -> list[tuple[str, str]]:
    """`depth` only when given (else nobody publishes the node's own `depth`: no 3D, as before);
    `camera_info` defaults to the image's sibling, the camera driver convention."""
    sibling = image.rsplit("/", 1)[0] + "/camera_info" if "/" in image else "camera_info"
    info = cfg["camera_info"] or sibling
    return ([("depth", cfg["depth"])] if cfg["depth"] else []) + [("camera_info", info)]


def params_file_path(given: str) -> Path:
    path = Path(given).expanduser() if given else SHARE / "config" / "tracker.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"params_file '{path}' does not exist")
    return path


def require_package(name: str, hint: str) -> None:
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        get_package_prefix(name)
    except PackageNotFoundError:
        raise RuntimeError(f"package '{name}' not found: {hint}") from None


def end_with_node(event: ProcessExited, context: LaunchContext) -> list:
    """The node is the launch: when it ends, everything ends, non-zero when it failed
    (`launch` returns 1 for an exception; a Shutdown action alone would exit 0)."""
    if context.is_shutdown:
        return []
    if event.returncode != 0:
        raise RuntimeError(f"{event.action.name} exited with code {event.returncode}")
    return [Shutdown(reason=f"{event.action.name} exited")]


def node_fqn(namespace: str, name: str) -> str:
    namespace = namespace.strip("/")
    return f"/{namespace}/{name}" if namespace else f"/{name}"


def resolve_topic(topic: str, namespace: str, fqn: str) -> str:
    """A topic name as the node resolves it (absolute, ~/private, or relative to its namespace)."""
    if topic.startswith("/"):
        return topic
    if topic.startswith("~"):
        return fqn + topic[1:]
    namespace = namespace.strip("/")
    return f"/{namespace}/{topic}" if namespace else f"/{topic}"


def write_rviz_config(fqn: str, image_topic: str) -> str:
    """config/tracker.rviz with its topics set for this node; RViz only takes absolute topics."""
    text = (SHARE / "config" / "tracker.rviz").read_text()
    text = text.replace(f"{RVIZ_TEMPLATE_NODE}/", f"{fqn}/").replace(f"Value: {RVIZ_TEMPLATE_IMAGE}\n", f"Value: {image_topic}\n")
    with tempfile.NamedTemporaryFile("w", prefix=f"{fqn.strip('/').replace('/', '_')}_", suffix=".rviz", delete=False) as f:
        f.write(text)
    return f.name
