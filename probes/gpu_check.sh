#!/usr/bin/env bash
# GPU path check (issue 22), for a session on a machine with a CUDA GPU: the GPU tests, then
# cyclesiam-bench (1/4/8/16 targets, box + mask) for torch fp32, torch fp16, onnxruntime CUDA and
# TensorRT (when installed), then the node at 30 and 60 Hz with masks on CUDA. Prints figures only;
# nothing here asserts a time. Usage, from the repository root:  probes/gpu_check.sh [iterations]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
IT=${1:-50}
export PYTHONPATH=$PWD
nvidia-smi -L || { echo "gpu_check: no NVIDIA GPU here"; exit 2; }
$PY -c "import torch, sys; print('torch', torch.__version__, 'cuda', torch.version.cuda, torch.cuda.get_device_name(0)) if torch.cuda.is_available() else sys.exit('gpu_check: torch has no CUDA')" || exit 2
$PY -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())" || true

echo "== GPU tests"
$PY -m pytest test/core/test_gpu_path.py -q -p no:cacheprovider -rs

BENCH="$PY -m cyclesiam.cli.bench --device cuda --targets 1 4 8 16 --iterations $IT --warmup 10"
for scale in template pooled; do
  echo "== torch fp32, scale_from $scale";  $BENCH --backends torch --set runtime.half=false --set tracker.scale_from=$scale
  echo "== torch fp16, scale_from $scale";  $BENCH --backends torch --set runtime.half=true --set tracker.scale_from=$scale
done
PROVIDERS=$($PY -c "import onnxruntime as o; print(' '.join(o.get_available_providers()))" 2>/dev/null || echo "")
for ep in CUDAExecutionProvider TensorrtExecutionProvider; do
  if [[ " $PROVIDERS " == *" $ep "* ]]; then
    echo "== onnxruntime $ep"
    $BENCH --backends onnxruntime --set "runtime.providers=[$ep,CPUExecutionProvider]" --set tracker.scale_from=pooled
  else
    echo "== onnxruntime $ep: not installed, skipped"
  fi
done

echo "== node, torch on CUDA, masks on"
source scripts/ros_env.sh >/dev/null 2>&1 && source scripts/python_env.sh >/dev/null 2>&1
for half in false true; do
  echo "-- runtime.half $half"
  $PY probes/node_latency.py --mask --rates 30 60 --seconds 8 \
      --set runtime.device:=cuda --set runtime.backend:=torch --set runtime.half:=$half
done
