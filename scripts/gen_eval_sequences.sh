#!/usr/bin/env bash
# Evaluation data recipe: composited sequences with exact ground truth (real cut-outs over
# real background video from scripts/fetch_data.sh), as OTB folders + annotated MCAP bags,
# then the OpenCV baselines over them. Deterministic from the seed.
#   scripts/gen_eval_sequences.sh [OUT] [SEED] [NUM]      (default: outputs/eval_sequences 0 8)
# Never uses the reserved clips (box.mp4, cup.mp4, vtest.avi).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="${1:-$ROOT/outputs/eval_sequences}"
SEED="${2:-0}"
NUM="${3:-8}"
source "$ROOT/scripts/python_env.sh"
cd "$ROOT"
"$ROOT/scripts/fetch_data.sh"
"$PY" -m cyclesiam_train.eval.generate --out "$OUT" --seed "$SEED" --num "$NUM"
"$PY" -m cyclesiam_train.eval.cli --tracker csrt --tracker kcf \
  --dataset "$OUT/otb" --format otb --out "$OUT/results_baselines"
echo "sequences: $OUT/otb (OTB) and $OUT/bag (rosbag2 + keyframes YAML); baselines: $OUT/results_baselines"
