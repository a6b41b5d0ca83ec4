#!/usr/bin/env bash
# Quality table: CycleSiam (given checkpoint), the same network before cycle training,
# OpenCV CSRT and KCF, on (a) the generated exact-ground-truth sequences and (b) the
# hand-annotated development clips (eval/dev_annotations, sparse keyframes).
#   scripts/quality_table.sh [CHECKPOINT]      (default: models/cyclesiam_default.safetensors)
# Env: OUT (outputs/quality), GEN (outputs/eval_sequences), NUM_GEN (24 generated sequences, seed 0;
#      the first 8 are the set earlier tables used), PYTHON (.venv/bin/python),
#      BENCH_ITERS (20), SKIP_BENCH=1 (no cyclesiam-bench).
# Writes OUT/table.md, OUT/results.json, OUT/plots/, and the raw eval folders OUT/eval_*/.
# Never uses the reserved clips (box.mp4, cup.mp4, vtest.avi).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-$ROOT/.venv/bin/python}"
CKPT="${1:-$ROOT/models/cyclesiam_default.safetensors}"
OUT="${OUT:-$ROOT/outputs/quality}"
GEN="${GEN:-$ROOT/outputs/eval_sequences}"
DATA="${CYCLESIAM_DATA:-$ROOT/data}"
BENCH_ITERS="${BENCH_ITERS:-20}"
NUM_GEN="${NUM_GEN:-24}"
cd "$ROOT"
mkdir -p "$OUT"
NOTES=()

# 1. real clips + generated exact-gt sequences (OTB layout), only if missing
"$ROOT/scripts/fetch_data.sh"
"$PY" -m cyclesiam_train.eval.generate --out "$GEN" --seed 0 --num "$NUM_GEN" --no-bag --if-missing

# 2. dev annotation sets: OTB folders whose img/ is a symlink into data/ (no images copied)
DEV="$OUT/dev_sequences"
rm -rf "$DEV"
mkdir -p "$DEV"
for ann in "$ROOT"/eval/dev_annotations/*/; do
  name="$(basename "$ann")"
  frames="$(sed -n 's/^frames:[[:space:]]*//p' "$ann/source.txt" | head -1)"
  if [[ -z "$frames" || ! -d "$DATA/$frames" ]]; then
    echo "quality_table: skipping $name (frames '$frames' not in $DATA)" >&2
    continue
  fi
  mkdir -p "$DEV/$name"
  ln -s "$(cd "$DATA/$frames" && pwd)" "$DEV/$name/img"
  ln -s "$(cd "$ann" && pwd)/groundtruth_rect.txt" "$DEV/$name/groundtruth_rect.txt"
done

# 3. checkpoints: the given one (if it exists) and the untrained network
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

# 4. evaluation on both sets (OTB one-pass + VOT re-init; J/F where masks exist)
for set in generated dev; do
  if [[ $set == generated ]]; then ds="$GEN/otb"; else ds="$DEV"; fi
  "$PY" -m cyclesiam_train.eval.cli "${CKARGS[@]}" --tracker csrt --tracker kcf \
    --dataset "$ds" --format otb --out "$OUT/eval_$set"
done

# 5. speed of our models at 640x480 (whole tracking path, 1 target, box and box+mask)
BENCHARGS=()
if [[ "${SKIP_BENCH:-0}" != 1 ]]; then
  for c in "${CKPTS[@]}"; do
    name="$(basename "$c" .safetensors)"
    "$PY" -m cyclesiam.cli.bench --checkpoint "$c" --targets 1 --iterations "$BENCH_ITERS" --warmup 3 \
      --frames "$DATA/mbt_cube" --json "$OUT/bench_$name.json"
    BENCHARGS+=(--bench "$name=$OUT/bench_$name.json")
  done
fi

# 6. table, merged JSON, plots
NOTES+=(--note "load average at the end of the run: $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) CPUs; all ms/fps numbers were measured under this load (compare speeds only between runs at similar load)")
"$PY" "$ROOT/scripts/quality_table.py" --out "$OUT" --set "generated=$OUT/eval_generated" \
  --set "dev=$OUT/eval_dev" --speed-sequence mbt_cube "${BENCHARGS[@]}" "${NOTES[@]}"
echo "quality_table: $OUT/table.md"
