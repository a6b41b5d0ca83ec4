"""The robot path (issue 26): `colcon build` of this package against the venv as the underlay, then
`source install/setup.bash` and `ros2 launch cyclesiam_ros tracker.launch.py` from the install space,
so the CMake install rules (executables, share files, generated interfaces) are checked on every change."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from launch_helpers import HAVE_LAUNCH, NEED_LAUNCH, VENV_BIN, child_env, get_parameters, kill_leftovers, processes_of_node, wait_for_service
from ros_helpers import REPO, ChildProcess

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not HAVE_LAUNCH or shutil.which("colcon", path=str(VENV_BIN)) is None,
                       reason=f"{NEED_LAUNCH}; colcon-common-extensions with them"),
]
# A copy of the package, not the checkout: CMake refuses to export include paths inside the source
# tree, and a development .venv (the underlay here) lives inside the checkout.
NOT_PACKAGE = shutil.ignore_patterns(".git", ".venv", "build", "install", "log", "data", "runs", "outputs", "__pycache__", "*.egg-info")
NODE_NAME = "colcon_tracker"


@pytest.fixture(scope="module")
def install_space(tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("colcon")
    shutil.copytree(REPO, work / "src" / "cyclesiam_ros", ignore=NOT_PACKAGE, symlinks=True)
    env = child_env()
    env["CMAKE_PREFIX_PATH"] = sys.prefix
    build = subprocess.run(
        [str(VENV_BIN / "colcon"), "--log-base", "log", "build", "--base-paths", "src", "--packages-select", "cyclesiam_ros",
         "--event-handlers", "console_direct-", "--cmake-args", f"-DPython3_EXECUTABLE={sys.executable}", "-DBUILD_TESTING=OFF"],
        cwd=work, env=env, capture_output=True, text=True, timeout=900,
    )
    assert build.returncode == 0, f"colcon build failed:\n{build.stdout[-4000:]}\n{build.stderr[-4000:]}"
    return work / "install"


def _sourced(install: Path, command: str) -> list[str]:
    return ["bash", "-c", f'source "{install}/setup.bash" && {command}']


def test_install_rules(install_space):
    share = install_space / "cyclesiam_ros" / "share" / "cyclesiam_ros"
    lib = install_space / "cyclesiam_ros" / "lib"
    for exe in ("tracker_node", "train", "track", "eval", "export"):
        assert (lib / "cyclesiam_ros" / exe).stat().st_mode & 0o111, f"{exe} is not an executable"
    for f in ("launch/tracker.launch.py", "config/tracker.yaml", "config/tracker.rviz", "models/cyclesiam_default.safetensors", "package.xml"):
        assert (share / f).is_file(), f"share/cyclesiam_ros/{f} missing"
    found = subprocess.run(
        _sourced(install_space, f'"{sys.executable}" -c "import cyclesiam, cyclesiam_ros.tracker_node, cyclesiam_ros.srv; '
                               'print(cyclesiam.__file__); print(cyclesiam_ros.tracker_node.__file__)"'),
        env=child_env(), capture_output=True, text=True, timeout=120, cwd="/",
    )
    assert found.returncode == 0, found.stderr
    assert all(line.startswith(str(install_space)) for line in found.stdout.split()), f"not imported from the install space: {found.stdout}"


def test_ros2_launch_from_the_install_space(install_space, rclpy_context, tmp_path):
    import psutil

    probe = rclpy_context.create_node("colcon_probe")
    # python execs bash execs ros2: the child's pid is `ros2 launch`, which Ctrl-C (SIGINT) must reach
    command = f"exec ros2 launch cyclesiam_ros tracker.launch.py node_name:={NODE_NAME} device:=cpu"
    child = ChildProcess(["-c", "import os, sys; os.execvp(sys.argv[1], sys.argv[1:])", *_sourced(install_space, command)],
                         tmp_path / "launch.log", env=child_env())
    try:
        assert wait_for_service(probe, f"/{NODE_NAME}/set_target", 90), child.output()[-3000:]
        assert get_parameters(probe, f"/{NODE_NAME}", ["runtime.device"]) == {"runtime.device": "cpu"}
        (pid,) = processes_of_node(NODE_NAME)
        cmdline = psutil.Process(pid).cmdline()
        share = install_space / "cyclesiam_ros" / "share" / "cyclesiam_ros"
        assert str(install_space / "cyclesiam_ros" / "lib" / "cyclesiam_ros" / "tracker_node") in cmdline, cmdline
        assert str(share / "config" / "tracker.yaml") in cmdline, cmdline
    finally:
        code = child.stop(timeout=20)
        probe.destroy_node()
        left = processes_of_node(NODE_NAME)
        kill_leftovers(NODE_NAME)
    assert code == 0, child.output()[-3000:]
    assert not left
