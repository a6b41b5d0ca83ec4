"""Start the CycleSiam tracker node.

    ros2 launch cyclesiam_ros tracker.launch.py image:=/camera/color/image_raw
    ros2 launch cyclesiam_ros tracker.launch.py image:=/camera/image_raw input_transport:=compressed \
        checkpoint:=/path/to/model.safetensors device:=cuda namespace:=arm_cam rviz:=true
"""

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

PACKAGE = "cyclesiam_ros"

ARGUMENTS = {
    "image": ("/camera/image_raw", "camera image topic (raw); '<image>/compressed' is used for compressed input"),
    "params_file": ("", "node parameters YAML; empty = config/tracker.yaml of this package"),
    "checkpoint": ("", "safetensors checkpoint; empty = the shipped default model"),
    "device": ("auto", "auto | cpu | cuda | cuda:N"),
    "backend": ("auto", "auto (onnxruntime on the CPU when installed, else torch) | torch | onnxruntime"),
    "input_transport": ("raw", "raw | compressed"),
    "image_reliability": ("best_effort", "best_effort | reliable (match your camera driver)"),
    "namespace": ("", "namespace of the node (and its ~/ topics)"),
    "node_name": ("cyclesiam_tracker", "node name"),
    "log_level": ("info", "debug | info | warn | error"),
    "rviz": ("false", "also start RViz with config/tracker.rviz"),
}


def generate_launch_description() -> LaunchDescription:
    share = FindPackageShare(PACKAGE)
    default_params = PathJoinSubstitution([share, "config", "tracker.yaml"])
    args = [DeclareLaunchArgument(name, default_value=value, description=text) for name, (value, text) in ARGUMENTS.items()]
    cfg = {name: LaunchConfiguration(name) for name in ARGUMENTS}
    params_file = non_empty_or(cfg["params_file"], default_params)
    image = cfg["image"]
    tracker = Node(
        package=PACKAGE,
        executable="tracker_node",
        name=cfg["node_name"],
        namespace=cfg["namespace"],
        output="screen",
        emulate_tty=True,
        arguments=["--ros-args", "--log-level", cfg["log_level"]],
        parameters=[
            params_file,
            {
                "checkpoint": cfg["checkpoint"],
                "runtime.device": cfg["device"],
                "runtime.backend": cfg["backend"],
                "input_transport": cfg["input_transport"],
                "image_reliability": cfg["image_reliability"],
            },
        ],
        remappings=[("image", image), ("image/compressed", [image, "/compressed"])],
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        arguments=["-d", PathJoinSubstitution([share, "config", "tracker.rviz"])],
        condition=IfCondition(cfg["rviz"]),
    )
    return LaunchDescription(args + [tracker, rviz])


def non_empty_or(value, fallback):
    """`value` when the launch argument is non-empty, else `fallback`."""
    from launch.substitutions import PythonExpression

    return PythonExpression(["'", value, "' if '", value, "' else '", fallback, "'"])
