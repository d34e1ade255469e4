#!/usr/bin/env bash
# Trains and evaluates the four main benchmarks one after another (REFERENCE.md §8.2):
# THUMOS14 I3D, EPIC-Kitchens verb, EPIC-Kitchens noun, ActivityNet TSP.
#
#   bash tools/run_all_exps.sh
#
# For each config: `train.py CONFIG --output final` (log tee'd to ./ckpt/<name>_log.txt), then
# `eval.py CONFIG ./ckpt/<name>_final/` (tee'd to ./ckpt/<name>_results.txt), then `sleep 5`.
# The data must be in place (see README.md). Runs from the repository root whatever the
# current folder is, and uses .venv/bin/python when that exists, else `python`.
# Differences from the original: an experiment that fails is reported and the next one still
# runs (as before), but the script exits 1 at the end if any step failed.
set -u
cd "$(dirname "$0")/.."

if [ -x .venv/bin/python ]; then
    PYTHON=.venv/bin/python
else
    PYTHON=python
fi

mkdir -p ./ckpt
failed=()

run_step() {  # run_step LOGFILE CMD...: CMD's stdout+stderr to the terminal and LOGFILE
    local log="$1"
    shift
    set -o pipefail
    "$@" 2>&1 | tee "$log"
    local rc=$?
    set +o pipefail
    if [ "$rc" -ne 0 ]; then
        echo "*** failed (exit $rc): $* (log: $log)"
        failed+=("$*")
    fi
}

for name in thumos_i3d epic_slowfast_verb epic_slowfast_noun anet_tsp; do
    echo "=== ${name}: training ==="
    run_step "./ckpt/${name}_log.txt" "$PYTHON" ./train.py "./configs/${name}.yaml" --output final
    echo "=== ${name}: evaluation ==="
    run_step "./ckpt/${name}_results.txt" "$PYTHON" ./eval.py "./configs/${name}.yaml" \
        "./ckpt/${name}_final/"
    sleep 5
done

if [ "${#failed[@]}" -ne 0 ]; then
    echo "${#failed[@]} step(s) failed:"
    printf '  %s\n' "${failed[@]}"
    exit 1
fi
echo "all experiments done; logs and results in ./ckpt/"
