#!/usr/bin/env bash
# The main job: set up (idempotent), then run the real tracker node on a real clip over
# DDS with the shipped self-supervised model, and write outputs/demo/{annotated.mp4,
# contact_sheet.png, summary.json}. Extra arguments go to the demo (see --help).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup_env.sh"
exec "$PY" -m cyclesiam_ros.demo "$@"
