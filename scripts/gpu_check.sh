#!/usr/bin/env bash
# GPU check (device machine): for every main method at the paper recipe (Xception, 256 px, 16 pairs, bf16,
# channels-last) the model-only and the end-to-end training rate and their ratio, then the default grid on
# CUDA with each method's prediction rate (scripts/gpu_check.py). Usage:
#   scripts/gpu_check.sh [OUTDIR] [--compile MODE]     # on a GPU
#   scripts/gpu_check.sh --dry [OUTDIR]                # CPU dry mode: tiny sizes, seconds
set -euo pipefail
dry=()
if [[ "${1:-}" == "--dry" ]]; then dry=(--dry); shift; fi
out=${1:-/tmp/gpu_check}
shift || true
export PYTHONPATH=$(pwd) BENCH_CACHE=$out/cache HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
if [[ ${#dry[@]} -eq 0 ]]; then nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; fi
python="${PYTHON:-python3}"
"$python" scripts/gpu_check.py "${dry[@]}" --out "$out" "$@"
