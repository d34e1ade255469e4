#!/usr/bin/env bash
# The prepared GPU check of docs/performance.md (< 8 minutes on one GPU): device tests,
# THUMOS inference and training, faithful vs fast, fp32 / bf16 / fp16, peak memory, one table.
# Usage: benchmarks/gpu_check.sh [--dry-run] [extra gpu_check.py options]
#   --dry-run: the same rows on the CPU with the tiny model and a few videos (seconds).
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python}"
if [[ "${1:-}" == "--dry-run" ]]; then
    shift
    exec "$PY" benchmarks/gpu_check.py --device cpu --tiny --videos 4 --iters 2 --batch 2 "$@"
fi
exec timeout 470 "$PY" benchmarks/gpu_check.py --device cuda "$@"
