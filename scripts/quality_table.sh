#!/usr/bin/env bash
# Quality table, real footage first: CycleSiam (given checkpoint, default: the shipped model), the
# same network before cycle training, OpenCV CSRT and KCF (and on the real set the still first box) on
#   (1) the real validation set annotations/real/<clip>/ (split val; hand-annotated keyframes,
#       absent keyframes, masks), per clip and mean: the first table;
#   (2) the generated exact-ground-truth sequences and the dev clips (annotations/dev):
#       the second table (slow; REAL_ONLY=1 skips it).
#   scripts/quality_table.sh [CHECKPOINT]      (default: models/cyclesiam_default.safetensors)
# Env: OUT (outputs/quality), REAL (annotations/real), REAL_SPLIT (val; empty = every clip),
#      REAL_ONLY=1 (only table 1), GEN (outputs/eval_sequences), NUM_GEN (24 generated sequences,
#      seed 0), PYTHON (.venv/bin/python), BENCH_ITERS (20), SKIP_BENCH=1 (no cyclesiam-bench),
#      SKIP_FETCH=1 (data/ already fetched), EVAL_SET (extra --set KEY=VALUE for every eval run,
#      space separated, e.g. "tracker.context_amount=0.5 runtime.backend=torch").
# Writes OUT/table.md, OUT/results.json, OUT/plots/, and the raw eval folders OUT/eval_*/.
# Never uses the reserved clips (box.mp4, cup.mp4, vtest.avi).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/python_env.sh"
CKPT="${1:-$ROOT/models/cyclesiam_default.safetensors}"
OUT="${OUT:-$ROOT/outputs/quality}"
GEN="${GEN:-$ROOT/outputs/eval_sequences}"
DATA="${CYCLESIAM_DATA:-$ROOT/data}"
REAL="${REAL:-$ROOT/annotations/real}"
REAL_SPLIT="${REAL_SPLIT-val}"
BENCH_ITERS="${BENCH_ITERS:-20}"
NUM_GEN="${NUM_GEN:-24}"
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
cd "$ROOT"
mkdir -p "$OUT"
NOTES=()
SETS=()
for kv in ${EVAL_SET:-}; do SETS+=(--set "$kv"); done

[[ "${SKIP_FETCH:-0}" == 1 ]] || "$ROOT/scripts/fetch_data.sh"

# checkpoints: the given one (if it exists) and the untrained network
UNTRAINED="$OUT/cyclesiam_untrained.safetensors"
[[ -f "$UNTRAINED" ]] || "$PY" "$ROOT/scripts/make_untrained_checkpoint.py" --out "$UNTRAINED"
CKPTS=()
if [[ -f "$CKPT" ]]; then
  CKPTS+=("$CKPT")
else
  echo "quality_table: checkpoint $CKPT does not exist yet; continuing without it" >&2
  NOTES+=(--note "checkpoint $(realpath --relative-to="$ROOT" -m "$CKPT") did not exist when this table was made: not evaluated")
fi
CKPTS+=("$UNTRAINED")
CKARGS=()
for c in "${CKPTS[@]}"; do CKARGS+=(--checkpoint "$c"); done
evaluate() {  # evaluate OUTNAME DATASET FORMAT [extra cyclesiam-eval args]
  local name="$1" ds="$2" fmt="$3"
  shift 3
  "$PY" -m cyclesiam_train.eval.cli "${CKARGS[@]}" --tracker csrt --tracker kcf \
    --dataset "$ds" --format "$fmt" --out "$OUT/$name" ${SETS[@]+"${SETS[@]}"} "$@"
}

# 1. the real validation set (OPE + keyframe failures, J on mask keyframes, absent keyframes)
REALARGS=()
if compgen -G "$REAL/*/source.txt" >/dev/null; then
  # 'still' holds the first box: it shows how much each clip rewards not moving at all
  evaluate eval_real "$REAL" real --data "$DATA" ${REAL_SPLIT:+--split "$REAL_SPLIT"} --tracker still
  REALARGS=(--real "$OUT/eval_real")
else
  echo "quality_table: no real clips under $REAL; table 1 is missing" >&2
  NOTES+=(--note "no real validation clips under $(realpath --relative-to="$ROOT" -m "$REAL") when this table was made")
fi

# 2. generated exact-gt sequences (OTB layout) and the dev clips, unless REAL_ONLY=1
SETARGS=()
if [[ "${REAL_ONLY:-0}" != 1 ]]; then
  "$PY" -m cyclesiam_train.eval.generate --out "$GEN" --seed 0 --num "$NUM_GEN" --no-bag --if-missing
  evaluate eval_generated "$GEN/otb" otb
  evaluate eval_dev "$ROOT/annotations/dev" real --data "$DATA"
  SETARGS=(--set "generated=$OUT/eval_generated" --set "dev=$OUT/eval_dev")
fi

# 3. speed of our models at 640x480 (whole tracking path, 1 target, box and box+mask)
BENCHARGS=()
if [[ "${SKIP_BENCH:-0}" != 1 ]]; then
  for c in "${CKPTS[@]}"; do
    name="$(basename "$c" .safetensors)"
    "$PY" -m cyclesiam.cli.bench --checkpoint "$c" --targets 1 --iterations "$BENCH_ITERS" --warmup 3 \
      --frames "$DATA/mbt_cube" --json "$OUT/bench_$name.json" ${SETS[@]+"${SETS[@]}"}
    BENCHARGS+=(--bench "$name=$OUT/bench_$name.json")
  done
fi

# 4. tables, merged JSON, plots
[[ -n "${EVAL_SET:-}" ]] && NOTES+=(--note "every run with --set ${EVAL_SET}")
NOTES+=(--note "load average at the end of the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs; all ms/fps numbers were measured under this load (compare speeds only between runs at similar load)")
"$PY" "$ROOT/scripts/quality_table.py" --out "$OUT" ${REALARGS[@]+"${REALARGS[@]}"} ${SETARGS[@]+"${SETARGS[@]}"} \
  --speed-sequence mbt_cube ${BENCHARGS[@]+"${BENCHARGS[@]}"} "${NOTES[@]}"
echo "quality_table: $OUT/table.md"
