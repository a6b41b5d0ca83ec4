# Sourced by scripts/test.sh and scripts/demo.sh: set up (idempotent), keep DDS on this host
# with a per-run domain id, pick the Python of this world ($PY), and cd to the repo root.
bash "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/ros_env.sh"
source "$ROOT/scripts/python_env.sh"
cd "$ROOT"
