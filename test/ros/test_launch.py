"""launch/tracker.launch.py: checked with `launch` where it is installed (apt ROS 2), and
statically everywhere (its arguments and the parameters it sets exist on the node)."""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILE = REPO / "launch" / "tracker.launch.py"
HAVE_LAUNCH = all(importlib.util.find_spec(m) is not None for m in ("launch", "launch_ros"))


def _launch_arguments() -> dict:
    tree = ast.parse(LAUNCH_FILE.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ARGUMENTS":
            return ast.literal_eval(node.value)
    raise AssertionError("ARGUMENTS table not found in the launch file")


def _parameters_set_by_launch() -> set[str]:
    tree = ast.parse(LAUNCH_FILE.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict) and all(isinstance(k, ast.Constant) for k in node.keys):
            keys = {k.value for k in node.keys}
            if "runtime.device" in keys:
                names |= keys
    return names


def _node_parameter_names(tmp_path) -> set[str]:
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


def test_launch_arguments_cover_the_documented_set():
    args = _launch_arguments()
    assert {"image", "params_file", "checkpoint", "device", "namespace", "input_transport"} <= set(args)
    assert all(isinstance(v, tuple) and len(v) == 2 and v[1] for v in args.values()), "every argument has a description"


def test_parameters_set_by_launch_and_yaml_exist_on_the_node(tmp_path):
    declared = _node_parameter_names(tmp_path)
    assert _parameters_set_by_launch() <= declared
    yaml_params = yaml.safe_load((REPO / "config" / "tracker.yaml").read_text())["/**"]["ros__parameters"]

    def flatten(d, prefix=""):
        for k, v in d.items():
            if isinstance(v, dict):
                yield from flatten(v, f"{prefix}{k}.")
            else:
                yield f"{prefix}{k}"

    assert set(flatten(yaml_params)) <= declared
    assert set(flatten(yaml_params)) >= {n for n in declared if n.startswith("tracker.")}, "YAML documents every tracker.* parameter"


@pytest.mark.skipif(not HAVE_LAUNCH, reason="ROS 2 `launch`/`launch_ros` are not installed (not on PyPI); checked statically above")
def test_launch_description_loads_with_launch():
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    source = PythonLaunchDescriptionSource(str(LAUNCH_FILE))
    description = source.get_launch_description(None)
    names = {a.name for a in description.get_launch_arguments()}
    assert set(_launch_arguments()) == names
