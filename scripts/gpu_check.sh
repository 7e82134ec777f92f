#!/usr/bin/env bash
# GPU check (device machine): the quick and default presets on CUDA, plus a paper-recipe step timing.
# Prints training and prediction images per second from each job's config.json. Usage: scripts/gpu_check.sh OUTDIR
set -uo pipefail
out=${1:-/tmp/gpu_check}
export PYTHONPATH=$(pwd) BENCH_CACHE=$out/cache HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, timm; print('torch', torch.__version__, 'timm', timm.__version__, 'cuda', torch.cuda.is_available())"
t0=$(date +%s)
python3 -m bench run --preset quick --out $out/quick --no-progress --device cuda 2>&1 | tail -8
t1=$(date +%s); echo "quick preset wall: $((t1 - t0)) s"
python3 -m bench run --preset default --out $out/default --no-progress --device cuda 2>&1 | tail -4
t2=$(date +%s); echo "default preset, whole grid: $((t2 - t1)) s"
python3 scripts/speed_summary.py $out/quick $out/default
python3 scripts/step_timing.py 2>&1 | tail -12
