#!/usr/bin/env bash
# The test command: set up (idempotent; fast when nothing changed), then run the whole
# suite on this host only (DDS restricted to localhost, a per-run domain id).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup_env.sh"
exec "$PY" -m pytest "$@"
