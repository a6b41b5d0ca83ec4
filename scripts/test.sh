#!/usr/bin/env bash
# The test command: set up (idempotent; fast when nothing changed), then run the whole
# suite on this host only (DDS restricted to localhost, a per-run domain id).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/bootstrap.sh"
source "$ROOT/scripts/ros_env.sh"
source "$ROOT/scripts/python_env.sh"
cd "$ROOT"
exec "$PY" -m pytest "$@"
