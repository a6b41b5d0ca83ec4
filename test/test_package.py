"""package.xml declares what the code imports; pip metadata and CMake install what exists."""

from __future__ import annotations

import ast
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Python module -> the rosdep key that provides it on a ROS 2 robot.
ROSDEP_KEYS = {
    "numpy": "python3-numpy",
    "cv2": "python3-opencv",
    "yaml": "python3-yaml",
    "tqdm": "python3-tqdm",
    "matplotlib": "python3-matplotlib",
    "PIL": "python3-pil",
}
# Python modules without rosdep keys: installed by pip from requirements.txt.
PIP_ONLY = {
    "torch": "torch",
    "safetensors": "safetensors",
    "rosbags": "rosbags",
    "onnx": "onnx",
    "onnxruntime": "onnxruntime",
    "google": "protobuf",  # google.protobuf >= 4.24 (Ubuntu's python3-protobuf is older)
}
ROS_PACKAGES = {
    "rclpy", "std_msgs", "sensor_msgs", "vision_msgs", "diagnostic_msgs", "rcl_interfaces",
    "builtin_interfaces", "geometry_msgs", "lifecycle_msgs", "std_srvs", "launch", "launch_ros", "visualization_msgs",
    "ament_index_python",
}


def declared_dependencies() -> set[str]:
    root = ET.parse(REPO / "package.xml").getroot()
    tags = {"depend", "exec_depend", "build_depend", "test_depend", "buildtool_depend"}
    return {el.text.strip() for el in root if el.tag in tags and el.text}


def imported_top_level_modules(package_dir: Path) -> set[str]:
    names: set[str] = set()
    for path in package_dir.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def test_package_xml_declares_every_imported_ros_and_system_dependency():
    declared = declared_dependencies()
    requirements = (REPO / "requirements.txt").read_text()
    stdlib = set(sys.stdlib_module_names)
    own = {"cyclesiam", "cyclesiam_train", "cyclesiam_ros"}
    launch_files = imported_top_level_modules(REPO / "launch")
    for package in ("cyclesiam", "cyclesiam_train", "cyclesiam_ros"):
        imported = imported_top_level_modules(REPO / package) | (launch_files if package == "cyclesiam_ros" else set())
        for module in sorted(imported - stdlib - own):
            if module in ROS_PACKAGES:
                assert module in declared, f"{package} imports {module}: missing in package.xml"
            elif module in ROSDEP_KEYS:
                assert ROSDEP_KEYS[module] in declared, f"{package} imports {module}: add {ROSDEP_KEYS[module]}"
            elif module in PIP_ONLY:
                assert PIP_ONLY[module] in requirements, f"{package} imports {module}: add it to requirements.txt"
            else:
                raise AssertionError(f"{package} imports {module}, which no dependency list covers")


def test_core_and_training_never_import_ros():
    for package in ("cyclesiam", "cyclesiam_train"):
        imported = imported_top_level_modules(REPO / package)
        assert not imported & {"rclpy", "sensor_msgs", "vision_msgs", "std_msgs"}, package


def test_declared_ros_dependencies_exist_in_this_environment():
    import importlib.util

    declared = declared_dependencies()
    for name in sorted(declared & ROS_PACKAGES - {"launch", "launch_ros"}):
        assert importlib.util.find_spec(name) is not None, f"{name} declared but not importable"


def test_cmake_installs_every_executable_and_they_point_at_real_entry_points():
    cmake = (REPO / "CMakeLists.txt").read_text()
    for exe in sorted((REPO / "bin").iterdir()):
        assert f"bin/{exe.name}" in cmake, f"{exe.name} not installed by CMakeLists.txt"
        source = exe.read_text()
        module = source.split("from ", 1)[1].split(" import", 1)[0]
        assert (REPO / (module.replace(".", "/") + ".py")).is_file(), f"bin/{exe.name} -> missing {module}"
