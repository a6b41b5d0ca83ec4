# The one way a script finds its Python ($PY), sourced after the bootstrap by setup_env.sh and by
# every script that runs project code (needs $ROOT). $PYTHON, when set, wins. With a sourced ROS 2
# distro (colcon world) it is the system python3 with the colcon install overlay; otherwise the
# project's .venv. (fetch_data.sh and bootstrap.sh run before the venv exists: system python3.)
if [[ -n "${PYTHON:-}" ]]; then
  PY="$PYTHON"
elif [[ -n "${ROS_DISTRO:-}" && -z "${CYCLESIAM_FORCE_VENV:-}" ]]; then
  # shellcheck disable=SC1091
  source "$ROOT/install/setup.bash"
  PY="$(command -v python3)"
else
  PY="$ROOT/.venv/bin/python"
  # what sourcing a ROS 2 install gives: the venv is the prefix of the ament index (`ros2 launch`,
  # `ros2 run` find cyclesiam_ros there) and its `ros2` and python3 come first on PATH
  export AMENT_PREFIX_PATH="$ROOT/.venv${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
  export PATH="$ROOT/.venv/bin:$PATH"
fi
