"""Helpers for the tests that run the real ROS 2 `launch` and `ros2` CLI (installed into the venv
by scripts/bootstrap.sh from ../shared/ros2_launch where that folder exists; on a robot, apt)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

from ros_helpers import REPO, ChildProcess, spin_until

LAUNCH_FILE = REPO / "launch" / "tracker.launch.py"
HAVE_LAUNCH = all(importlib.util.find_spec(m) is not None for m in ("launch", "launch_ros", "ros2cli"))
NEED_LAUNCH = "ROS 2 launch/launch_ros/ros2cli not installed (not on PyPI: scripts/bootstrap.sh installs them from ../shared/ros2_launch)"
VENV_BIN = Path(sys.executable).parent

# Runs the launch file with LaunchService in a child process: LaunchService must own the main
# thread and its signals, and a child lets a test check what is left running after it exits.
_LAUNCH_SERVICE = """
import sys
from launch import LaunchService
from launch.actions import IncludeLaunchDescription
from launch.launch_description_sources import PythonLaunchDescriptionSource
args = [a.split(":=", 1) for a in sys.argv[2:]]
service = LaunchService(argv=sys.argv[2:])
service.include_launch_description(
    IncludeLaunchDescription(PythonLaunchDescriptionSource(sys.argv[1]), launch_arguments=args))
sys.exit(service.run())
"""


def child_env(extra_prefixes: list[Path] = ()) -> dict[str, str]:
    """The environment a sourced ROS 2 shell gives: this venv as the ament prefix, its bin on PATH
    (the installed `tracker_node` starts with `#!/usr/bin/env python3`)."""
    env = dict(os.environ)
    prefixes = [str(p) for p in extra_prefixes] + [sys.prefix]
    env["AMENT_PREFIX_PATH"] = os.pathsep.join(prefixes + [p for p in env.get("AMENT_PREFIX_PATH", "").split(os.pathsep) if p])
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def start_launch(tmp_path: Path, *args: str, extra_prefixes: list[Path] = ()) -> ChildProcess:
    """`LaunchService` with the repository's launch file and `name:=value` arguments."""
    log = tmp_path / f"launch_{time.monotonic_ns()}.log"
    return ChildProcess(["-c", _LAUNCH_SERVICE, str(LAUNCH_FILE), *args], log, env=child_env(extra_prefixes))


def wait_exit(child: ChildProcess, timeout: float) -> int | None:
    """The launch's exit code, or None when it is still running after `timeout` s."""
    try:
        return child.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return None


def processes_of_node(node_name: str) -> list[int]:
    """Pids of live processes started for a node of this name (its `__node:=` remap)."""
    import psutil

    pids = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and f"__node:={node_name}" in cmdline:
            pids.append(proc.info["pid"])
    return pids


def kill_leftovers(node_name: str) -> None:
    """Tests must not leave processes behind even when the launch under test did."""
    import psutil

    for pid in processes_of_node(node_name):
        try:
            psutil.Process(pid).kill()
        except psutil.NoSuchProcess:
            pass


def wait_for_service(probe, name: str, timeout: float) -> bool:
    """Spin `probe` until service `name` (fully qualified) is in the graph."""
    return spin_until(probe, lambda: name in dict(probe.get_service_names_and_types()), timeout)


def get_parameters(probe, node_fqn: str, names: list[str], timeout: float = 10.0) -> dict:
    """Parameter values of a running node through its real get_parameters service."""
    import rclpy
    from rcl_interfaces.srv import GetParameters
    from rclpy.parameter import parameter_value_to_python

    client = probe.create_client(GetParameters, f"{node_fqn}/get_parameters")
    try:
        assert client.wait_for_service(timeout_sec=timeout), f"{node_fqn}/get_parameters not available"
        # sent again every 3 s: DDS can drop the first response of a just-discovered service
        # (see TrackerSession.call); get_parameters is idempotent
        futures = []
        deadline = time.monotonic() + 3 * timeout
        while time.monotonic() < deadline and not any(f.done() for f in futures):
            futures.append(client.call_async(GetParameters.Request(names=names)))
            rclpy.spin_until_future_complete(probe, futures[-1], timeout_sec=min(3.0, deadline - time.monotonic()))
        done = [f for f in futures if f.done()]
        assert done, f"get_parameters did not answer within {3 * timeout} s"
        return {n: parameter_value_to_python(v) for n, v in zip(names, done[0].result().values)}
    finally:
        probe.destroy_client(client)


def ros2_cli(*args: str, timeout: float = 60.0, env: dict | None = None) -> subprocess.CompletedProcess:
    """The real `ros2` command of this venv."""
    return subprocess.run(
        [str(VENV_BIN / "ros2"), *args], capture_output=True, text=True, timeout=timeout, env=env or child_env(), cwd=str(REPO)
    )
