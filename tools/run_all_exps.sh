#!/usr/bin/env bash
# Trains and evaluates the four main benchmarks one after another (docs/reference.md §8.2):
# THUMOS14 I3D, EPIC-Kitchens verb, EPIC-Kitchens noun, ActivityNet TSP.
#
#   bash tools/run_all_exps.sh
#
# For each config: `train.py CONFIG --output final` (stdout+stderr tee'd to
# ./ckpt/<name>_log.txt), then `eval.py CONFIG ./ckpt/<name>_final/` (tee'd to
# ./ckpt/<name>_results.txt), then `sleep 5`. The data must be in place (see README.md).
# Runs from the repository root whatever the current folder is, and uses .venv/bin/python
# when that exists, else `python`.
# Difference from the original: the first failing step stops the script with its exit status
# (set -euo pipefail; the original went on to the next experiment after a failure).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -x .venv/bin/python ]; then
    PYTHON=.venv/bin/python
else
    PYTHON=python
fi

step="(setup)"
trap 'rc=$?; echo "*** stopped: ${step} failed (exit ${rc})" >&2' ERR

mkdir -p ./ckpt

for name in thumos_i3d epic_slowfast_verb epic_slowfast_noun anet_tsp; do
    config="./configs/${name}.yaml"
    step="training ${name} (log: ./ckpt/${name}_log.txt)"
    echo "=== ${name}: training ==="
    "$PYTHON" ./train.py "$config" --output final 2>&1 | tee "./ckpt/${name}_log.txt"
    step="evaluation ${name} (log: ./ckpt/${name}_results.txt)"
    echo "=== ${name}: evaluation ==="
    "$PYTHON" ./eval.py "$config" "./ckpt/${name}_final/" 2>&1 \
        | tee "./ckpt/${name}_results.txt"
    sleep 5
done
echo "all experiments done; logs and results in ./ckpt/"
